//! The remote helper's cache on an SSH host, against the test sshd of `scripts/test.sh`:
//! a cached copy that was tampered with, or that others could write, is never run — it is
//! replaced by a fresh upload. (A test binary of its own: it rewrites the cache every other
//! SSH test uses.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_runner::sandbox::Level;
use execkit_runner::ssh::{SshSettings, SshTarget};
use execkit_runner::Session;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

#[path = "support/ssh.rs"]
mod ssh_support;

fn fixture() -> Option<(SshTarget, SshSettings, PathBuf)> {
    let (t, s) = ssh_support::ssh_fixture()?;
    let cache = ssh_support::ssh_home(&t.user).join(".cache/execkit");
    Some((t, s, cache))
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
