//! SSH connections against a real sshd that `scripts/test.sh` starts on a loopback port
//! (`scripts/sshd-for-tests.sh`, state in `$EXECKIT_TEST_SSHD_DIR`): host keys checked
//! against the operator's known_hosts (plain, hashed, `[host]:port`, changed, revoked,
//! unknown, trust-on-first-use), key and password authentication, key-file permissions.

use base64::Engine as _;
use execkit_runner::known_hosts::{HostKeyVerdict, KnownHosts};
use execkit_runner::ssh::{SshConnection, SshError, SshSettings, SshTarget, UnknownHosts};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The tests take turns: one counts sshd's connections.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Sshd {
    dir: PathBuf,
    port: u16,
    user: String,
    host_type: String,
    host_blob: Vec<u8>,
    other_blob: Vec<u8>,
}

fn pub_key(path: &std::path::Path) -> (String, Vec<u8>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut f = text.split_whitespace();
    let t = f.next().unwrap().to_string();
    let b = base64::engine::general_purpose::STANDARD
        .decode(f.next().unwrap())
        .unwrap();
    (t, b)
}

/// The test sshd, or `None` outside CI when none was started (CI fails instead).
fn sshd() -> Option<Sshd> {
    let Some(dir) = std::env::var_os("EXECKIT_TEST_SSHD_DIR").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no test sshd: scripts/test.sh starts one (EXECKIT_TEST_SSHD_DIR)"
        );
        eprintln!("skipping: no test sshd (run scripts/test.sh)");
        return None;
    };
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let (host_type, host_blob) = pub_key(&dir.join("host_ed25519_key.pub"));
    let (_, other_blob) = pub_key(&dir.join("other_key.pub"));
    Some(Sshd {
        port: read("port").parse().unwrap(),
        user: read("user"),
        host_type,
        host_blob,
        other_blob,
        dir,
    })
}

impl Sshd {
    fn target(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            user: self.user.clone(),
        }
    }

    /// Settings with a private copy of `key` (owner-only) and a known_hosts with `lines`.
    fn settings(&self, tag: &str, key: &str, lines: &[String]) -> (SshSettings, PathBuf) {
        let work = std::env::temp_dir().join(format!("ek-ssh-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let kh = work.join("known_hosts");
        std::fs::write(&kh, lines.join("\n") + "\n").unwrap();
        let k = work.join("id");
        std::fs::copy(self.dir.join(key), &k).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut s = SshSettings::new(&kh);
        s.identity_files = vec![k];
        (s, work)
    }

    fn trusted_line(&self) -> String {
        KnownHosts::line_for("127.0.0.1", self.port, &self.host_type, &self.host_blob)
    }

    /// A target on a port only this test listens on (other tests share the sshd, so its
    /// log cannot tell whose connection it saw), and the listener: a connection refused
    /// before anything connects never shows up there.
    fn decoy(&self) -> (SshTarget, std::net::TcpListener) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        (
            SshTarget {
                host: "127.0.0.1".into(),
                port,
                user: self.user.clone(),
            },
            l,
        )
    }
}

/// Nothing connected to the decoy.
fn unreached(l: &std::net::TcpListener) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(200));
    matches!(l.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn a_known_host_and_an_authorized_key_run_a_command() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let (s, work) = d.settings("ok", "user_key", &[d.trusted_line()]);
    let c = SshConnection::connect(&s, &d.target()).await.unwrap();
    let out = c
        .run("echo hi; id -un; echo err >&2; exit 3")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hi\n{}\n", d.user)
    );
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_status, Some(3));
    c.close().await;
    let _ = std::fs::remove_dir_all(work);
}

#[tokio::test]
async fn hashed_entries_with_a_port_are_trusted() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let line = KnownHosts::hashed_line(
        "127.0.0.1",
        d.port,
        &d.host_type,
        &d.host_blob,
        b"0123456789abcdefghij",
    );
    assert!(line.starts_with("|1|"));
    let (s, work) = d.settings("hashed", "user_key", &[line]);
    let c = SshConnection::connect(&s, &d.target()).await.unwrap();
    assert_eq!(c.run("echo ok").await.unwrap().stdout, b"ok\n");
    c.close().await;
    let _ = std::fs::remove_dir_all(work);
}

