//! Containment, tried as an attacker would: a session can neither outlive its server nor
//! see it, whatever the policy allows.

use super::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn session_dirs(tmp: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("execkit-session-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_leaves_no_session_process_and_the_next_start_sweeps_its_dirs() {
    let s = Setup::new(&permit_all_policies(
        &std::env::temp_dir().join(format!("execkit-containment-{}", std::process::id())),
    ));
    let (c, server) = s.connect_with_pid(Human::Absent).await;
    let id = create(&c).await;
    let m = format!("{}", std::process::id());
    // Background jobs, a new session, a double-forked nohup daemon, and one in flight.
    exec(
        &c,
        &id,
        &format!(
            "sleep 3001.{m} >/dev/null 2>&1 & setsid sleep 3002.{m} >/dev/null 2>&1 & (nohup sleep 3003.{m} >/dev/null 2>&1 &)"
        ),
    )
    .await;
    let in_flight = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": format!("sleep 3004.{m}")}),
    );
    let killer = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while live_with(&format!(".{m}")).len() < 4 {
            assert!(
                Instant::now() < deadline,
                "the session's processes never all started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(session_dirs(&s.tmp).len(), 1);
        let st = std::process::Command::new("kill")
            .args(["-9", &server.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        Instant::now()
    };
    let killed_at = tokio::select! {
        r = in_flight => panic!("the in-flight command finished before the kill: {r:?}"),
        t = killer => t,
    };
    loop {
        let left = live_with(&format!(".{m}"));
        if left.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(1),
            "session processes {left:?} survived the server by a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(c);
    // The dead server's session directory is left behind, and swept by the next start.
    assert_eq!(session_dirs(&s.tmp).len(), 1);
    let c2 = s.connect(Human::Absent).await;
    create(&c2).await;
    let dirs = session_dirs(&s.tmp);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    c2.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_is_invisible_from_inside_a_session() {
    let root = std::env::temp_dir().join(format!("execkit-invisible-{}", std::process::id()));
    let s = Setup::new(&permit_all_policies(&root));
    let (c, server) = s.connect_with_pid(Human::Absent).await;
    let id = create(&c).await;
    let reversed: String = SERVER_CANARY.chars().rev().collect();
    for cmd in [
        format!(
            "python3 -c \"import sys; sys.stdout.buffer.write(open('/proc/{server}/environ','rb').read())\" | rev"
        ),
        format!("cat /proc/{server}/environ"),
        format!("cat /proc/{server}/cmdline"),
        format!("cat /proc/{server}/maps"),
        format!("ls -l /proc/{server}/fd"),
        "cat /proc/[0-9]*/environ | tr '\\0' '\\n' | rev".to_string(),
        "cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'".to_string(),
    ] {
        let v = exec(&c, &id, &cmd).await;
        assert!(v["exit_code"].is_number(), "`{cmd}` did not run: {v}");
        let out = format!("{}{}", v["stdout"], v["stderr"]);
        assert!(
            !out.contains(SERVER_CANARY) && !out.contains(&reversed),
            "`{cmd}` read the server's environment: {out}"
        );
    }
    for (cmd, want) in [
        (format!("test -e /proc/{server}; echo $?"), "1"),
        // Only the session's own processes: the shell (PID 1) and the pipeline.
        ("ls /proc | grep -c '^[0-9]'".to_string(), "3"),
        ("cat /proc/1/comm".to_string(), "bash"),
    ] {
        let v = exec(&c, &id, &cmd).await;
        assert_eq!(v["stdout"].as_str().unwrap().trim(), want, "`{cmd}`: {v}");
    }
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_files_are_unreadable_from_a_session() {
    let root = std::env::temp_dir().join(format!("execkit-own-files-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let secrets = root.join("secrets.txt");
    std::fs::write(&secrets, "hunter2-canary-value-0451\n").unwrap();
    let s = Setup::new(&format!(
        "{}[secrets]\nfiles = [{:?}]\n",
        permit_all_policies(&root),
        secrets.display().to_string()
    ));
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    // The audit log exists once a command ran.
    exec(&c, &id, "true").await;
    assert!(s.audit.exists());
    for file in [&secrets, &s.audit, &s.config] {
        for reader in [
            "cat",
            "base64",
            "python3 -c 'import sys; print(open(sys.argv[1]).read())'",
        ] {
            let cmd = format!("{reader} {}", file.display());
            let v = exec(&c, &id, &cmd).await;
            assert_ne!(v["exit_code"], 0, "`{cmd}` read it: {v}");
            assert!(
                v["stderr"].as_str().unwrap().contains("Permission denied"),
                "`{cmd}`: {v}"
            );
        }
    }
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
