//! One hostile suite, run on every transport: a local sandboxed session, an SSH session on
//! the test sshd and a session in an ephemeral container on the test dockerd (the remote
//! ones when `scripts/test.sh` started their servers; under CI=true they must be there).
//!
//! Each check is a function of a session; each test runs one check on all transports, so
//! a failure names the check and the transport.

use crate::common::*;
use crate::remote_sessions::{docker_fixture, ssh_fixture};
use execkit_runner::docker::DockerTarget;
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecError, ExecOptions, Session};
use std::sync::Arc;
use std::time::Duration;

/// A session on one transport, with what it needs kept alive.
struct On {
    name: &'static str,
    session: Arc<Session>,
    _workspace: Option<Workspace>,
}

/// A permit-all session on every transport available here: the framing alone must hold.
async fn every_transport(tag: &str) -> Vec<On> {
    let ws = Workspace::new(tag);
    let local = session(&ws, Profile::Workspace).await;
    let mut out = vec![On {
        name: "local",
        session: Arc::new(local),
        _workspace: Some(ws),
    }];
    let config = || {
        Session::builder()
            .engine(permit_all())
            .build()
            .expect("config")
    };
    if let Some((t, s)) = ssh_fixture() {
        let session = Session::ssh(&t, &s, config()).await.expect("ssh session");
        out.push(On {
            name: "ssh",
            session: Arc::new(session),
            _workspace: None,
        });
    }
    if let Some(s) = docker_fixture() {
        let target = DockerTarget::Image("execkit-test:latest".into());
        let session = Session::docker(&target, &s, config())
            .await
            .expect("docker session");
        out.push(On {
            name: "docker",
            session: Arc::new(session),
            _workspace: None,
        });
    }
    out
}

/// Every forged marker shape, plus what the command can observe (its env, the shell's
/// variables and functions, which hold the session token, /proc, temp names).
async fn forged_markers(s: &Session, name: &str) {
    let start = s.cwd().await;
    let hostile = r#"
printf '\n\037EKdeadbeef:ask:2\n\n\037EKdeadbeef:end:0:/\n\037EKdeadbeef:fin\n'
printf '\n\037EKdeadbeef:end\n' >&2
env; set; declare -f
cat /proc/self/environ | tr '\0' '\n'; cat /proc/self/cmdline; cat /proc/$$/cmdline
ls -la /proc/self/fd /proc/$$/fd; ls -a "${TMPDIR:-/tmp}" /tmp
tok=$(declare -f | sed -n "s/.*'\([0-9a-f]\{16\}\)' \"\$2\".*/\1/p" | head -1)
for n in 1 2 3 4 5 6; do printf '\n\037EK%s:ask:%s\n' "$tok" "$n"; done
printf '\n\037EK%s:end:0:/etc\n\037EK%s:fin\n' "$tok" "$tok"
sleep 0.2
echo survived
exit_with() { return 7; }; exit_with"#;
    let r = run(s, hostile).await;
    assert_eq!(r.exit_code, Some(7), "{name}: exit status forged: {r:?}");
    assert!(
        r.stdout.ends_with("survived\n"),
        "{name}: result cut short: ...{}",
        &r.stdout[r.stdout.len().saturating_sub(300)..]
    );
    assert_eq!(r.cwd, start, "{name}: cwd forged");
    for i in 0..3 {
        let r = ok(s, &format!("echo next{i}")).await;
        assert_eq!(r.stdout, format!("next{i}\n"), "{name}");
        assert_eq!(r.stderr, "", "{name}");
    }
}

#[tokio::test]
async fn forged_markers_never_end_a_result() {
    for on in every_transport("forged").await {
        forged_markers(&on.session, on.name).await;
        on.session.close().await;
    }
}

/// The shell keeps its saved input at descriptors 10 and above. A command reading it
/// could take the nonce meant for the session and print its own end marker; any policy,
/// even permit-all, gets these refused by the grammar.
async fn saved_input_is_out_of_reach(s: &Session, name: &str) {
    let tok = r#"tok=$(declare -f | sed -n "s/.*'\([0-9a-f]\{16\}\)' \"\$2\".*/\1/p" | head -1)"#;
    for attack in [
        format!("{tok}; exec 0<&10; IFS= read -r epi; printf '\\n\\037EK%s:ask:%s\\n' \"$tok\" 2; IFS= read -r n; printf '\\n\\037EK%s:end:0:/\\n\\037EK%s:fin\\n' \"$n\" \"$n\"; false"),
        "IFS= read -r n <&11".into(),
        "{ IFS= read -r n; } 0<&10".into(),
        "exec {fd}<&10".into(),
        "fd=11; cat <&$fd".into(),
        "echo injected >&10".into(),
    ] {
        match s.exec(&attack, &Default::default()).await {
            // Refused as a descriptor of the shell's own, or (`} 0<&10`, which
            // tree-sitter-bash cannot read) as a syntax error: both before anything runs.
            Err(ExecError::Denied(d)) => assert!(
                d.reason.contains("could not be parsed"),
                "{name}: {}",
                d.reason
            ),
            other => panic!("{name}: `{attack}` was not refused: {other:?}"),
        }
    }
    let r = ok(s, "false; echo still-framed").await;
    assert_eq!(r.stdout, "still-framed\n", "{name}");
}

