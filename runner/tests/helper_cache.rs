//! The remote helper's cache on an SSH host, against the test sshd of `scripts/test.sh`:
//! a cached copy that was tampered with, or that others could write, is never run — it is
//! replaced by a fresh upload. (A test binary of its own: it rewrites the cache every other
//! SSH test uses.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use base64::Engine as _;
use execkit_runner::known_hosts::KnownHosts;
use execkit_runner::sandbox::Level;
use execkit_runner::ssh::{SshSettings, SshTarget};
use execkit_runner::Session;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

fn fixture() -> Option<(SshTarget, SshSettings, PathBuf)> {
    let Some(dir) = std::env::var_os("EXECKIT_TEST_SSHD_DIR").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no test sshd"
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
    let host = read("host_ed25519_key.pub");
    let mut f = host.split_whitespace();
    let (t, b) = (f.next().unwrap(), f.next().unwrap());
    let blob = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    let work = std::env::temp_dir().join(format!("ek-helper-cache-{}", std::process::id()));
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
    let user = read("user");
    let home = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 5 && f[0] == user).then(|| PathBuf::from(f[5]))
        })
        .unwrap();
    Some((
        SshTarget {
            host: "127.0.0.1".into(),
            port,
            user,
        },
        s,
        home.join(".cache/execkit"),
    ))
}

fn engine() -> std::sync::Arc<execkit_runner::Engine> {
    let bundle = execkit_runner::PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[(
            "all.cedar",
            "@id(\"permit-all\") permit(principal, action, resource);",
        )],
        "[]",
    );
    std::sync::Arc::new(execkit_runner::Engine::new(&bundle).unwrap())
}

fn cached(dir: &std::path::Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("helper-"))
        })
        .expect("a cached helper")
}

#[tokio::test]
async fn a_tampered_or_writable_cached_helper_is_replaced_not_run() {
    let Some((t, s, cache)) = fixture() else {
        return;
    };
    let open = || async {
        let config = Session::builder().engine(engine()).build().unwrap();
        Session::ssh(&t, &s, config).await.unwrap()
    };
    // The first session uploads it.
    let _ = std::fs::remove_dir_all(&cache);
    let s1 = open().await;
    assert_eq!(s1.info().await.enforcement.level, Level::Full);
    s1.close().await;
    let file = cached(&cache);
    let good = std::fs::read(&file).unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        meta.mode() & 0o022,
        0,
        "the cached helper is writable by others"
    );
    // Tampered with (by someone with the account's rights, outside any session).
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut bad = good.clone();
    bad.extend_from_slice(b"tampered");
    std::fs::write(&file, &bad).unwrap();
    let s2 = open().await;
    let e = s2.info().await.enforcement;
    assert_eq!(e.level, Level::Full, "{e:?}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "the tampered copy stayed"
    );
    s2.close().await;
    // Writable by everyone: not trusted either.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o777)).unwrap();
    let s3 = open().await;
    assert_eq!(s3.info().await.enforcement.level, Level::Full);
    let mode = std::fs::metadata(cached(&cache)).unwrap().mode();
    assert_eq!(mode & 0o022, 0, "still writable by others: {mode:o}");
    s3.close().await;
}
