//! State that persists, structured results, denials, redaction, audit.

use crate::common::*;
use execkit_audit::{AuditLog, AuditOptions};
use execkit_engine::Verdict;
use execkit_runner::sandbox::Profile;
use execkit_runner::{Approval, ExecError, ExecOptions};
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn cwd_env_variables_functions_and_aliases_persist() {
    let ws = Workspace::new("state");
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let s = session(&ws, Profile::Workspace).await;
    ok(&s, "cd sub").await;
    ok(&s, "export GREETING=hi; plain=7; declare -A map; map[k]=v").await;
    ok(&s, "greet() { echo \"fn:$1\"; }").await;
    ok(&s, "alias ll='echo aliased'").await;
    let r = ok(&s, "pwd; echo $GREETING $plain ${map[k]}; greet x; ll").await;
    let sub = ws.path().join("sub");
    assert_eq!(
        r.stdout,
        format!("{}\nhi 7 v\nfn:x\naliased\n", sub.display())
    );
    assert_eq!(r.cwd, sub.display().to_string());
    assert_eq!(s.cwd().await, sub.display().to_string());
    s.close().await;
}

#[tokio::test]
async fn result_is_structured() {
    let ws = Workspace::new("result");
    let s = session(&ws, Profile::Workspace).await;
    let r = run(
        &s,
        "echo out; echo err >&2; exit_code() { return 3; }; exit_code",
    )
    .await;
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.exit_code, Some(3));
    assert!(!r.timed_out && !r.cancelled && !r.shell_exited);
    assert_eq!(r.cwd, ws.path().display().to_string());
    assert_eq!(r.stdout_report.raw_bytes, 4);
    assert_eq!(r.decision.verdict, Verdict::Allow);
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "stdout",
        "stderr",
        "exit_code",
        "duration_ms",
        "cwd",
        "timed_out",
        "cancelled",
        "stdout_report",
        "redactions",
        "decision",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    s.close().await;
}

#[tokio::test]
async fn clean_environment_and_no_history() {
    let ws = Workspace::new("env");
    let home = Workspace::new("home");
    let s = config(&ws, permit_all(), Profile::Workspace)
        .home(home.path())
        .local()
        .await
        .unwrap();
    let r = ok(&s, "env | sort").await;
    for line in ["TERM=dumb", "PAGER=cat", "GIT_PAGER=cat", "NO_COLOR=1"] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "{line} missing in {}",
            r.stdout
        );
    }
    // The server's own variables (cargo's, here) stay out; the broker's proxy variables
    // are the session's.
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.starts_with("CARGO") && !l.starts_with("CARGO_HTTP_PROXY=")),
        "server env leaked: {}",
        r.stdout
    );
    let r = ok(
        &s,
        "echo \"$TMPDIR\"; [ -t 0 ] && echo tty || echo notty; echo $-",
    )
    .await;
    assert!(r.stdout.contains("execkit-"));
    assert!(r.stdout.contains("notty"));
    ok(&s, "echo one; echo two; history 2>/dev/null | wc -l").await;
    s.close().await;
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "history or other files written to HOME: {leftovers:?}"
    );
}

#[tokio::test]
async fn denied_command_never_reaches_the_shell() {
    let ws = Workspace::new("deny");
    let s = config(&ws, default_policies(), Profile::Workspace)
        .local()
        .await
        .unwrap();
    let marker = ws.path().join("ran");
    let cmd = format!("touch {} && cat ~/.ssh/id_rsa", marker.display());
    let err = s.exec(&cmd, &Default::default()).await.unwrap_err();
    let d = err.denial().expect("a denial");
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d
        .decision
        .blocking_policy_ids()
        .contains(&"deny-credential-files"));
    assert!(d.reason.contains("deny-credential-files"), "{}", d.reason);
    assert!(
        d.decision.facts.len() >= 2,
        "every fact's decision is carried"
    );
    assert!(!marker.exists(), "a denied command ran");
    // A syntax error is caught by the grammar and denied.
    let err = s.exec("echo (", &Default::default()).await.unwrap_err();
    assert!(err.denial().unwrap().decision.parse_error.is_some());
    // The session is unaffected.
    assert_eq!(ok(&s, "echo fine").await.stdout, "fine\n");
    // Reserved framing names and NUL bytes are refused before the policies.
    assert!(matches!(
        s.exec("__ek_after 0 1", &Default::default()).await,
        Err(ExecError::Rejected(_))
    ));
    assert!(matches!(
        s.exec("echo a\0b", &Default::default()).await,
        Err(ExecError::Rejected(_))
    ));
    s.close().await;
}

/// A command long enough to be decided off the async worker (64 KiB and more) is decided
/// as any other: allowed and run, or denied with nothing run; past the script limits it is
/// denied with the limit as the reason.
#[tokio::test]
async fn long_commands_are_decided_as_short_ones() {
    let ws = Workspace::new("long");
    let s = config(&ws, default_policies(), Profile::Workspace)
        .local()
        .await
        .unwrap();
    let word = "x".repeat(70 * 1024);
    let r = ok(&s, &format!("echo {word} | wc -c")).await;
    assert_eq!(r.stdout.trim(), (word.len() + 1).to_string());
    let marker = ws.path().join("ran");
    let cmd = format!("touch {} && cat ~/.ssh/id_rsa # {word}", marker.display());
    let d = s.exec(&cmd, &Default::default()).await.unwrap_err();
    let d = d.denial().expect("a denial");
    assert!(d
        .decision
        .blocking_policy_ids()
        .contains(&"deny-credential-files"));
    assert!(!marker.exists(), "a denied command ran");
    let many = vec!["true"; 5000].join(";");
    let d = s.exec(&many, &Default::default()).await.unwrap_err();
    let why = d.denial().expect("a denial").decision.parse_error.clone();
    assert!(
        why.as_deref()
            .unwrap_or_default()
            .contains("more than 4096 commands"),
        "{why:?}"
    );
    assert_eq!(ok(&s, "echo fine").await.stdout, "fine\n");
    s.close().await;
}