#[tokio::test]
async fn unknown_changed_and_revoked_host_keys_are_refused_with_clear_messages() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let changed = KnownHosts::line_for("127.0.0.1", d.port, &d.host_type, &d.other_blob);
    let revoked = format!(
        "@revoked * {} {}",
        d.host_type,
        base64::engine::general_purpose::STANDARD.encode(&d.host_blob)
    );
    // The key on port 22's name does not cover this port.
    let wrong_port = KnownHosts::line_for("127.0.0.1", 22, &d.host_type, &d.host_blob);
    for (tag, lines, want) in [
        ("unknown", vec![], "unknown host"),
        ("port", vec![wrong_port], "unknown host"),
        ("changed", vec![changed], "HOST KEY CHANGED"),
        ("revoked", vec![d.trusted_line(), revoked], "REVOKED"),
    ] {
        let (s, work) = d.settings(tag, "user_key", &lines);
        let e = match SshConnection::connect(&s, &d.target()).await {
            Ok(_) => panic!("{tag}: connected"),
            Err(e) => e,
        };
        assert!(matches!(e, SshError::HostKey { .. }), "{tag}: {e}");
        assert!(e.to_string().contains(want), "{tag}: {e}");
        let _ = std::fs::remove_dir_all(work);
    }
}

#[tokio::test]
async fn trust_on_first_use_appends_the_key_and_insecure_accepts_anything() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let (mut s, work) = d.settings("tofu", "user_key", &[]);
    s.unknown_hosts = UnknownHosts::TrustOnFirstUse;
    SshConnection::connect(&s, &d.target())
        .await
        .unwrap()
        .close()
        .await;
    let kh = std::fs::read_to_string(&s.known_hosts).unwrap();
    assert!(kh.contains(&d.trusted_line()), "{kh}");
    s.unknown_hosts = UnknownHosts::Refuse;
    SshConnection::connect(&s, &d.target())
        .await
        .unwrap()
        .close()
        .await;
    // A changed key is refused even under trust-on-first-use...
    let changed = KnownHosts::line_for("127.0.0.1", d.port, &d.host_type, &d.other_blob);
    std::fs::write(&s.known_hosts, changed + "\n").unwrap();
    s.unknown_hosts = UnknownHosts::TrustOnFirstUse;
    assert!(matches!(
        SshConnection::connect(&s, &d.target()).await,
        Err(SshError::HostKey {
            verdict: HostKeyVerdict::Changed { .. },
            ..
        })
    ));
    // ...and only the test-only opt-in takes it.
    s.unknown_hosts = UnknownHosts::InsecureAcceptAny;
    SshConnection::connect(&s, &d.target())
        .await
        .unwrap()
        .close()
        .await;
    let _ = std::fs::remove_dir_all(work);
}

#[tokio::test]
async fn authentication_uses_only_operator_credentials() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let (mut s, work) = d.settings("auth", "other_key", &[d.trusted_line()]);
    let e = match SshConnection::connect(&s, &d.target()).await {
        Ok(_) => panic!("an unauthorized key logged in"),
        Err(e) => e,
    };
    assert!(matches!(e, SshError::Auth { .. }), "{e}");
    assert!(e.to_string().contains("publickey ssh-ed25519"), "{e}");
    s.password = Some(std::fs::read_to_string(d.dir.join("password")).unwrap());
    let c = SshConnection::connect(&s, &d.target()).await.unwrap();
    assert_eq!(c.run("echo in").await.unwrap().stdout, b"in\n");
    c.close().await;
    s.password = Some("wrong".into());
    assert!(matches!(
        SshConnection::connect(&s, &d.target()).await,
        Err(SshError::Auth { .. })
    ));
    let _ = std::fs::remove_dir_all(work);
}

