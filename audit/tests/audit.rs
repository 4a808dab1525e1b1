//! The audit log for real, on disk: chains verify, every kind of tampering is reported at
//! the right line, a crash (a real SIGKILL mid-append) never damages earlier records.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_audit::{
    verify_file, Anchor, AuditEvent, AuditLog, AuditOptions, CommandRecord, DecisionRecord,
    FactRecord, ProblemKind, StreamSummary, Verdict, VerifyOptions, Who,
};
use execkit_protect::{KnownSecrets, Redactor};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("execkit-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn who() -> Who {
    Who {
        session: "s-1".into(),
        agent: "claude".into(),
        operator: "alice".into(),
        transport: "local".into(),
        target: String::new(),
    }
}

/// A log with a genesis record and `n` decision/command pairs.
fn write_log(path: &Path, n: usize) {
    let mut known = KnownSecrets::new();
    known.add("hunter2-very-secret");
    let redactor = Redactor::new(&known);
    let redact = |s: &str| redactor.redact_str(s).text;
    let mut log = AuditLog::open(path, AuditOptions { fsync: false }).unwrap();
    for i in 0..n {
        let cmd = format!("echo {i} hunter2-very-secret");
        log.append(&AuditEvent::Decision(DecisionRecord {
            who: who(),
            command: redact(&cmd),
            cwd: "/work".into(),
            verdict: Verdict::Allow,
            parse_error: None,
            entity_error: None,
            facts: vec![FactRecord {
                action: "exec".into(),
                resource: redact("Program::\"echo\""),
                verdict: Verdict::Allow,
                policies: vec!["allow-echo".into()],
                reason: redact("permitted by allow-echo"),
                advice: None,
            }],
            approved_by: None,
            env: None,
            runtime: None,
        }))
        .unwrap();
        log.append(&AuditEvent::Command(CommandRecord {
            who: who(),
            command: redact(&cmd),
            cwd: "/work".into(),
            exit_code: Some(0),
            duration_ms: 3,
            timed_out: false,
            cancelled: false,
            stdout: StreamSummary {
                raw_bytes: 30,
                bytes: 30,
                lines: 1,
                bytes_kept: 30,
                truncated: false,
            },
            stderr: StreamSummary::default(),
            redactions: [("known-value".to_string(), 1u64)].into(),
        }))
        .unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

fn problem(path: &Path) -> (ProblemKind, u64) {
    let r = verify_file(path, &VerifyOptions::default()).unwrap();
    let p = r.problem.expect("a problem");
    (p.kind, p.line)
}

#[test]
fn records_are_redacted_and_chain_verifies() {
    let d = temp_dir("ok");
    let path = d.join("a.jsonl");
    write_log(&path, 5);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hunter2"), "secret in audit log");
    assert!(text.contains("[REDACTED:known-value]"));
    assert!(text.contains("\"policies\":[\"allow-echo\"]"));
    let r = verify_file(&path, &VerifyOptions::default()).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.records, 11);
    assert_eq!(r.last_seq, Some(10));
    // Every line is a JSON object with the documented fields.
    for l in lines(&path).iter().skip(1) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for k in ["v", "seq", "time", "prev", "kind", "hash"] {
            assert!(v.get(k).is_some(), "{k} missing in {l}");
        }
        if v["kind"] == "command" {
            for k in [
                "session",
                "agent",
                "transport",
                "exit_code",
                "duration_ms",
                "stdout",
                "redactions",
            ] {
                assert!(v.get(k).is_some(), "{k} missing in {l}");
            }
        }
    }
}

#[test]
fn edited_record_is_found() {
    let d = temp_dir("edit");
    let path = d.join("a.jsonl");
    write_log(&path, 3);
    let mut l = lines(&path);
    l[2] = l[2].replace("\"exit_code\":0", "\"exit_code\":1");
    write_lines(&path, &l);
    assert_eq!(problem(&path), (ProblemKind::Edited, 3));
}

