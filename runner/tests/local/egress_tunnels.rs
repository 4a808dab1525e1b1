//! Tunnels at their edges. A tunnel is decided on the TLS name its client asks for too:
//! `CONNECT` to a listed host with a ClientHello naming another (fronting a site through a
//! shared front end) is refused at the connection, locally and over SSH, and the upstream
//! never sees the hello; a hello naming the tunnel's own host passes untouched. A client
//! that shuts its writing half right after its request is answered and recorded.

use crate::common::*;
use crate::egress::brokered;
use crate::remote_egress::brokered_ssh;
use execkit_runner::Session;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// A loopback server here that keeps the first bytes of each connection.
fn recorder() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for c in l.incoming().take(16) {
            let Ok(mut c) = c else { return };
            c.set_read_timeout(Some(std::time::Duration::from_secs(3)))
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            keep.lock().unwrap().push(buf[..n].to_vec());
        }
    });
    (port, got)
}

fn hellos(got: &Mutex<Vec<Vec<u8>>>) -> usize {
    got.lock()
        .unwrap()
        .iter()
        .filter(|b| b.first() == Some(&0x16))
        .count()
}

async fn the_tls_name_is_decided(name: &str, s: &Session) {
    let (port, got) = recorder();
    let hello = |sni: &str| {
        format!("openssl s_client -proxy 127.0.0.1:3128 -connect registry.test:{port} -servername {sni} < /dev/null")
    };
    let r = run(s, &hello("registry.test")).await;
    assert!(r.runtime_denials.is_empty(), "{name}: {r:?}");
    assert_eq!(hellos(&got), 1, "{name}: the hello did not pass: {r:?}");
    let r = run(s, &hello("evil.test")).await;
    let d = refused_at(&r, &format!("evil.test:{port}"));
    assert!(d.program.ends_with("/openssl"), "{name}: {d:?}");
    assert_eq!(
        hellos(&got),
        1,
        "{name}: the fronted hello reached the upstream"
    );
}

#[tokio::test]
async fn a_tunnel_is_decided_on_its_tls_name_locally() {
    let ws = Workspace::new("egress-sni");
    let s = brokered(&ws, None).await;
    the_tls_name_is_decided("local", &s).await;
    s.close().await;
}

#[tokio::test]
async fn a_tunnel_is_decided_on_its_tls_name_over_ssh() {
    let Some((s, _ws)) = brokered_ssh().await else {
        return;
    };
    the_tls_name_is_decided("ssh", &s).await;
    s.close().await;
}

#[tokio::test]
async fn a_request_whose_client_half_closes_is_decided_and_recorded() {
    let ws = Workspace::new("egress-half-close");
    let s = brokered(&ws, None).await;
    std::fs::write(
        ws.path().join("half.py"),
        "import socket\nc = socket.create_connection(('127.0.0.1', 3128))\nc.sendall(b'CONNECT evil.test:80 HTTP/1.1\\r\\nHost: evil.test:80\\r\\n\\r\\n')\nc.shutdown(socket.SHUT_WR)\nprint(c.recv(64).split(b'\\r\\n')[0].decode())\n",
    )
    .unwrap();
    let r = ok(&s, "python3 half.py").await;
    assert_eq!(r.stdout.trim(), "HTTP/1.1 403 Forbidden", "{r:?}");
    let d = refused_at(&r, "evil.test:80");
    assert!(d.program.contains("python3"), "{d:?}");
    s.close().await;
}
