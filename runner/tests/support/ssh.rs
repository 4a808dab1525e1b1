//! The test sshd that `scripts/test.sh` starts (`EXECKIT_TEST_SSHD_DIR`): a target and
//! settings for it, and its account's home. Shared by the test binaries that use it.

use base64::Engine as _;
use execkit_runner::known_hosts::KnownHosts;
use execkit_runner::ssh::{SshSettings, SshTarget};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The SSH target and settings of the test sshd (a private known_hosts and key copy per
/// call); `None` outside CI when no test sshd runs.
pub fn ssh_fixture() -> Option<(SshTarget, SshSettings)> {
    static N: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os("EXECKIT_TEST_SSHD_DIR").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no test sshd (scripts/test.sh starts one)"
        );
        return None;
    };
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let port: u16 = read("port").parse().unwrap();
    let host_pub = read("host_ed25519_key.pub");
    let mut f = host_pub.split_whitespace();
    let (t, b) = (f.next().unwrap(), f.next().unwrap());
    let blob = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    let work = std::env::temp_dir().join(format!(
        "ek-remote-ssh-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&work).unwrap();
    let kh = work.join("known_hosts");
    std::fs::write(
        &kh,
        KnownHosts::line_for("127.0.0.1", port, t, &blob) + "\n",
    )
    .unwrap();
    let key = work.join("id");
    std::fs::copy(dir.join("user_key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut s = SshSettings::new(&kh);
    s.identity_files = vec![key];
    Some((
        SshTarget {
            host: "127.0.0.1".into(),
            port,
            user: read("user"),
        },
        s,
    ))
}

/// The test account's home on this machine (the test sshd runs here).
#[allow(dead_code)] // not every test or bench binary writes into the account's home
pub fn ssh_home(user: &str) -> PathBuf {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 5 && f[0] == user).then(|| PathBuf::from(f[5]))
        })
        .expect("the test account")
}