#[tokio::test]
async fn the_shells_saved_input_is_out_of_reach() {
    for on in every_transport("saved-input").await {
        saved_input_is_out_of_reach(&on.session, on.name).await;
        on.session.close().await;
    }
}

/// Input other tools hang on, awkward quoting, a 100 KB command, 5 MB of output.
async fn awkward_commands(s: &Session, name: &str) {
    assert_eq!(
        ok(s, "echo hi # trailing comment").await.stdout,
        "hi\n",
        "{name}"
    );
    assert_eq!(
        ok(s, "cat <<'EOF'\nline one\n$HOME stays\nEOF")
            .await
            .stdout,
        "line one\n$HOME stays\n",
        "{name}"
    );
    assert_eq!(ok(s, "echo a!b").await.stdout, "a!b\n", "{name}");
    assert_eq!(
        ok(s, "printf 'x\ty\\n'; echo 'lit\ttab'").await.stdout,
        "x\ty\nlit\ttab\n",
        "{name}"
    );
    assert_eq!(ok(s, "cat").await.stdout, "", "{name}");
    assert_eq!(
        run(s, "read x; echo \"[$x] $?\"").await.stdout,
        "[] 1\n",
        "{name}"
    );
    assert_eq!(ok(s, "sleep 0.1 &").await.stdout, "", "{name}");
    assert_eq!(ok(s, "echo after-bg").await.stdout, "after-bg\n", "{name}");
    assert_eq!(
        ok(s, "echo 'unterminated newline'; printf 'no newline'")
            .await
            .stdout,
        "unterminated newline\nno newline",
        "{name}"
    );
    let long = format!("echo {} | wc -c", "x".repeat(100_000));
    assert_eq!(ok(s, &long).await.stdout.trim(), "100001", "{name}");
    let r = ok(
        s,
        "head -c 3000000 /dev/zero | tr '\\0' a; head -c 2000000 /dev/zero | tr '\\0' b >&2",
    )
    .await;
    assert_eq!(r.stdout_report.raw_bytes, 3_000_000, "{name}");
    assert_eq!(r.stderr_report.raw_bytes, 2_000_000, "{name}");
    assert!(
        r.stdout_report.truncated && r.stdout.len() < 100_000,
        "{name}"
    );
}

#[tokio::test]
async fn commands_other_tools_hang_on() {
    for on in every_transport("awkward").await {
        awkward_commands(&on.session, on.name).await;
        on.session.close().await;
    }
}

/// Output that background jobs print after their command ended never reaches a later
/// command's result (the streams rotate after a command that leaves children).
async fn background_output_isolated(s: &Session, name: &str) {
    ok(s, "(sleep 0.3; echo LATE-OUT; echo LATE-ERR >&2) &").await;
    let r = ok(s, "sleep 0.8; echo next").await;
    assert_eq!(r.stdout, "next\n", "{name}");
    assert_eq!(r.stderr, "", "{name}");
    ok(s, "f() { (sleep 0.2; echo FROM-FUNCTION) & }; f").await;
    let r = ok(s, "sleep 0.5; echo again").await;
    assert_eq!(r.stdout, "again\n", "{name}");
    // A job that keeps printing across many later commands.
    ok(
        s,
        "(for i in $(seq 1 40); do echo TICK; echo TOCK >&2; sleep 0.05; done) &",
    )
    .await;
    for i in 0..6 {
        let r = ok(s, &format!("sleep 0.1; echo cmd{i}")).await;
        assert_eq!(r.stdout, format!("cmd{i}\n"), "{name}");
        assert_eq!(r.stderr, "", "{name}");
    }
}

#[tokio::test]
async fn background_output_is_never_attributed_to_a_later_command() {
    for on in every_transport("bg").await {
        background_output_isolated(&on.session, on.name).await;
        on.session.close().await;
    }
}

