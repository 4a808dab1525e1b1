//! The JSON-RPC layer, driven with raw lines as a broken or hostile client would write
//! them: every line gets an answer, the server keeps serving, signals end it promptly.

use super::common::*;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The server on raw pipes.
struct Raw {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Raw {
    async fn start(s: &Setup) -> Raw {
        let mut child = Command::new(env!("CARGO_BIN_EXE_execkit-mcp"))
            .arg("--config")
            .arg(&s.config)
            .env_remove("EXECKIT_CONFIG")
            .env("TMPDIR", &s.tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut raw = Raw {
            child,
            stdin,
            stdout,
        };
        raw.send_json(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}})).await;
        assert_eq!(raw.recv().await["id"], 0);
        raw.send_json(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        raw
    }

    async fn send(&mut self, line: &[u8]) {
        self.stdin.write_all(line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn send_json(&mut self, v: Value) {
        self.send(v.to_string().as_bytes()).await;
    }

    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.stdout.read_line(&mut line))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_line_is_answered_and_the_server_keeps_serving() {
    let s = Setup::new("[limits]\nmax_message_bytes = 65536\n");
    let mut r = Raw::start(&s).await;
    let oversized = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let cases: Vec<(Vec<u8>, Value, i64)> = vec![
        (b"this is not json".to_vec(), Value::Null, -32700),
        (b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"".to_vec(), Value::Null, -32700),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"session_list\",\"arguments\":{\"x\":\"\xff\xfe\"}}}".to_vec(),
            json!(3),
            -32700,
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"session_list\",\"arguments\":\"oops\"}}".to_vec(),
            json!(4),
            -32602,
        ),
        (b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/list\",\"params\":5}".to_vec(), json!(5), -32602),
        (b"[{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}]".to_vec(), Value::Null, -32600),
        (b"{\"id\":7,\"method\":\"ping\"}".to_vec(), json!(7), -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"nope\"}".to_vec(), json!(8), -32601),
        (oversized.into_bytes(), Value::Null, -32600),
    ];
    for (line, id, code) in cases {
        r.send(&line).await;
        let a = r.recv().await;
        let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        assert_eq!(a["id"], id, "{shown}: {a}");
        assert_eq!(a["error"]["code"], code, "{shown}: {a}");
        assert!(
            a.to_string().len() < 2000,
            "the answer echoes too much: {shown}"
        );
    }
    r.send_json(json!({"jsonrpc":"2.0","id":10,"method":"tools/list"}))
        .await;
    let a = r.recv().await;
    assert_eq!(a["id"], 10);
    assert!(a["result"]["tools"].as_array().unwrap().len() >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stdin_held_open_answers_the_running_call_and_exits_within_a_second() {
    for sig in ["TERM", "INT"] {
        let s = Setup::new("");
        let mut r = Raw::start(&s).await;
        r.send_json(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"session_create","arguments":{}}})).await;
        let id = r.recv().await["result"]["structuredContent"]["session_id"]
            .as_str()
            .unwrap()
            .to_string();
        r.send_json(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"session_exec","arguments":{"session_id": id, "command": "sleep 30"}}})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pid = r.child.id().unwrap().to_string();
        let sent = Instant::now();
        assert!(std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap()
            .success());
        let a = r.recv().await;
        assert_eq!(a["id"], 2, "SIG{sig}: {a}");
        assert_eq!(
            a["result"]["structuredContent"]["cancelled"], true,
            "SIG{sig}: {a}"
        );
        let status = tokio::time::timeout(Duration::from_secs(1), r.child.wait())
            .await
            .unwrap_or_else(|_| panic!("SIG{sig}: still running 1 s later (stdin is open)"))
            .unwrap();
        assert!(sent.elapsed() < Duration::from_secs(1));
        assert!(status.success(), "SIG{sig}: {status:?}");
        // stdin was never closed: r.stdin is still alive here.
        drop(r.stdin);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_session_id_is_not_echoed_back() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let huge = "a".repeat(1 << 20);
    for (tool, args) in [
        (
            "session_exec",
            json!({"session_id": huge, "command": "true"}),
        ),
        ("session_destroy", json!({"session_id": huge})),
        (
            "policy_check",
            json!({"session_id": huge, "command": "true"}),
        ),
    ] {
        let r = call(&c, tool, args).await;
        assert_eq!(structured(&r)["error"], "unknown_session", "{tool}");
        let answer = serde_json::to_string(&r).unwrap();
        assert!(answer.len() < 2000, "{tool}: {} bytes", answer.len());
    }
    c.cancel().await.unwrap();
}