#[test]
fn recomputed_hash_breaks_the_next_link() {
    let d = temp_dir("relink");
    let path = d.join("a.jsonl");
    write_log(&path, 3);
    let mut l = lines(&path);
    // An attacker edits line 3 and recomputes its hash: line 4 no longer links to it.
    let edited = l[2].replace("\"duration_ms\":3", "\"duration_ms\":4");
    let v: serde_json::Value = serde_json::from_str(&edited).unwrap();
    let prev = v["prev"].as_str().unwrap().to_string();
    let body_end = edited.rfind(",\"hash\":").unwrap();
    let body = format!("{}}}", &edited[..body_end]);
    let hash = execkit_audit::record_hash(&prev, body.as_bytes());
    l[2] = format!("{},\"hash\":\"{hash}\"}}", &edited[..body_end]);
    write_lines(&path, &l);
    assert_eq!(problem(&path), (ProblemKind::BrokenLink, 4));
}

#[test]
fn deleted_reordered_and_duplicated_records() {
    let d = temp_dir("order");
    let path = d.join("a.jsonl");
    write_log(&path, 3);
    let orig = lines(&path);

    let mut l = orig.clone();
    l.remove(2);
    write_lines(&path, &l);
    let r = verify_file(&path, &VerifyOptions::default()).unwrap();
    let p = r.problem.unwrap();
    assert_eq!((p.kind, p.line), (ProblemKind::Missing, 3));
    assert!(p.detail.contains("seq 2 is missing"), "{}", p.detail);

    let mut l = orig.clone();
    l.swap(3, 4);
    write_lines(&path, &l);
    assert_eq!(problem(&path), (ProblemKind::Reordered, 4));

    let mut l = orig.clone();
    l.insert(4, orig[3].clone());
    write_lines(&path, &l);
    assert_eq!(problem(&path), (ProblemKind::Reordered, 5));

    let mut l = orig.clone();
    l[0] = l[0].replace("\"nonce\":\"", "\"nonce\":\"0");
    write_lines(&path, &l);
    assert!(matches!(
        problem(&path).0,
        ProblemKind::Edited | ProblemKind::BadGenesis
    ));

    let mut l = orig;
    l.insert(2, "not json at all".into());
    write_lines(&path, &l);
    assert_eq!(problem(&path), (ProblemKind::Malformed, 3));
}

