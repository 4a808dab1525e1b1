//! Checkpoints: the workspace's files captured and brought back exactly, without touching
//! the user's own repositories.

use crate::common::*;
use execkit_runner::checkpoint::{CheckpointConfig, CheckpointError};
use execkit_runner::sandbox::Profile;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Every entry under `root` (skipping nothing): path → (kind, mode, content or target).
fn tree(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, ('l', 0, t.as_os_str().as_encoded_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(rel, ('d', 0, vec![]));
                stack.push(p);
            } else {
                out.insert(rel, ('f', m.mode() & 0o111, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn git(dir: &Path, args: &[&str]) {
    let st = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

#[tokio::test]
async fn a_restore_brings_back_every_kind_of_change_and_leaves_user_repos_alone() {
    let ws = Workspace::new("cp-kinds");
    let w = ws.path();
    std::fs::create_dir_all(w.join("src/deep")).unwrap();
    std::fs::create_dir_all(w.join("empty/inner")).unwrap();
    std::fs::write(w.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(w.join("src/deep/lib.rs"), "pub fn f() {}\n").unwrap();
    std::fs::write(
        w.join("blob.bin"),
        (0..=255u8).cycle().take(5000).collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(w.join("crlf.txt"), "a\r\nb\r\n").unwrap();
    std::fs::write(w.join(".gitattributes"), "*.txt text eol=lf\n").unwrap();
    std::fs::write(w.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(w.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/main.rs", w.join("link-in")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", w.join("link-out")).unwrap();
    // The user's own repository at the top and a nested one.
    git(w, &["init", "-q"]);
    git(w, &["add", "src"]);
    git(w, &["commit", "-qm", "user"]);
    std::fs::create_dir_all(w.join("vendor/lib")).unwrap();
    git(&w.join("vendor/lib"), &["init", "-q"]);
    std::fs::write(w.join("vendor/lib/x.c"), "int x;\n").unwrap();
    git(&w.join("vendor/lib"), &["add", "."]);
    git(&w.join("vendor/lib"), &["commit", "-qm", "nested"]);
    let git_before = tree(&w.join(".git"));
    let nested_before = tree(&w.join("vendor/lib"));

    let s = session(&ws, Profile::Workspace).await;
    let cp = s.checkpoint(Some("before the agent")).await.unwrap();
    assert_eq!(cp.id, "cp-1");
    let before = {
        let mut t = tree(w);
        t.retain(|k, _| !k.starts_with(".git/") && k != ".git" && !k.starts_with("vendor/lib/"));
        t
    };
    // The agent: modify, delete, rename, add, chmod, relink, fill an empty dir, make a new
    // empty dir, touch the nested repo's files? no: those are the user's.
    ok(&s, "echo changed >> src/main.rs && rm src/deep/lib.rs && mv blob.bin blob2.bin && echo new > added.txt && chmod -x run.sh && ln -sfn /tmp link-in && rm -r empty && mkdir -p newdir/sub && printf 'x\\r\\n' > crlf.txt").await;
    let r = s.restore(&cp.id).await.unwrap();
    assert!(r.written >= 3 && r.created >= 2 && r.deleted >= 2, "{r:?}");
    let mut after = tree(w);
    after.retain(|k, _| !k.starts_with(".git/") && k != ".git" && !k.starts_with("vendor/lib/"));
    // newdir/ is an empty directory the agent made after the checkpoint: left (it holds
    // no file); every captured path is exact.
    after.remove("newdir/sub");
    after.remove("newdir");
    assert_eq!(after, before);
    assert_eq!(
        tree(&w.join(".git")),
        git_before,
        "the user's .git is untouched"
    );
    assert_eq!(
        tree(&w.join("vendor/lib")),
        nested_before,
        "the nested repository is untouched"
    );
    assert_eq!(
        std::fs::read_link(w.join("link-out")).unwrap(),
        Path::new("/etc/passwd")
    );
    s.close().await;
}

#[tokio::test]
async fn gitignore_is_honoured_secrets_in_diffs_are_redacted_and_the_cap_refuses() {
    let ws = Workspace::new("cp-ignore");
    let w = ws.path();
    std::fs::write(w.join(".gitignore"), "target/\n").unwrap();
    std::fs::create_dir_all(w.join("target")).unwrap();
    std::fs::write(w.join("target/huge.o"), vec![0u8; 100_000]).unwrap();
    std::fs::write(w.join("config.env"), "MODE=dev\n").unwrap();
    let mut cfg = CheckpointConfig::default();
    cfg.max_bytes = 50_000;
    let s = config(&ws, permit_all(), Profile::Workspace)
        .checkpoints(cfg)
        .local()
        .await
        .unwrap();
    let cp = s.checkpoint(None).await.unwrap();
    assert_eq!(
        cp.files, 2,
        "{cp:?}: .gitignore and config.env, not target/"
    );
    ok(&s, "echo 'TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345' >> config.env && echo more > target/x.o").await;
    let d = s.checkpoint_diff(&cp.id).await.unwrap();
    assert_eq!(d.changed, ["config.env"]);
    assert!(d.added.is_empty(), "{d:?}");
    assert!(
        d.diff.contains("+TOKEN=[REDACTED:github-pat]"),
        "{}",
        d.diff
    );
    assert!(!d.diff.contains("ghp_"), "{}", d.diff);
    // Restore keeps ignored build output and removes nothing it did not capture.
    s.restore(&cp.id).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(w.join("config.env")).unwrap(),
        "MODE=dev\n"
    );
    assert!(w.join("target/x.o").exists());
    // Past the cap: refused, and the next checkpoint under the cap still works.
    std::fs::write(w.join("big.dat"), vec![1u8; 60_000]).unwrap();
    match s.checkpoint(None).await {
        Err(CheckpointError::TooLarge { cap: 50_000, .. }) => {}
        other => panic!("expected the cap, got {other:?}"),
    }
    std::fs::remove_file(w.join("big.dat")).unwrap();
    let cp2 = s.checkpoint(Some("small again")).await.unwrap();
    assert_eq!(cp2.files, 2);
    assert_eq!(s.checkpoints().await.unwrap().len(), 2);
    assert!(matches!(
        s.restore("cp-99").await,
        Err(execkit_runner::ExecError::Checkpoint(
            CheckpointError::Unknown(_)
        ))
    ));
    assert!(matches!(
        s.checkpoint_diff("../../etc").await,
        Err(CheckpointError::Unknown(_))
    ));
    s.close().await;
}

#[tokio::test]
async fn a_restore_after_the_agent_deleted_half_the_tree() {
    let ws = Workspace::new("cp-half");
    let w = ws.path();
    for d in 0..10 {
        std::fs::create_dir_all(w.join(format!("d{d}"))).unwrap();
        for f in 0..20 {
            std::fs::write(w.join(format!("d{d}/f{f}.txt")), format!("{d}-{f}\n")).unwrap();
        }
    }
    let s = session(&ws, Profile::Workspace).await;
    let cp = s.checkpoint(None).await.unwrap();
    assert_eq!(cp.files, 200);
    ok(&s, "rm -r d0 d1 d2 d3 d4 && echo stray > d5/new.txt").await;
    let r = s.restore(&cp.id).await.unwrap();
    assert_eq!((r.created, r.deleted, r.written), (100, 1, 0), "{r:?}");
    assert_eq!(tree(w).len(), 210);
    // Incremental: one file changed since the last checkpoint.
    ok(&s, "echo x >> d9/f0.txt").await;
    let cp2 = s.checkpoint(None).await.unwrap();
    assert_eq!(cp2.changed_since_previous, 1);
    s.close().await;
}

#[tokio::test]
async fn checkpoints_can_be_turned_off_by_the_operator() {
    let ws = Workspace::new("cp-off");
    let mut cfg = CheckpointConfig::default();
    cfg.enabled = false;
    let s = config(&ws, permit_all(), Profile::Workspace)
        .checkpoints(cfg)
        .local()
        .await
        .unwrap();
    assert!(matches!(
        s.checkpoint(None).await,
        Err(CheckpointError::Disabled)
    ));
    s.close().await;
}

#[tokio::test]
async fn a_policy_asks_for_a_checkpoint_before_a_recursive_delete() {
    let ws = Workspace::new("cp-auto");
    let w = ws.path();
    std::fs::create_dir_all(w.join("build/out")).unwrap();
    std::fs::write(w.join("build/out/a.o"), "obj").unwrap();
    std::fs::write(w.join("notes.txt"), "keep me\n").unwrap();
    let s = config(&ws, default_policies(), Profile::Workspace)
        .local()
        .await
        .unwrap();
    // A plain command takes no checkpoint.
    let r = ok(&s, "cat notes.txt").await;
    assert_eq!(r.checkpoint, None);
    let r = ok(&s, "rm -r build").await;
    let id = r.checkpoint.clone().expect("a checkpoint before rm -r");
    assert!(!w.join("build").exists());
    let list = s.checkpoints().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].automatic.as_deref(), Some("before: rm -r build"));
    s.restore(&id).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(w.join("build/out/a.o")).unwrap(),
        "obj"
    );
    s.close().await;
}

#[tokio::test]
async fn a_restore_never_writes_through_a_link_the_agent_planted() {
    let ws = Workspace::new("cp-link-attack");
    let w = ws.path();
    let outside = Workspace::new("cp-link-outside");
    std::fs::create_dir_all(w.join("d")).unwrap();
    std::fs::write(w.join("d/f"), "workspace file\n").unwrap();
    let s = session(&ws, Profile::Workspace).await;
    let cp = s.checkpoint(None).await.unwrap();
    // The agent swaps the directory for a link out of the workspace and hides the link
    // from the snapshot with .gitignore, hoping the restore writes d/f through it.
    let link_cmd = format!(
        "rm -r d && ln -s {} d && echo d >> .gitignore",
        outside.path().display()
    );
    ok(&s, &link_cmd).await;
    let _ = s.restore(&cp.id).await;
    assert!(
        !outside.path().join("f").exists(),
        "the restore wrote outside the workspace through a planted link"
    );
    s.close().await;
}

/// A permit-all session whose checkpoint store lies in `store` (for the tests that look
/// inside it).
async fn session_with_store(ws: &Workspace, store: &Workspace) -> execkit_runner::Session {
    let mut cfg = CheckpointConfig::default();
    cfg.store_dir = Some(store.path().to_path_buf());
    config(ws, permit_all(), Profile::Workspace)
        .checkpoints(cfg)
        .local()
        .await
        .unwrap()
}

/// The session's git directory inside `store`.
fn store_git_dir(store: &Workspace) -> std::path::PathBuf {
    std::fs::read_dir(store.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("objects").is_dir())
        .expect("the session's store")
}

/// A digest of every file's content and mode under `root` (200 MB is too much to hold
/// twice).
fn digests(root: &Path) -> BTreeMap<String, (u32, u64, [u8; 20])> {
    use sha1::{Digest, Sha1};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, (m.mode() & 0o111, m.len(), Sha1::digest(&data).into()));
        }
    }
    out
}

#[tokio::test]
async fn ten_thousand_files_of_200_mb_are_captured_in_packs_and_restored_exactly() {
    let ws = Workspace::new("cp-10k");
    let w = ws.path();
    let store = Workspace::new("cp-10k-store");
    // 10,000 files of 20 KiB in 100 directories, each its own text (a shared body of
    // varied lines under a header naming the file); some executable.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut body = String::with_capacity(20_560);
    while body.len() < 20_480 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        body.push_str(&format!("line {}: {:x}\n", body.len(), seed));
    }
    for i in 0..10_000u32 {
        let dir = w.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = format!("// file {i}\n").into_bytes();
        data.extend_from_slice(&body.as_bytes()[data.len()..20_480]);
        let f = dir.join(format!("f{i}.txt"));
        std::fs::write(&f, data).unwrap();
        if i % 97 == 0 {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let before = digests(w);
    let s = session_with_store(&ws, &store).await;
    let cp = s.checkpoint(Some("10k")).await.unwrap();
    assert_eq!((cp.files, cp.bytes), (10_000, 10_000 * 20_480), "{cp:?}");
    // The first checkpoint went into packs, which git itself checks object by object.
    let git_dir = store_git_dir(&store);
    let packs = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert!(packs >= 1, "no pack in {}", git_dir.display());
    let fsck = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&git_dir)
        .args(["fsck", "--strict", "--no-dangling"])
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "git fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    // The agent deletes half the tree, rewrites ten files and adds one.
    ok(
        &s,
        "rm -r d0* d1* d2* d3* d4* && for i in 55 56 57 58 59 65 66 67 68 69; do echo changed > d$i/f$i.txt; done && echo stray > d99/new.txt",
    )
    .await;
    let cp2 = s.checkpoint(None).await.unwrap();
    assert_eq!(cp2.files, 5_001);
    let r = s.restore(&cp.id).await.unwrap();
    assert_eq!((r.created, r.written, r.deleted), (5_000, 10, 1), "{r:?}");
    assert!(r.paths_truncated && r.paths.len() == execkit_runner::checkpoint::MAX_LISTED);
    assert!(before == digests(w), "the restored tree differs");
    // Nothing changed since the restore: the next checkpoint hashes nothing new.
    let cp3 = s.checkpoint(None).await.unwrap();
    assert_eq!(cp3.changed_since_previous, 5_011);
    let cp4 = s.checkpoint(None).await.unwrap();
    assert_eq!(cp4.changed_since_previous, 0);
    s.close().await;
}

#[tokio::test]
async fn a_snapshot_never_reads_through_a_directory_swapped_for_a_link() {
    let ws = Workspace::new("cp-swap");
    let w = ws.path().to_path_buf();
    let outside = Workspace::new("cp-swap-outside");
    let store = Workspace::new("cp-swap-store");
    let marker = "OUTSIDE-THE-WORKSPACE-7f3a";
    std::fs::write(outside.path().join("secret.txt"), marker).unwrap();
    std::fs::create_dir_all(w.join("d")).unwrap();
    std::fs::write(w.join("d/secret.txt"), "inside\n").unwrap();
    let s = session_with_store(&ws, &store).await;
    // The agent flips `d` between the real directory and a link out of the workspace as
    // fast as it can, hoping a snapshot scans the directory and reads through the link.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, w, target) = (stop.clone(), w.clone(), outside.path().to_path_buf());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // The file changes every time, so every snapshot must read it again.
                let _ = std::fs::write(w.join("d/secret.txt"), format!("inside {flips}\n"));
                std::thread::sleep(std::time::Duration::from_micros(300));
                let _ = std::fs::rename(w.join("d"), w.join("d.real"));
                let _ = std::os::unix::fs::symlink(&target, w.join("d"));
                std::thread::sleep(std::time::Duration::from_micros(300));
                let _ = std::fs::remove_file(w.join("d"));
                let _ = std::fs::rename(w.join("d.real"), w.join("d"));
                flips += 1;
            }
            flips
        })
    };
    let mut taken = 0;
    for _ in 0..200 {
        // Every snapshot changes: the flip moves files between `d` and `d.real`.
        std::fs::write(w.join("tick"), taken.to_string()).unwrap();
        if s.checkpoint(None).await.is_ok() {
            taken += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(taken > 0 && flips > 100, "taken {taken}, flips {flips}");
    let git_dir = store_git_dir(&store);
    let all = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&git_dir)
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .unwrap();
    assert!(all.status.success());
    assert!(
        !String::from_utf8_lossy(&all.stdout).contains(marker),
        "a snapshot read a file outside the workspace through a swapped link"
    );
    s.close().await;
}

#[tokio::test]
async fn a_fifo_in_the_workspace_never_hangs_a_checkpoint() {
    let ws = Workspace::new("cp-fifo");
    let w = ws.path();
    std::fs::write(w.join("a.txt"), "a\n").unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(w.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    let s = session(&ws, Profile::Workspace).await;
    let cp = tokio::time::timeout(std::time::Duration::from_secs(20), s.checkpoint(None))
        .await
        .expect("a checkpoint with a FIFO in the workspace hung")
        .unwrap();
    // The FIFO is not content: only the file is captured.
    assert_eq!(cp.files, 1, "{cp:?}");
    s.close().await;
}