async fn budgets(s: &Session, name: &str) {
    let opts: ExecOptions = serde_json::from_str(r#"{"stdout":{"mode":"tail","lines":2},"stderr":{"mode":"grep","pattern":"ERR","context":0}}"#).unwrap();
    let r = s
        .exec("seq 1 100; echo ok >&2; echo ERR here >&2", &opts)
        .await
        .unwrap();
    assert!(r.stdout.ends_with("99\n100\n"), "{name}: {}", r.stdout);
    assert!(r.stdout_report.truncated, "{name}");
    assert!(
        r.stderr.contains("ERR here") && !r.stderr.contains("ok"),
        "{name}: {}",
        r.stderr
    );
}

#[tokio::test]
async fn budgets_shape_each_stream() {
    for on in every_transport("budget").await {
        budgets(&on.session, on.name).await;
        on.session.close().await;
    }
}

/// A timeout interrupts a child, a builtin loop and a command that ignores SIGINT and
/// SIGTERM; the session's state survives each.
async fn timeouts(s: &Session, name: &str) {
    // A writable place on every transport (the session's private tmp dir locally).
    let tmp = ok(s, "cd \"${TMPDIR:-/tmp}\" && pwd -P").await.stdout;
    let start = tmp.trim_end();
    ok(s, "mkdir -p ek-suite-d && cd ek-suite-d && export KEEP=yes").await;
    let short = |ms| ExecOptions::timeout(Duration::from_millis(ms));
    let r = s
        .exec("echo partial; sleep 30; echo never", &short(300))
        .await
        .unwrap();
    assert!(r.timed_out, "{name}: {r:?}");
    assert_eq!(r.stdout, "partial\n", "{name}");
    assert_eq!(r.exit_code, Some(130), "{name}");
    assert!(r.duration_ms < 10_000, "{name}");
    let r = s.exec("while :; do :; done", &short(300)).await.unwrap();
    assert!(r.timed_out && !r.shell_exited, "{name}: {r:?}");
    let r = s
        .exec(
            "trap '' INT TERM; sh -c 'trap \"\" INT TERM; sleep 30'",
            &short(200),
        )
        .await
        .unwrap();
    assert!(r.timed_out && !r.shell_exited, "{name}: {r:?}");
    let r = ok(s, "pwd; echo $KEEP").await;
    assert_eq!(r.stdout, format!("{start}/ek-suite-d\nyes\n"), "{name}");
    ok(s, "cd .. && rm -r ek-suite-d").await;
}

#[tokio::test]
async fn timeouts_interrupt_and_keep_the_session() {
    for on in every_transport("timeout").await {
        timeouts(&on.session, on.name).await;
        on.session.close().await;
    }
}

async fn cancel(s: &Arc<Session>, name: &str) {
    let s2 = s.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s2.cancel();
    });
    let r = s
        .exec("echo started; sleep 30", &Default::default())
        .await
        .unwrap();
    canceller.await.unwrap();
    assert!(r.cancelled && !r.timed_out, "{name}: {r:?}");
    assert_eq!(r.stdout, "started\n", "{name}");
    // A cancel with nothing running does not hit the next command.
    s.cancel();
    let r = ok(s, "sleep 0.2; echo fine").await;
    assert!(!r.cancelled, "{name}");
    assert_eq!(r.stdout, "fine\n", "{name}");
}

#[tokio::test]
async fn cancel_from_another_task() {
    for on in every_transport("cancel").await {
        cancel(&on.session, on.name).await;
        on.session.close().await;
    }
}

/// The shell's stdin cannot be written by a command: locally it is a socket (not
/// reopenable through /proc), so these attempts reach nothing and no line the session
/// did not send ever runs.
#[tokio::test]
async fn a_command_cannot_write_into_the_local_shells_input() {
    let ws = Workspace::new("inject");
    let s = session(&ws, Profile::Workspace).await;
    let marker = ws.path().join("injected");
    let payload = format!("x\\ntouch {}\\n", marker.display());
    // Every descriptor of the shell, through /proc, now and from a background job later
    // (when the shell is reading its input again).
    let r = run(
        &s,
        &format!("for f in /proc/$$/fd/*; do printf '{payload}' > $f; done 2>/dev/null; true"),
    )
    .await;
    assert!(!r.shell_exited, "{r:?}");
    ok(
        &s,
        &format!("P=$$; (for i in $(seq 1 20); do printf '{payload}' > /proc/$P/fd/0; sleep 0.05; done) >/dev/null 2>&1 &"),
    )
    .await;
    for i in 0..5 {
        let r = ok(&s, &format!("sleep 0.2; echo {i}")).await;
        assert_eq!(r.stdout, format!("{i}\n"));
    }
    assert!(
        !marker.exists(),
        "a line written into the shell's input ran"
    );
    s.close().await;
}