#[test]
fn removal_from_the_end_needs_an_anchor() {
    let d = temp_dir("anchor");
    let path = d.join("a.jsonl");
    write_log(&path, 3);
    let full = verify_file(&path, &VerifyOptions::default()).unwrap();
    let anchor = full.head.clone().unwrap();
    let mut l = lines(&path);
    l.pop();
    write_lines(&path, &l);
    // The chain alone is fine…
    assert!(verify_file(&path, &VerifyOptions::default())
        .unwrap()
        .problem
        .is_none());
    // …the anchor is not.
    let r = verify_file(
        &path,
        &VerifyOptions {
            expect_head: Some(anchor),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.problem.unwrap().kind, ProblemKind::HeadMismatch);
}

/// The log writes its anchor beside itself (`LOG.head`) after every record: records cut
/// off the end and a rewrite with recomputed hashes are found against it, and a server
/// will not open such a log.
#[test]
fn the_anchor_beside_the_log_catches_truncation_and_rewrites() {
    let d = temp_dir("beside");
    let path = d.join("a.jsonl");
    write_log(&path, 4);
    let anchor = Anchor::beside(&path)
        .unwrap()
        .expect("the log wrote its anchor");
    let full = verify_file(&path, &VerifyOptions::default()).unwrap();
    assert_eq!(Some(anchor.seq), full.last_seq);
    assert_eq!(Some(&anchor.hash), full.head.as_ref());
    let with_anchor = || VerifyOptions {
        anchor: Anchor::beside(&path).unwrap(),
        ..VerifyOptions::default()
    };
    assert!(verify_file(&path, &with_anchor())
        .unwrap()
        .problem
        .is_none());

    // Records cut off the end: the chain alone is fine, the anchor is not.
    let whole = lines(&path);
    write_lines(&path, &whole[..whole.len() - 2]);
    assert!(verify_file(&path, &VerifyOptions::default())
        .unwrap()
        .problem
        .is_none());
    let r = verify_file(&path, &with_anchor()).unwrap();
    assert_eq!(r.problem.unwrap().kind, ProblemKind::AnchorMismatch);
    assert!(AuditLog::open(&path, AuditOptions::default()).is_err());

    // A rewrite whose hashes were recomputed (another log of as many records, put in its
    // place) is a valid chain, but not the anchored one.
    let other = d.join("b.jsonl");
    write_log(&other, 4);
    std::fs::copy(&other, &path).unwrap();
    assert!(verify_file(&path, &VerifyOptions::default())
        .unwrap()
        .problem
        .is_none());
    let r = verify_file(&path, &with_anchor()).unwrap();
    assert_eq!(r.problem.unwrap().kind, ProblemKind::AnchorMismatch);
    assert!(AuditLog::open(&path, AuditOptions::default()).is_err());

    // The original, whole again, verifies and opens.
    write_lines(&path, &whole);
    assert!(verify_file(&path, &with_anchor())
        .unwrap()
        .problem
        .is_none());
    AuditLog::open(&path, AuditOptions::default()).unwrap();
}

#[test]
fn truncated_last_line_is_reported_then_recovered() {
    let d = temp_dir("trunc");
    let path = d.join("a.jsonl");
    write_log(&path, 2);
    let before = std::fs::read(&path).unwrap();
    // A crash mid-write: half a record, no newline.
    let mut damaged = before.clone();
    let partial = b"{\"v\":1,\"seq\":5,\"time\":\"2026";
    damaged.extend_from_slice(partial);
    std::fs::write(&path, &damaged).unwrap();
    let (kind, line) = problem(&path);
    assert_eq!(kind, ProblemKind::TruncatedLastLine);
    assert_eq!(line, 6);
    // Reopening cuts the partial line, records the recovery and keeps every earlier byte.
    let mut log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.append(&AuditEvent::Note {
        message: "after".into(),
    })
    .unwrap();
    drop(log);
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(&before));
    let text = String::from_utf8(after).unwrap();
    assert!(
        text.contains(&format!(
            "\"kind\":\"recovery\",\"discarded_bytes\":{}",
            partial.len()
        )),
        "{text}"
    );
    let r = verify_file(&path, &VerifyOptions::default()).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.records, 7);
}

#[test]
fn appending_to_a_broken_log_is_refused() {
    let d = temp_dir("refuse");
    let path = d.join("a.jsonl");
    write_log(&path, 2);
    let mut l = lines(&path);
    l[2] = l[2].replace("\"exit_code\":0", "\"exit_code\":9");
    write_lines(&path, &l);
    let err = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(err.to_string().contains("broken chain"), "{err}");
}

/// Runs only as the child of `a_crash_mid_write_never_damages_earlier_records`.
#[test]
fn crash_writer_child() {
    let Ok(path) = std::env::var("EXECKIT_AUDIT_CRASH_CHILD") else {
        return;
    };
    let mut log = AuditLog::open(Path::new(&path), AuditOptions { fsync: false }).unwrap();
    let big = "x".repeat(200_000);
    loop {
        log.append(&AuditEvent::Note {
            message: big.clone(),
        })
        .unwrap();
    }
}

#[test]
fn a_crash_mid_write_never_damages_earlier_records() {
    let d = temp_dir("crash");
    let path = d.join("a.jsonl");
    write_log(&path, 1);
    let before = std::fs::read(&path).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EXECKIT_AUDIT_CRASH_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it write a while, then kill it without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&path).unwrap().len() < (before.len() + 3_000_000) as u64 {
        assert!(std::time::Instant::now() < deadline, "child wrote nothing");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(&before), "earlier records changed");
    let r = verify_file(&path, &VerifyOptions::default()).unwrap();
    match &r.problem {
        None => {}
        Some(p) => assert_eq!(p.kind, ProblemKind::TruncatedLastLine, "{p}"),
    }
    assert!(r.records > 10);
    // The writer recovers and the chain continues.
    let mut log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.append(&AuditEvent::Note {
        message: "restarted".into(),
    })
    .unwrap();
    assert!(verify_file(&path, &VerifyOptions::default())
        .unwrap()
        .problem
        .is_none());
}
