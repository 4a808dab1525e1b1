//! The tool surface: schemas, annotations, structured results, denials, bad arguments.

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_publishes_schemas_and_accurate_annotations() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "policy_check",
            "process_list",
            "process_read",
            "process_signal",
            "process_start",
            "process_wait",
            "process_write",
            "session_checkpoint",
            "session_checkpoints",
            "session_create",
            "session_destroy",
            "session_diff",
            "session_exec",
            "session_list",
            "session_restart",
            "session_restore"
        ]
    );
    for t in &tools {
        let out = t
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no outputSchema", t.name));
        assert_eq!(out.get("type"), Some(&json!("object")), "{}", t.name);
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() > 20),
            "{}",
            t.name
        );
        let a = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no annotations", t.name));
        let ro = a.read_only_hint == Some(true);
        match t.name.as_ref() {
            "session_list"
            | "policy_check"
            | "process_read"
            | "process_wait"
            | "process_list"
            | "session_checkpoints"
            | "session_diff" => {
                assert!(ro, "{} is read-only", t.name)
            }
            "process_signal" | "session_restore" => assert_eq!(a.destructive_hint, Some(true)),
            "session_exec" => {
                assert!(!ro);
                assert_eq!(a.destructive_hint, Some(true));
                assert_eq!(a.open_world_hint, Some(true));
            }
            "session_destroy" => {
                assert_eq!(a.destructive_hint, Some(true));
                assert_eq!(a.idempotent_hint, Some(true));
            }
            _ => assert!(!ro),
        }
    }
    // Only formats JSON Schema defines (schemars' `uint64`, `uint`, `int32` … make
    // TypeScript clients warn on every tools/list); integers keep `minimum: 0`.
    let listed = serde_json::to_string(&tools).unwrap();
    for f in ["uint", "int8", "int16", "int32", "int64", "double", "float"] {
        assert!(
            !listed.contains(&format!("\"format\":\"{f}")),
            "non-standard format {f} in the tool schemas"
        );
    }
    assert!(listed.contains("\"minimum\":0"), "integer bounds were kept");
    let exec = tools.iter().find(|t| t.name == "session_exec").unwrap();
    let required = exec.input_schema.get("required").unwrap();
    assert!(required.as_array().unwrap().contains(&json!("session_id")));
    assert!(required.as_array().unwrap().contains(&json!("command")));
    let props = exec.input_schema.get("properties").unwrap();
    for p in ["budget", "timeout_ms"] {
        assert!(props.get(p).is_some(), "session_exec takes {p}");
    }
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_state_and_returns_structured_results() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let r = call(&c, "session_create", json!({"transport": "local"})).await;
    let created = structured(&r);
    let id = created["session_id"].as_str().unwrap().to_string();
    assert_eq!(created["transport"], "local");
    assert_eq!(created["sandbox"]["profile"], "workspace");
    assert_eq!(created["sandbox"]["level"], "full");
    assert_eq!(created["identity"]["agent"], "agent");
    assert!(created["policy_set"].as_str().unwrap().contains("default"));

    exec(&c, &id, "cd sub && export GREETING=hello").await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "pwd; echo $GREETING; echo oops >&2"}),
    )
    .await;
    let v = structured(&r);
    let ws = s.workspace.canonicalize().unwrap();
    let sub = ws.join("sub").display().to_string();
    assert_eq!(v["stdout"], format!("{sub}\nhello\n"));
    assert_eq!(v["stderr"], "oops\n");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["cwd"], sub);
    assert_eq!(v["timed_out"], false);
    // The text is compact: one header line, then the output once.
    let t = text(&r);
    assert!(t.starts_with("exit 0 · "), "{t}");
    assert_eq!(t.matches("hello").count(), 1, "{t}");
    assert!(t.contains("[stderr]\noops"), "{t}");

    let v = exec(
        &c,
        &id,
        "exit_status_test() { return 7; }; exit_status_test",
    )
    .await;
    assert_eq!(v["exit_code"], 7);
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_command_never_runs_and_says_which_policy_and_why() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let marker = s.workspace.join("ran");
    let cmd = format!("touch {} && rm -rf /", marker.display());
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": cmd}),
    )
    .await;
    assert!(is_error(&r));
    let v = structured(&r);
    assert_eq!(v["denied"], true);
    assert_eq!(v["verdict"], "deny");
    let denied_fact = v["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["verdict"] == "deny")
        .expect("a denied fact");
    assert_eq!(denied_fact["resource"], "Path::\"/\"");
    let ids: Vec<&str> = denied_fact["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"deny-recursive-delete-outside-workspace"),
        "{ids:?}"
    );
    assert!(denied_fact["policies"][0]["advice"].as_str().is_some());
    let t = text(&r);
    assert!(t.starts_with("denied: "), "{t}");
    assert!(t.contains("deny-recursive-delete-outside-workspace"), "{t}");
    assert!(!marker.exists(), "nothing of a denied command runs");
    // The session is unharmed.
    let v = exec(&c, &id, "echo still here").await;
    assert_eq!(v["stdout"], "still here\n");
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_dry_runs_in_the_sessions_cwd() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    exec(&c, &id, "cd sub").await;
    let marker = s.workspace.join("sub/made");
    let r = call(
        &c,
        "policy_check",
        json!({"session_id": id, "command": "touch made"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let v = structured(&r);
    assert_eq!(v["verdict"], "allow");
    assert!(v["cwd"].as_str().unwrap().ends_with("/ws/sub"));
    assert!(v["facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["resource"].as_str().unwrap().ends_with("/ws/sub/made\"")));
    assert!(!marker.exists(), "policy_check runs nothing");
    let r = call(
        &c,
        "policy_check",
        json!({"command": "git push origin main"}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(v["verdict"], "ask");
    assert!(text(&r).contains("ask-publish"), "{}", text(&r));
    let r = call(&c, "policy_check", json!({"command": "echo 'unterminated"})).await;
    let v = structured(&r);
    assert_eq!(v["verdict"], "deny");
    assert!(v["parse_error"].as_str().is_some());
    c.cancel().await.unwrap();
}

/// The operator's script limits reach the server's engine: a command over them is denied
/// with the reason and nothing of it runs; one within them runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_limits_from_the_operator_deny_larger_commands() {
    let s = Setup::new("[limits]\nmax_script_commands = 3\nmax_script_facts = 4\n");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let v = exec(&c, &id, "echo a; echo b; echo c").await;
    assert_eq!(v["stdout"], "a\nb\nc\n");
    let marker = s.workspace.join("made");
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "touch made; echo a; echo b; echo c"}),
    )
    .await;
    let t = text(&r);
    assert!(t.contains("more than 3 commands"), "{t}");
    let r = call(&c, "policy_check", json!({"command": "ls a b c d"})).await;
    let v = structured(&r);
    assert_eq!(v["verdict"], "deny");
    let why = v["parse_error"].as_str().unwrap_or_default();
    assert_eq!(
        why,
        "script has 5 facts to judge, more than the maximum of 4 (the operator's `[limits] max_script_facts`)"
    );
    assert!(!marker.exists(), "nothing of a denied command runs");
    // A long command is decided off the async worker, as a short one: allowed here.
    let long = format!("ls {}", "x".repeat(70 * 1024));
    let r = call(&c, "policy_check", json!({"command": long})).await;
    assert_eq!(structured(&r)["verdict"], "allow", "{}", text(&r));
    let r = call(
        &c,
        "policy_check",
        json!({"session_id": id, "command": long}),
    )
    .await;
    assert_eq!(structured(&r)["verdict"], "allow", "{}", text(&r));
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_tool_errors_with_clear_messages() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let cases = [
        (
            "session_create",
            json!({"transport": "telnet"}),
            "unknown transport `telnet`",
        ),
        (
            "session_create",
            json!({"transport": "ssh"}),
            "needs `host`",
        ),
        (
            "session_create",
            json!({"transport": "docker"}),
            "exactly one of `container` or `image`",
        ),
        (
            "session_create",
            json!({"host": "build-1.internal"}),
            "a local session takes no host",
        ),
        (
            "session_create",
            json!({"workspace": "/etc"}),
            "outside what the operator allows",
        ),
        (
            "session_create",
            json!({"workspace": "../.."}),
            "outside what the operator allows",
        ),
        (
            "session_create",
            json!({"workspace": "/no/such/dir"}),
            "/no/such/dir",
        ),
        (
            "session_create",
            json!({"output_budget": {"mode": "grep"}}),
            "needs `pattern`",
        ),
        ("session_exec", json!({"session_id": id}), "command"),
        (
            "session_exec",
            json!({"session_id": id, "command": "ls", "timeout": 5}),
            "timeout",
        ),
        (
            "session_exec",
            json!({"session_id": "nope", "command": "ls"}),
            "unknown session `nope`",
        ),
        (
            "session_exec",
            json!({"session_id": id, "command": "echo a\u{0}b"}),
            "NUL",
        ),
        (
            "session_exec",
            json!({"session_id": id, "command": "ls", "budget": {"mode": "head"}}),
            "needs `lines`",
        ),
        (
            "session_exec",
            json!({"session_id": id, "command": "ls", "budget": {"mode": "grep", "pattern": "("}}),
            "pattern",
        ),
        (
            "session_destroy",
            json!({"session_id": "nope"}),
            "unknown session",
        ),
        (
            "policy_check",
            json!({"command": "ls", "session_id": "nope"}),
            "unknown session",
        ),
    ];
    for (tool, a, expect) in cases {
        let r = call(&c, tool, a.clone()).await;
        assert!(is_error(&r), "{tool} {a} should fail");
        let t = text(&r);
        assert!(
            t.contains(expect),
            "{tool} {a}: expected `{expect}` in `{t}`"
        );
    }
    // Nothing above hurt the session.
    let v = exec(&c, &id, "echo fine").await;
    assert_eq!(v["stdout"], "fine\n");
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_narrow_output_and_report_what_was_cut() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let r = call(
        &c,
        "session_create",
        json!({"output_budget": {"mode": "tail", "lines": 2}}),
    )
    .await;
    let id = structured(&r)["session_id"].as_str().unwrap().to_string();
    let v = exec(&c, &id, "seq 1 100").await;
    assert!(
        v["stdout"].as_str().unwrap().ends_with("99\n100\n"),
        "{}",
        v["stdout"]
    );
    assert_eq!(v["stdout_truncation"]["lines_total"], 100);
    assert_eq!(v["stdout_truncation"]["lines_kept"], 2);
    // A command's own budget replaces the session's.
    let r = call(&c, "session_exec", json!({"session_id": id, "command": "seq 1 100", "budget": {"mode": "grep", "pattern": "^5$"}})).await;
    let v = structured(&r);
    assert!(v["stdout"].as_str().unwrap().contains("5\n"));
    assert_eq!(v["stdout_truncation"]["matches"], 1);
    // Secrets in output are redacted before they reach the client.
    let v = exec(
        &c,
        &id,
        "echo token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    )
    .await;
    assert!(
        !v["stdout"]
            .as_str()
            .unwrap()
            .contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        "{}",
        v["stdout"]
    );
    assert!(!v["redactions"].as_object().unwrap().is_empty());
    c.cancel().await.unwrap();
}

/// A session target is a policy decision before anything connects: the default set denies
/// an SSH host or a container the operator did not list, with the decision shown; a target
/// the policies allow still needs the operator's `[ssh]`/`[docker]` settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_targets_are_decided_before_anything_connects() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    for args in [
        json!({"transport": "ssh", "host": "prod-db.internal", "user": "root"}),
        json!({"transport": "docker", "container": "postgres"}),
        json!({"transport": "docker", "image": "alpine:3.20"}),
        json!({"transport": "ssh", "host": "x@evil.example"}),
    ] {
        let r = call(&c, "session_create", args.clone()).await;
        assert!(is_error(&r), "{args}");
        let v = structured(&r);
        assert_eq!(v["denied"], true, "{args}: {v}");
        assert!(text(&r).contains("not allowed"), "{args}: {}", text(&r));
    }
    let r = call(
        &c,
        "session_create",
        json!({"transport": "ssh", "host": "prod-db.internal"}),
    )
    .await;
    assert!(
        structured(&r).to_string().contains("SessionTarget"),
        "{}",
        structured(&r)
    );
    c.cancel().await.unwrap();

    let root = std::env::temp_dir().join(format!("execkit-open-{}", std::process::id()));
    let s = Setup::new(&permit_all_policies(&root));
    let c = s.connect(Human::Absent).await;
    let r = call(
        &c,
        "session_create",
        json!({"transport": "ssh", "host": "build-1.internal", "port": 2222, "user": "deploy"}),
    )
    .await;
    // Allowed by the policies, but this server has no [ssh] settings.
    assert_eq!(structured(&r)["error"], "not_available", "{}", text(&r));
    assert!(text(&r).contains("has not configured SSH"), "{}", text(&r));
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