/// Over SSH and in Docker the shell's stdin is a pipe the remote OS lets any process of
/// the same user reopen; there the policies are the guard: the shipped sets deny every
/// path into process descriptors, literal or computed.
#[tokio::test]
async fn the_default_policies_deny_paths_into_descriptors_on_every_transport() {
    let engine = default_policies();
    let ws = Workspace::new("descriptor-paths");
    let mut sessions = vec![(
        "local",
        config(&ws, engine.clone(), Profile::Workspace)
            .local()
            .await
            .unwrap(),
    )];
    let config = || Session::builder().engine(engine.clone()).build().unwrap();
    if let Some((t, s)) = ssh_fixture() {
        sessions.push(("ssh", Session::ssh(&t, &s, config()).await.unwrap()));
    }
    if let Some(s) = docker_fixture() {
        let target = DockerTarget::Image("execkit-test:latest".into());
        sessions.push((
            "docker",
            Session::docker(&target, &s, config()).await.unwrap(),
        ));
    }
    for (name, s) in sessions {
        for attack in [
            "echo 'touch /tmp/pwned' > /proc/$$/fd/0",
            "printf 'x\\nid\\n' > /proc/1/fd/10",
            "read -r n < /proc/self/fd/10",
            "cat /proc/$PPID/fd/0",
            "echo x > /dev/fd/10",
        ] {
            let d = s.decide(attack).await;
            assert_eq!(d.verdict, execkit_runner::Verdict::Deny, "{name}: {attack}");
            assert!(
                d.blocking_policy_ids().contains(&"deny-descriptor-paths"),
                "{name}: {attack}: {:?}",
                d.blocking_policy_ids()
            );
        }
        s.close().await;
    }
}