#[tokio::test]
async fn decisions_use_the_shells_real_cwd() {
    let ws = Workspace::new("cwd");
    std::fs::create_dir(ws.path().join("d")).unwrap();
    let s = session(&ws, Profile::Workspace).await;
    // The grammar cannot know where `cd "$X"` goes; the session learns it from the shell.
    ok(&s, "X=d; cd \"$X\"").await;
    assert_eq!(s.cwd().await, ws.path().join("d").display().to_string());
    let d = s.decide("cat notes.txt").await;
    assert!(
        d.facts.iter().any(|f| f
            .resource
            .contains(&format!("{}/d/notes.txt", ws.path().display()))),
        "{:?}",
        d.facts
    );
    s.close().await;
}

#[tokio::test]
async fn output_is_redacted_and_audited() {
    let ws = Workspace::new("audit");
    let logdir = Workspace::new("auditlog");
    let log_path = logdir.path().join("audit.jsonl");
    let log = AuditLog::open(&log_path, AuditOptions::default()).unwrap();
    let s = config(&ws, default_policies(), Profile::Workspace)
        .audit(Arc::new(Mutex::new(log)))
        .env("SERVICE_API_TOKEN", "s3cr3t-value-1234")
        .local()
        .await
        .unwrap();
    let r = ok(
        &s,
        "echo token=ghp_0123456789abcdefghijABCDEFGHIJ012345; echo \"$SERVICE_API_TOKEN\" >&2",
    )
    .await;
    assert_eq!(r.stdout, "token=[REDACTED:github-pat]\n");
    assert!(!r.stderr.contains("s3cr3t-value-1234"), "{}", r.stderr);
    assert_eq!(r.redactions.get("github-pat"), Some(&1));
    let _ = s
        .exec("cat ~/.aws/credentials", &Default::default())
        .await
        .unwrap_err();
    s.close().await;
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains("ghp_0123456789"), "secret in the audit log");
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "decision").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "command").count(),
        1,
        "{kinds:?}"
    );
    let report =
        execkit_audit::verify_file(&log_path, &execkit_audit::VerifyOptions::default()).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert!(report.records >= 4);
}

#[tokio::test]
async fn an_approval_runs_only_the_facts_it_names() {
    let ws = Workspace::new("approve");
    std::fs::create_dir(ws.path().join("d")).unwrap();
    let s = config(&ws, default_policies(), Profile::Workspace)
        .local()
        .await
        .unwrap();
    let push = "git push origin main";
    let err = s.exec(push, &Default::default()).await.unwrap_err();
    let d = err.denial().expect("an Ask comes back as a denial");
    assert_eq!(d.verdict, Verdict::Ask);
    let approval = Approval::of("alice", push, &d.decision);
    assert!(!approval.facts.is_empty());
    // Approved: it runs (and fails, as the workspace is not a repository).
    let r = s
        .exec(
            push,
            &ExecOptions::default().with_approval(approval.clone()),
        )
        .await
        .unwrap();
    assert!(r.stderr.contains("not a git repository"), "{}", r.stderr);
    // The same approval does not cover another Ask…
    let other = "git push other-remote main";
    let err = s
        .exec(
            other,
            &ExecOptions::default().with_approval(approval.clone()),
        )
        .await
        .unwrap_err();
    assert!(err.denial().is_some(), "{err}");
    // …nor a Deny.
    let err = s
        .exec(
            "cat ~/.ssh/id_rsa",
            &ExecOptions::default().with_approval(approval.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.denial().unwrap().verdict, Verdict::Deny);
    s.close().await;
}

#[tokio::test]
async fn progress_counts_output_while_a_command_runs() {
    let ws = Workspace::new("progress");
    let s = Arc::new(session(&ws, Profile::Workspace).await);
    assert!(s.progress().is_none(), "nothing runs yet");
    let runner = s.clone();
    let task = tokio::spawn(async move {
        runner
            .exec(
                "printf 'aaaaaaaaaa'; printf 'eeee' >&2; sleep 2",
                &Default::default(),
            )
            .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Both streams' bytes are counted while the command still runs (it sleeps 2 s).
    loop {
        if let Some(p) = s.progress() {
            if p.stdout_bytes >= 10 && p.stderr_bytes >= 4 {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no progress seen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The cwd is readable while the command runs (it does not wait for it).
    assert_eq!(
        s.cwd().await,
        ws.path().canonicalize().unwrap().display().to_string()
    );
    let r = task.await.unwrap().unwrap();
    assert_eq!(r.stdout, "aaaaaaaaaa");
    assert!(s.progress().is_none(), "nothing runs after it ended");
    s.close().await;
}

#[tokio::test]
async fn git_log_on_a_long_history_needs_no_pager() {
    let ws = Workspace::new("git");
    let s = session(&ws, Profile::Workspace).await;
    ok(&s, "git init -q . && git config user.email t@e && git config user.name t && for i in $(seq 1 150); do git commit -q --allow-empty -m \"commit $i\"; done").await;
    let r = ok(&s, "git log --oneline").await;
    assert_eq!(r.stdout.lines().count(), 150);
    let r = ok(&s, "git log | head -3").await;
    assert!(r.stdout.starts_with("commit "));
    s.close().await;
}
