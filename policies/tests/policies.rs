//! The shipped policy sets: they strict-validate, their case files pass, and the official
//! `cedar` CLI agrees that schema and policies validate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_engine::{cases::run_case_file, Engine, PolicyBundle};
use execkit_policies::{PolicySetFiles, SCHEMA, SCHEMA_FILE, SETS};
use std::process::Command;

fn bundle(set: &PolicySetFiles) -> PolicyBundle {
    PolicyBundle::from_files((SCHEMA_FILE, SCHEMA), set.policies, set.entities)
}

#[test]
fn every_shipped_set_strict_validates() {
    for set in SETS {
        let e = Engine::new(&bundle(set)).unwrap_or_else(|err| panic!("{}: {err}", set.name));
        assert!(e.policy_count() >= 5, "{} has too few policies", set.name);
    }
}

#[test]
fn case_files_pass() {
    let mut total = 0;
    let mut failures = Vec::new();
    for set in SETS {
        let e = Engine::new(&bundle(set)).unwrap_or_else(|err| panic!("{}: {err}", set.name));
        let mut n = 0;
        for (file, text) in set.cases {
            for r in run_case_file(&e, file, text).unwrap_or_else(|err| panic!("{err}")) {
                n += 1;
                if !r.pass {
                    failures.push(format!(
                        "{}/{}:{} `{}`: expected {} got {} — {}",
                        set.name, r.file, r.index, r.command, r.expected, r.actual, r.detail
                    ));
                }
            }
        }
        if set.name == "default" {
            assert!(n >= 150, "default must have at least 150 cases, has {n}");
        }
        total += n;
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The everyday-commands file holds at least 150 commands the default set allows, and at
/// least 95% of it is allowed (the README reports the ratio).
#[test]
fn everyday_commands_are_allowed() {
    let set = execkit_policies::DEFAULT;
    let e = Engine::new(&bundle(&set)).unwrap();
    let (file, text) = set
        .cases
        .iter()
        .find(|(f, _)| f.ends_with("everyday.toml"))
        .expect("cases/everyday.toml is shipped");
    let results = run_case_file(&e, file, text).unwrap();
    let allowed = results
        .iter()
        .filter(|r| r.actual == execkit_engine::Verdict::Allow)
        .count();
    assert!(allowed >= 150, "only {allowed} everyday commands allowed");
    assert!(
        allowed * 100 >= results.len() * 95,
        "{allowed} of {} everyday commands allowed",
        results.len()
    );
}

#[test]
fn a_set_with_a_validation_error_is_refused() {
    let mut b = bundle(&execkit_policies::DEFAULT);
    b.policies.push(("bad.cedar".into(), "@id(\"typo\") permit(principal, action == Action::\"exec\", resource) when { context.no_such_field };".into()));
    let err = Engine::new(&b).err().expect("must refuse");
    assert!(err.to_string().contains("typo"), "{err}");
}

#[test]
fn duplicate_ids_are_refused() {
    let mut b = bundle(&execkit_policies::DEFAULT);
    b.policies.push((
        "dup.cedar".into(),
        "@id(\"allow-readonly-tools\") permit(principal, action, resource);".into(),
    ));
    assert!(Engine::new(&b)
        .err()
        .expect("must refuse")
        .to_string()
        .contains("duplicate"));
}

/// The official Cedar CLI (`cargo install cedar-policy-cli`) validates the shipped files.
#[test]
fn official_cedar_cli_validates_shipped_sets() {
    let cedar = std::env::var("CEDAR_CLI").unwrap_or_else(|_| "cedar".into());
    let probe = Command::new(&cedar).arg("--version").output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "the official `cedar` CLI is required in CI (cargo install cedar-policy-cli)"
            );
            eprintln!("skipping: `cedar` CLI not installed");
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("execkit-cedar-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let schema = dir.join(SCHEMA_FILE);
    std::fs::write(&schema, SCHEMA).expect("write schema");
    for set in SETS {
        let policies = dir.join(format!("{}.cedar", set.name));
        let text: String = set.policies.iter().map(|(_, t)| format!("{t}\n")).collect();
        std::fs::write(&policies, text).expect("write policies");
        let out = Command::new(&cedar)
            .args(["validate", "--schema"])
            .arg(&schema)
            .arg("--policies")
            .arg(&policies)
            .args(["--validation-mode", "strict"])
            .output()
            .expect("run cedar");
        assert!(
            out.status.success(),
            "cedar validate failed for {}:\n{}{}",
            set.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let entities = dir.join(format!("{}-entities.json", set.name));
        std::fs::write(&entities, set.entities).expect("write entities");
        let out = Command::new(&cedar)
            .args(["check-parse", "--schema"])
            .arg(&schema)
            .arg("--policies")
            .arg(&policies)
            .arg("--entities")
            .arg(&entities)
            .output()
            .expect("run cedar");
        assert!(
            out.status.success(),
            "cedar check-parse failed for {}:\n{}",
            set.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