/// Live-session truth: a workspace symlink to `/etc` is judged where it leads, on every
/// transport (over SSH and Docker no sandbox would stop the read otherwise).
#[tokio::test]
async fn symlinks_are_judged_where_they_lead_on_every_transport() {
    let engine = default_policies_with_test_hosts();
    let ws = Workspace::new("live-symlinks");
    let mut sessions = vec![(
        "local",
        config(&ws, engine.clone(), Profile::Workspace)
            .local()
            .await
            .unwrap(),
    )];
    let config = || Session::builder().engine(engine.clone()).build().unwrap();
    if let Some((t, s)) = ssh_fixture() {
        sessions.push(("ssh", Session::ssh(&t, &s, config()).await.unwrap()));
    }
    if let Some(s) = docker_fixture() {
        let target = DockerTarget::Image("execkit-test:latest".into());
        sessions.push((
            "docker",
            Session::docker(&target, &s, config()).await.unwrap(),
        ));
    }
    for (name, s) in sessions {
        // Somewhere the agent may write: the workspace (the sandbox keeps it from
        // anywhere else, on every transport).
        let link = "ek-cfg";
        let r = s
            .exec(
                &format!("rm -f {link} && ln -s /etc {link}"),
                &Default::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.exit_code, Some(0), "{name}: {}", r.stderr);
        // Lexically this is a file the agent may read; really it is /etc/shadow.
        let d = s.decide(&format!("cat {link}/shadow")).await;
        assert_eq!(d.verdict, execkit_runner::Verdict::Deny, "{name}");
        assert!(
            d.blocking_policy_ids().contains(&"deny-credential-files"),
            "{name}: {:?}",
            d.blocking_policy_ids()
        );
        match s
            .exec(&format!("cat {link}/shadow"), &Default::default())
            .await
        {
            Err(ExecError::Denied(_)) => {}
            other => panic!("{name}: the read through the symlink ran: {other:?}"),
        }
        // The same symlink to a file anyone may read stays usable.
        let d = s.decide(&format!("cat {link}/hostname")).await;
        assert_eq!(
            d.verdict,
            execkit_runner::Verdict::Allow,
            "{name}: {:?}",
            d.facts
        );
        // Removing the link acts on the link, not on /etc.
        s.exec(&format!("rm -f {link}"), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        s.close().await;
    }
}

/// Aliases and functions a session's earlier commands defined are known to its later
/// decisions: a command named by an alias is judged as its expansion (`alias x='rm -rf'`
/// then `x /opt/notes` removes a file outside the workspace), and a call of a defined function is a function
/// call, not an unknown program to ask about.
#[tokio::test]
async fn aliases_and_functions_of_earlier_commands_are_read_as_the_shell_reads_them() {
    let engine = default_policies_with_test_hosts();
    let ws = Workspace::new("live-aliases");
    let mut sessions = vec![(
        "local",
        config(&ws, engine.clone(), Profile::Workspace)
            .local()
            .await
            .unwrap(),
    )];
    let config = || Session::builder().engine(engine.clone()).build().unwrap();
    if let Some((t, s)) = ssh_fixture() {
        sessions.push(("ssh", Session::ssh(&t, &s, config()).await.unwrap()));
    }
    for (name, s) in sessions {
        // Before the alias exists, `zap` is a program nobody listed: asked about.
        let d = s.decide("zap notes.txt").await;
        assert_eq!(
            d.verdict,
            execkit_runner::Verdict::Ask,
            "{name}: {:?}",
            d.facts
        );
        let r = s
            .exec(
                "shopt -s expand_aliases; alias zap='rm -rf'; wipe() { echo wiped; }",
                &Default::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.exit_code, Some(0), "{name}: {}", r.stderr);
        // The alias's expansion reaches outside the workspace: denied.
        let d = s.decide("zap /opt/notes").await;
        assert_eq!(
            d.verdict,
            execkit_runner::Verdict::Deny,
            "{name}: {:?}",
            d.facts
        );
        assert!(
            d.facts.iter().any(|f| f.resource.contains("/notes")),
            "{name}: {:?}",
            d.facts
        );
        // Inside the workspace it runs, as `rm -rf`.
        let r = s
            .exec(
                "mkdir -p junk && zap junk && test ! -e junk && echo gone",
                &Default::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.stdout.trim(), "gone", "{name}: {}", r.stderr);
        // The function is called, not asked about.
        let r = s
            .exec("wipe", &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.stdout.trim(), "wiped", "{name}");
        s.close().await;
    }
}

/// Live-session truth: a program is judged as the file the shell's real PATH finds. A
/// project's own tool directory put first (`PATH="$PWD/tbin:$PATH"`) is allowed, and then
/// `ls` there is workspace code, not the trusted `ls`; a PATH entry outside the workspace
/// stays forbidden.
#[tokio::test]
async fn programs_are_judged_as_the_file_the_real_path_finds() {
    let engine = default_policies_with_test_hosts();
    let ws = Workspace::new("live-path");
    let mut sessions = vec![(
        "local",
        config(&ws, engine.clone(), Profile::Workspace)
            .local()
            .await
            .unwrap(),
    )];
    let config = || Session::builder().engine(engine.clone()).build().unwrap();
    if let Some((t, s)) = ssh_fixture() {
        sessions.push(("ssh", Session::ssh(&t, &s, config()).await.unwrap()));
    }
    for (name, s) in sessions {
        // No recursive delete here: over SSH the workspace is the test user's shared home,
        // and the default policies checkpoint it before one.
        let setup =
            "mkdir -p tbin && printf '#!/bin/sh\\necho fake ls\\n' > tbin/ls && chmod +x tbin/ls";
        let r = s
            .exec(setup, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.exit_code, Some(0), "{name}: {}", r.stderr);
        let cwd = s.cwd().await;
        let fake = format!("path:{cwd}/tbin/ls");
        let runs = |d: &execkit_runner::Decision| -> Vec<String> {
            d.facts
                .iter()
                .filter(|f| f.action == execkit_engine::Action::Exec)
                .map(|f| f.program.clone())
                .collect()
        };
        // Before: the trusted ls.
        assert_eq!(runs(&s.decide("ls").await), ["ls"], "{name}");
        // The command's own PATH prefix: judged as the workspace file.
        let d = s.decide("PATH=\"$PWD/tbin:$PATH\" ls").await;
        assert_eq!(
            d.verdict,
            execkit_runner::Verdict::Allow,
            "{name}: {:?}",
            d.facts
        );
        assert!(runs(&d).contains(&fake), "{name}: {:?}", runs(&d));
        // Exported: the shell reports its PATH after the command, later commands see it.
        let r = s
            .exec("export PATH=\"$PWD/tbin:$PATH\"", &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.exit_code, Some(0), "{name}");
        assert_eq!(
            runs(&s.decide("ls -la").await),
            std::slice::from_ref(&fake),
            "{name}"
        );
        let r = s
            .exec("ls", &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.stdout.trim(), "fake ls", "{name}");
        // A directory outside the workspace in front of PATH is still refused.
        let d = s.decide("export PATH=/tmp/evil:$PATH").await;
        assert_eq!(d.verdict, execkit_runner::Verdict::Deny, "{name}");
        let r = s
            .exec("rm tbin/ls && rmdir tbin", &Default::default())
            .await
            .unwrap();
        assert_eq!(r.exit_code, Some(0), "{name}: {}", r.stderr);
        s.close().await;
    }
}

/// A container without bash is refused unless the operator allows `sh`; then the same
/// framing holds under dash (forged markers, background output, timeouts), with what is
/// lost said in the session's notes.
#[tokio::test]
async fn a_container_without_bash_runs_sh_only_where_the_operator_allows_it() {
    let Some(mut settings) = docker_fixture() else {
        return;
    };
    let target = DockerTarget::Image("execkit-test-sh:latest".into());
    let config = || {
        Session::builder()
            .engine(permit_all())
            .build()
            .expect("config")
    };
    let e = match Session::docker(&target, &settings, config()).await {
        Ok(_) => panic!("a container without bash was accepted without allow_sh"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("has no bash") && e.contains("allow_sh"), "{e}");
    settings.allow_sh = true;
    let s = Session::docker(&target, &settings, config()).await.unwrap();
    let notes = s.info().await.enforcement.notes.join("; ");
    assert!(notes.contains("commands run under sh"), "{notes}");
    assert_eq!(
        ok(
            &s,
            "readlink /proc/$$/exe; cd /tmp && X=1 && g() { echo \"g$X\"; }"
        )
        .await
        .stdout,
        "/bin/sh\n"
    );
    assert_eq!(
        ok(&s, "g; pwd; echo it\\'s").await.stdout,
        "g1\n/tmp\nit's\n"
    );
    let r = run(&s, "echo ok; exit_with() { return 3; }; exit_with").await;
    assert_eq!((r.stdout.as_str(), r.exit_code), ("ok\n", Some(3)));
    forged_markers(&s, "sh").await;
    background_output_isolated(&s, "sh").await;
    // Without job control a timeout stops the running program (the rest of the line
    // would still run, as the session's note says).
    let r = s
        .exec(
            "echo start; sleep 30",
            &ExecOptions::timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert!(r.timed_out && !r.shell_exited, "{r:?}");
    assert_eq!(r.stdout, "start\n");
    assert!(r.duration_ms < 5_000, "{r:?}");
    assert_eq!(ok(&s, "g").await.stdout, "g1\n", "state after a timeout");
    s.close().await;
}

/// A background process on this transport: readiness, stdin, incremental reads, signals
/// to its group, and nothing left after close.
async fn background_process(s: &Session, name: &str) {
    use execkit_runner::process::{until_pattern, ProcessSignal, ProcessState, WaitReason};
    use execkit_runner::SpawnOptions;
    ok(s, "export GREETING=hello; shout() { echo \"$1!\"; }").await;
    let p = s
        .spawn(
            "echo \"$GREETING ready\"; while IFS= read -r l; do shout \"$l\"; done; echo bye >&2",
            &SpawnOptions::named("echoer"),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: spawn: {e}"));
    let w = p
        .wait(
            Duration::from_secs(10),
            Some(&until_pattern("ready").unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(w.reason, WaitReason::Matched, "{name}: {w:?}");
    assert_eq!(w.output.stdout, "hello ready\n", "{name}");
    for word in ["one", "two"] {
        p.write_stdin(format!("{word}\n").as_bytes(), false)
            .await
            .unwrap();
        let w = p
            .wait(
                Duration::from_secs(10),
                Some(&until_pattern(&format!("{word}!")).unwrap()),
                None,
                None,
            )
            .await;
        assert_eq!(w.reason, WaitReason::Matched, "{name}: {word}: {w:?}");
        assert_eq!(w.output.stdout, format!("{word}!\n"), "{name}");
    }
    p.write_stdin(b"", true).await.unwrap();
    let w = p.wait(Duration::from_secs(10), None, None, None).await;
    assert_eq!(w.reason, WaitReason::Exited, "{name}: {w:?}");
    assert_eq!(w.output.stderr, "bye\n", "{name}");
    assert_eq!(
        p.state(),
        ProcessState::Exited {
            code: Some(0),
            signal: None
        },
        "{name}"
    );
    // Signals reach the group; the session keeps working.
    let q = s
        .spawn("sleep 60 & sleep 61", &SpawnOptions::default())
        .await
        .unwrap();
    q.signal(ProcessSignal::Term).await.unwrap();
    let w = q.wait(Duration::from_secs(10), None, None, None).await;
    assert_eq!(w.reason, WaitReason::Exited, "{name}");
    assert_eq!(
        q.state(),
        ProcessState::Exited {
            code: Some(143),
            signal: Some(ProcessSignal::Term)
        },
        "{name}"
    );
    let r = ok(s, "echo still here").await;
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.background_jobs),
        ("still here\n", "", 0),
        "{name}"
    );
    let left = s
        .spawn("sleep 300", &SpawnOptions::default())
        .await
        .unwrap();
    let pgid = left.info().pgid.expect("a process group");
    // The group is where the process runs (locally the host's pid, which the sandboxed
    // shell in its PID namespace does not see).
    if name == "local" {
        assert!(proc_stat(pgid).is_some(), "{name}");
    } else {
        let probe = ok(s, &format!("kill -0 -{pgid} && echo alive")).await;
        assert_eq!(probe.stdout, "alive\n", "{name}");
    }
}

#[tokio::test]
async fn background_processes_work_on_every_transport() {
    for on in every_transport("procs").await {
        background_process(&on.session, on.name).await;
        on.session.close().await;
    }
}

/// Checkpoints on this transport: a change of every kind undone exactly, a redacted diff,
/// and the automatic checkpoint a policy asks for.
async fn checkpoints_roundtrip(s: &Session, name: &str) {
    ok(s, "rm -rf cpt && mkdir -p cpt/sub && cd cpt && printf 'one\\n' > a.txt && printf 'two\\n' > sub/b.txt && printf '#!/bin/sh\\n' > run.sh && chmod +x run.sh && ln -s a.txt link && printf 'ignored/\\n' > .gitignore && mkdir ignored && echo junk > ignored/x && cd ..").await;
    let before = ok(s, "cd cpt && for f in a.txt sub/b.txt run.sh .gitignore; do printf '%s %s ' $f $(stat -c %a $f); cat $f; done; readlink link; cd ..").await.stdout;
    let cp = s
        .checkpoint(Some("suite"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    ok(s, "cd cpt && echo changed >> a.txt && rm sub/b.txt && echo new > c.txt && chmod -x run.sh && ln -sfn sub link && echo 'key=ghp_0123456789abcdefghijABCDEFGHIJ012345' > secret.txt && cd ..").await;
    let d = s
        .checkpoint_diff(&cp.id)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(d.counts.deleted, 1, "{name}: {d:?}");
    assert!(
        d.added.iter().any(|p| p.ends_with("secret.txt")),
        "{name}: {d:?}"
    );
    assert!(
        d.diff.contains("[REDACTED:github-pat]") && !d.diff.contains("ghp_"),
        "{name}: {}",
        d.diff
    );
    let r = s
        .restore(&cp.id)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!((r.created, r.deleted), (1, 2), "{name}: {r:?}");
    let after = ok(s, "cd cpt && for f in a.txt sub/b.txt run.sh .gitignore; do printf '%s %s ' $f $(stat -c %a $f); cat $f; done; readlink link; cd ..").await.stdout;
    assert!(before.starts_with("a.txt 644 one\n"), "{name}: {before}");
    assert_eq!(after, before, "{name}");
    let r = ok(s, "ls cpt; cat cpt/ignored/x").await;
    assert!(
        !r.stdout.contains("c.txt") && !r.stdout.contains("secret.txt"),
        "{name}: {}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with("junk\n"),
        "{name}: ignored files stay: {}",
        r.stdout
    );
    assert_eq!(s.checkpoints().await.unwrap().len(), 1, "{name}");
}

#[tokio::test]
async fn checkpoints_work_on_every_transport() {
    // Over SSH the workspace is the test user's shared home: only `cpt/` is captured, so
    // a restore never touches what other tests do there.
    let mut cfg = execkit_runner::checkpoint::CheckpointConfig::default();
    cfg.excludes = vec!["/*".into(), "!/cpt/".into()];
    for (name, s, _ws) in with_checkpoints("checkpoints", &cfg).await {
        checkpoints_roundtrip(&s, name).await;
        s.close().await;
    }
}

/// A session on every transport with this checkpoint configuration (Docker with a
/// writable workspace mounted, as an operator would give it).
async fn with_checkpoints(
    tag: &str,
    cfg: &execkit_runner::checkpoint::CheckpointConfig,
) -> Vec<(&'static str, Session, Workspace)> {
    let mut out = Vec::new();
    let ws = Workspace::new(tag);
    let local = config(&ws, permit_all(), Profile::Workspace)
        .checkpoints(cfg.clone())
        .local()
        .await
        .unwrap();
    out.push(("local", local, ws));
    let remote = || {
        Session::builder()
            .engine(permit_all())
            .checkpoints(cfg.clone())
            .build()
            .expect("config")
    };
    if let Some((t, s)) = ssh_fixture() {
        let session = Session::ssh(&t, &s, remote()).await.expect("ssh session");
        out.push(("ssh", session, Workspace::new(tag)));
    }
    if let Some(mut settings) = docker_fixture() {
        let ws = Workspace::new(tag);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ws.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        settings.workspace = Some(ws.path().to_path_buf());
        let target = DockerTarget::Image("execkit-test:latest".into());
        let s = Session::docker(&target, &settings, remote())
            .await
            .expect("docker session");
        out.push(("docker", s, ws));
    }
    out
}

/// A workspace file the remote user cannot read refuses a checkpoint with git's own reason
/// (after one retry), so the operator sees why, and nothing half-captured is kept.
#[tokio::test]
async fn an_unreadable_remote_file_refuses_the_checkpoint_with_gits_reason() {
    use execkit_runner::checkpoint::CheckpointConfig;
    let d = format!("cpu-{:x}", rand_u64());
    let mut cfg = CheckpointConfig::default();
    cfg.excludes = vec!["/*".into(), format!("!/{d}/")];
    for (name, s, _ws) in with_checkpoints("cp-unreadable", &cfg).await {
        // Over SSH the user is not root, so mode 000 really cannot be read.
        if name != "ssh" {
            s.close().await;
            continue;
        }
        ok(
            &s,
            &format!("mkdir -p {d} && echo x > {d}/locked && chmod 000 {d}/locked"),
        )
        .await;
        let e = s
            .checkpoint(None)
            .await
            .expect_err("an unreadable file cannot be captured")
            .to_string();
        assert!(
            e.contains("could not read the workspace") && e.contains("Permission denied"),
            "{name}: {e}"
        );
        assert!(s.checkpoints().await.unwrap().is_empty(), "{name}");
        ok(&s, &format!("chmod 600 {d}/locked && rm -r {d}")).await;
        let cp = s.checkpoint(None).await;
        assert!(cp.is_ok(), "{name}: {cp:?}");
        s.close().await;
    }
}

#[tokio::test]
async fn operator_excludes_hold_with_or_without_gitignore_and_the_cap_refuses_before_hashing() {
    use execkit_runner::checkpoint::{CheckpointConfig, CheckpointError};
    for honour in [true, false] {
        // Everything but this test's directory is excluded too: over SSH the workspace is
        // the shared home of the test user, and a restore must not touch other tests.
        let d = format!("cpx-{:x}", rand_u64());
        let mut cfg = CheckpointConfig::default();
        cfg.honour_gitignore = honour;
        cfg.excludes = vec![
            "/*".into(),
            format!("!/{d}/"),
            "*.secret".into(),
            "cache/".into(),
        ];
        cfg.max_bytes = 4 << 20;
        for (name, s, _ws) in with_checkpoints("cp-excludes", &cfg).await {
            ok(&s, &format!("mkdir -p {d}/cache {d}/build {d}/emptydir {d}/deep/er && cd {d} && echo keep > keep.txt && echo key > x.secret && echo c > cache/data && echo 'build/' > .gitignore && echo o > build/out.o && cd ..")).await;
            let cp = s
                .checkpoint(None)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            ok(&s, &format!("rm -rf {d}")).await;
            s.restore(&cp.id)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // The agent puts a link where the checkpoint has `deep/` and hides it with
            // `.gitignore` (so the restore's snapshot leaves it alone), hoping the restore
            // makes `deep/er` through it, outside the workspace. (Locally the sandbox keeps
            // the agent from making a directory outside to point at; `beneath` covers it.)
            if name != "local" && honour {
                // Outside the workspace, where the remote sandbox still lets it write:
                // the session's private tmp dir.
                let outside = format!("\"$TMPDIR/{d}-outside\"");
                let plant = format!(
                    "mkdir -p {outside} && cd {d} && rm -r deep && ln -s {outside} deep && echo /deep >> .gitignore && cd .."
                );
                ok(&s, &plant).await;
                s.restore(&cp.id)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let look = format!("ls -A {outside} | wc -l; rm -rf {outside} {d}/deep");
                let r2 = ok(&s, &look).await;
                assert_eq!(
                    r2.stdout.trim(),
                    "0",
                    "{name}: the restore made a directory through a link"
                );
                s.restore(&cp.id)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            let r = ok(
                &s,
                &format!("cd {d} && find . | sort | tr '\\n' ' '; cd .."),
            )
            .await;
            let mut want = ". ./.gitignore ./deep ./deep/er ./emptydir ./keep.txt ".to_string();
            if !honour {
                want =
                    ". ./.gitignore ./build ./build/out.o ./deep ./deep/er ./emptydir ./keep.txt "
                        .to_string();
            }
            assert_eq!(r.stdout, want, "{name}, gitignore honoured: {honour}");
            // Past the cap: refused from the files' sizes, before git reads them.
            ok(&s, &format!("head -c 5000000 /dev/zero > {d}/big.dat")).await;
            match s.checkpoint(None).await {
                Err(CheckpointError::TooLarge { bytes, cap }) => {
                    assert!(bytes > cap && cap == 4 << 20, "{name}: {bytes} {cap}")
                }
                other => panic!("{name}: expected the cap, got {other:?}"),
            }
            ok(&s, &format!("rm -rf {d}")).await;
            s.close().await;
        }
    }
}