#[tokio::test]
async fn a_readable_key_file_is_refused_before_anything_connects() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let (s, work) = d.settings("perm", "user_key", &[d.trusted_line()]);
    std::fs::set_permissions(&s.identity_files[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    let (target, decoy) = d.decoy();
    let e = match SshConnection::connect(&s, &target).await {
        Ok(_) => panic!("connected with a group/world-readable key"),
        Err(e) => e,
    };
    assert!(matches!(e, SshError::KeyFile { .. }), "{e}");
    assert!(e.to_string().contains("too open"), "{e}");
    assert!(unreached(&decoy), "a connection was made");
    let _ = std::fs::remove_dir_all(work);
}

/// A throwaway ssh-agent holding `keys`, killed on drop.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Agent {
    fn start(work: &std::path::Path, keys: &[&std::path::Path]) -> Agent {
        let socket = work.join("agent.sock");
        let _ = std::fs::remove_file(&socket);
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (apt: openssh-client)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for k in keys {
            let ok = std::process::Command::new("ssh-add")
                .arg(k)
                .env("SSH_AUTH_SOCK", &socket)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(ok.success(), "ssh-add {}", k.display());
        }
        Agent { child, socket }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn keys_from_the_operators_ssh_agent() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let (mut s, work) = d.settings("agent", "user_key", &[d.trusted_line()]);
    let key = s.identity_files.remove(0);
    let agent = Agent::start(&work, &[&key]);
    s.agent_socket = Some(agent.socket.clone());
    let c = SshConnection::connect(&s, &d.target()).await.unwrap();
    assert_eq!(
        c.run("echo via-agent").await.unwrap().stdout,
        b"via-agent\n"
    );
    c.close().await;
    drop(agent);
    // An agent with only a key the host does not accept: a clear list of what was tried.
    std::fs::copy(d.dir.join("other_key"), &key).unwrap();
    let agent = Agent::start(&work, &[&key]);
    s.agent_socket = Some(agent.socket.clone());
    let e = match SshConnection::connect(&s, &d.target()).await {
        Ok(_) => panic!("an unauthorized agent key logged in"),
        Err(e) => e,
    };
    assert!(e.to_string().contains("ssh-agent ssh-ed25519"), "{e}");
    drop(agent);
    // No agent at the socket.
    let e = match SshConnection::connect(&s, &d.target()).await {
        Ok(_) => panic!("logged in without credentials"),
        Err(e) => e,
    };
    assert!(e.to_string().contains("ssh-agent at"), "{e}");
    let _ = std::fs::remove_dir_all(work);
}

#[tokio::test]
async fn passphrases_and_passwords_from_owner_only_files() {
    let _turn = TURN.lock().await;
    let Some(d) = sshd() else { return };
    let (mut s, work) = d.settings("secret-files", "user_key", &[d.trusted_line()]);
    // Encrypt the key copy with a passphrase.
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "open sesame", "-f"])
        .arg(&s.identity_files[0])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let phrase = work.join("passphrase");
    std::fs::write(&phrase, "open sesame\n").unwrap();
    std::fs::set_permissions(&phrase, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.passphrase_file = Some(phrase.clone());
    let c = SshConnection::connect(&s, &d.target()).await.unwrap();
    assert_eq!(c.run("echo unlocked").await.unwrap().stdout, b"unlocked\n");
    c.close().await;
    // A readable passphrase file is refused before anything connects.
    std::fs::set_permissions(&phrase, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (target, decoy) = d.decoy();
    let e = match SshConnection::connect(&s, &target).await {
        Ok(_) => panic!("used a world-readable passphrase file"),
        Err(e) => e,
    };
    assert!(matches!(e, SshError::SecretFile { .. }), "{e}");
    assert!(e.to_string().contains("too open"), "{e}");
    assert!(unreached(&decoy), "a connection was made");
    // A password from a file, after an unauthorized key.
    s.identity_files = Vec::new();
    s.passphrase_file = None;
    let pw = work.join("password");
    std::fs::copy(d.dir.join("password"), &pw).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.password_file = Some(pw);
    let c = SshConnection::connect(&s, &d.target()).await.unwrap();
    assert_eq!(c.run("echo pw").await.unwrap().stdout, b"pw\n");
    c.close().await;
    let _ = std::fs::remove_dir_all(work);
}
