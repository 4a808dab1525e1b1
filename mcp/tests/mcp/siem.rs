//! Where the audit goes besides its file: a real `rsyslogd` receives every record of a run
//! as it is written, in order and byte for byte (over TCP with octet-counted framing and
//! over a Unix datagram socket), and `execkit audit export` gives the verified records as
//! JSON Lines and as OCSF events.

use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An `rsyslogd` of the test's own (TCP on a free loopback port and a Unix socket), writing
/// MSGID, structured data and message of each message to `out.log`; killed on drop.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path) -> Option<Rsyslog> {
        let which = Command::new("sh")
            .args(["-c", "command -v rsyslogd"])
            .output()
            .ok()?;
        if !which.status.success() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but rsyslogd is missing (scripts/test.sh installs it)"
            );
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let conf = format!(
            r#"global(workDirectory="{d}" maxMessageSize="256k")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" useSpecialParser="off" parseHostname="on")
template(name="raw" type="string" string="%msgid% %structured-data% %msg%\n")
*.* action(type="omfile" file="{d}/out.log" template="raw")
"#
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        let r = Rsyslog {
            dir: dir.to_path_buf(),
            port,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(r.dir.join("log.sock").exists()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            assert!(Instant::now() < deadline, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(r)
    }

    /// The messages received, as `(msgid, seq, message)`, once there are at least `n`.
    fn received(&self, n: usize) -> Vec<(String, u64, String)> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default();
            let got: Vec<(String, u64, String)> = text
                .lines()
                .filter_map(|l| {
                    let (msgid, rest) = l.split_once(' ')?;
                    let (sd, msg) = rest.split_once("] ")?;
                    let seq = sd.split("seq=\"").nth(1)?.split('"').next()?.parse().ok()?;
                    Some((msgid.to_string(), seq, msg.to_string()))
                })
                .collect();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A run with allowed, refused and background work.
async fn a_run(s: &Setup) {
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    exec(&c, &id, "echo 'to syslog'").await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "rm -rf /"}),
    )
    .await;
    assert!(is_error(&r), "{}", text(&r));
    exec(&c, &id, "ls -la | head -3").await;
    let r = call(&c, "session_destroy", json!({"session_id": id})).await;
    assert!(!is_error(&r), "{}", text(&r));
    c.cancel().await.unwrap();
}

/// Every record after the genesis record arrives, in order, byte for byte.
fn assert_all_received(s: &Setup, rs: &Rsyslog) {
    let lines: Vec<String> = std::fs::read_to_string(&s.audit)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // The genesis record is written when the file is created, before the server forwards.
    let want = &lines[1..];
    let got = rs.received(want.len());
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((msgid, seq, msg), line) in got.iter().zip(want) {
        let rec: Value = serde_json::from_str(line).unwrap();
        assert_eq!(msg, line, "the message is the record");
        assert_eq!(Some(*seq), rec["seq"].as_u64());
        assert_eq!(Some(msgid.as_str()), rec["kind"].as_str());
    }
    let kinds: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    for k in ["session", "decision", "command"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
}

#[tokio::test]
async fn rsyslog_receives_every_record_in_order_over_tcp_and_a_unix_socket() {
    let scratch = std::env::temp_dir().join(format!("ek-rsyslog-{}", std::process::id()));
    let Some(rs) = Rsyslog::start(&scratch) else {
        eprintln!("skipping: no rsyslogd");
        return;
    };
    let tcp = Setup::new(&format!(
        "[audit.syslog]\naddress = \"tcp:127.0.0.1:{}\"\nfacility = \"local3\"\n",
        rs.port
    ));
    a_run(&tcp).await;
    assert_all_received(&tcp, &rs);
    drop(tcp);

    // A new log on the Unix socket: rsyslog's file now holds both runs.
    std::fs::remove_file(rs.dir.join("out.log")).unwrap();
    // rsyslog keeps the old file open until it is told to reopen (HUP).
    let hup = Command::new("kill")
        .args(["-HUP", &rs.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(300));
    let unix = Setup::new(&format!(
        "[audit.syslog]\naddress = \"unix:{}\"\nrequired = true\n",
        rs.dir.join("log.sock").display()
    ));
    a_run(&unix).await;
    assert_all_received(&unix, &rs);
    drop(rs);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test]
async fn a_required_syslog_that_is_gone_refuses_commands() {
    let scratch = std::env::temp_dir().join(format!("ek-rsyslog-gone-{}", std::process::id()));
    let Some(rs) = Rsyslog::start(&scratch) else {
        eprintln!("skipping: no rsyslogd");
        return;
    };
    let s = Setup::new(&format!(
        "[audit.syslog]\naddress = \"unix:{}\"\nrequired = true\n",
        rs.dir.join("log.sock").display()
    ));
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    exec(&c, &id, "echo forwarded").await;
    drop(rs);
    std::fs::write(s.workspace.join("proof.txt"), "keep").unwrap();
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "rm -f proof.txt"}),
    )
    .await;
    assert!(is_error(&r), "{}", text(&r));
    assert_eq!(structured(&r)["error"], "audit_unavailable", "{}", text(&r));
    assert!(s.workspace.join("proof.txt").exists());
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
}

fn execkit(args: &[&str], file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_execkit"))
        .args(args)
        .arg(file)
        .output()
        .unwrap()
}

#[tokio::test]
async fn audit_export_gives_verified_records_as_jsonl_and_ocsf() {
    let s = Setup::new("");
    a_run(&s).await;
    let log = std::fs::read_to_string(&s.audit).unwrap();
    let o = execkit(&["audit", "export", "--format", "jsonl"], &s.audit);
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap(), log);

    let o = execkit(
        &["audit", "export", "--format", "ocsf", "--from-seq", "1"],
        &s.audit,
    );
    assert!(o.status.success());
    let events: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), log.lines().count() - 1, "from seq 1");
    let denied = events
        .iter()
        .find(|e| e["class_uid"] == 1007 && e["process"]["cmd_line"] == "rm -rf /")
        .expect("the refusal");
    assert_eq!(denied["disposition_id"], 2, "{denied}");
    assert_eq!(denied["actor"]["user"]["name"], "agent");
    assert!(events
        .iter()
        .any(|e| e["class_uid"] == 6003 && e["api"]["operation"] == "session_create"));
    for e in &events {
        for field in [
            "class_uid",
            "category_uid",
            "activity_id",
            "type_uid",
            "time",
            "severity_id",
        ] {
            assert!(e[field].is_u64(), "{field}: {e}");
        }
        assert_eq!(e["metadata"]["version"], "1.1.0");
    }

    // A damaged log exports nothing.
    let mut lines: Vec<String> = log.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace("to syslog", "to nowhere");
    std::fs::write(&s.audit, lines.join("\n") + "\n").unwrap();
    let o = execkit(&["audit", "export", "--format", "ocsf"], &s.audit);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}
