//! The audit log fails closed: a command whose decision record cannot be written does not
//! run, a session whose opening cannot be recorded does not open, and a record cut short
//! by the fault is taken back out, so the log stays verifiable. A real fault: a small tmpfs
//! filled to the last byte.

use crate::common::*;
use execkit_audit::{AuditLog, AuditOptions, VerifyOptions};
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecError, SessionError};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the filesystem of `dir` to its last byte.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![b'x'; 4096];
    while f.write_all(&block).is_ok() {}
    // The last partial block.
    while f.write_all(b"x").is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test]
async fn an_audit_log_that_cannot_record_refuses_commands_and_sessions() {
    // Mounting needs root: CI runs as root; elsewhere the test says why it cannot run.
    let base = std::env::temp_dir().join(format!("ek-auditfs-{}", std::process::id()));
    let Some(fs) = Tmpfs::mount(&base, "256k") else {
        assert!(
            std::env::var("CI").is_err(),
            "cannot mount a tmpfs for the audit fault test (root is needed)"
        );
        eprintln!("skipping: cannot mount a tmpfs (not root)");
        return;
    };
    let log_path = base.join("audit.jsonl");
    let log = Arc::new(Mutex::new(
        AuditLog::open(&log_path, AuditOptions { fsync: true }).unwrap(),
    ));
    let ws = Workspace::new("audit-faults");
    std::fs::write(ws.path().join("proof.txt"), "keep me").unwrap();
    let s = config(&ws, default_policies(), Profile::Workspace)
        .audit(log.clone())
        .local()
        .await
        .unwrap();
    ok(&s, "echo recorded").await;

    // Full. The log's last page may still hold a record or two (tmpfs allocates pages):
    // commands run until one cannot be recorded, and from then on none does.
    fill(&base);
    let mut refused = false;
    for _ in 0..8 {
        match s.exec("true", &Default::default()).await {
            Ok(_) => {}
            Err(ExecError::AuditUnavailable(_)) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused, "a full log kept recording");
    match s.exec("rm -f proof.txt", &Default::default()).await {
        Err(ExecError::AuditUnavailable(why)) => {
            assert!(why.contains("No space") || why.contains("space"), "{why}")
        }
        other => panic!("ran without a decision record: {other:?}"),
    }
    assert!(ws.path().join("proof.txt").exists(), "the file was deleted");

    // No new session opens either (each that still fits in the log's last page is
    // recorded; the first that does not is refused and closed again).
    let mut opened = Vec::new();
    let mut refused_open = false;
    for _ in 0..20 {
        match config(
            &Workspace::new("audit-faults-2"),
            default_policies(),
            Profile::Workspace,
        )
        .audit(log.clone())
        .local()
        .await
        {
            Err(SessionError::AuditUnavailable(_)) => {
                refused_open = true;
                break;
            }
            Err(e) => panic!("a different error: {e}"),
            Ok(s2) => opened.push(s2),
        }
    }
    assert!(refused_open, "sessions kept opening on a full log");

    // Space again: commands run, and nothing was appended onto a torn line.
    std::fs::remove_file(base.join("filler")).unwrap();
    for s2 in opened {
        s2.close().await;
    }
    ok(&s, "echo recorded again").await;
    ok(&s, "rm -f proof.txt").await;
    assert!(!ws.path().join("proof.txt").exists());
    s.close().await;
    let report = execkit_audit::verify_file(&log_path, &VerifyOptions::default()).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    // A command record for the one `rm` that ran, none for those refused.
    let text = std::fs::read_to_string(&log_path).unwrap();
    let ran = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "command" && v["command"] == "rm -f proof.txt")
        .count();
    assert_eq!(ran, 1, "{text}");
    assert!(text.contains("recorded again"), "{text}");
    // What could not be written is in the chain as recovery records (one may fit in the
    // full log's last page and be written while the next record still is not).
    let recoveries = text
        .lines()
        .filter(|l| l.contains(r#""kind":"recovery""#))
        .count();
    assert!(recoveries >= 1, "{text}");
    drop(fs);
}

/// `chattr` on the log: `+i` (immutable) or `-i`.
fn chattr(flag: &str, path: &Path) {
    let st = Command::new("chattr").arg(flag).arg(path).status().unwrap();
    assert!(st.success(), "chattr {flag} {}", path.display());
}

#[tokio::test]
async fn an_immutable_log_refuses_commands_and_program_starts_and_the_gap_is_recorded() {
    // `chattr` needs root and a filesystem with inode flags; CI has both.
    let dir = std::env::temp_dir().join(format!("ek-auditimm-{}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("audit.jsonl");
    let log = Arc::new(Mutex::new(
        AuditLog::open(&log_path, AuditOptions { fsync: true }).unwrap(),
    ));
    let probe = Command::new("chattr").arg("+i").arg(&log_path).status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var("CI").is_err(),
            "cannot chattr +i the audit log (root and chattr are needed)"
        );
        eprintln!("skipping: cannot chattr +i");
        return;
    }
    chattr("-i", &log_path);
    let ws = Workspace::new("audit-immutable");
    std::fs::write(ws.path().join("proof.txt"), "keep me").unwrap();
    std::fs::write(ws.path().join("run.sh"), "touch made.txt\n").unwrap();
    // The log is made immutable at the moment the program start inside the script is
    // decided: the command's own record is in, the program's cannot be written.
    let (path2, armed) = (
        log_path.clone(),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let armed2 = armed.clone();
    let observer: execkit_runner::Observer = Arc::new(move |e: &execkit_audit::AuditEvent| {
        if let execkit_audit::AuditEvent::Decision(d) = e {
            let is_touch = d.runtime.is_some() && d.command.contains("/touch'");
            if is_touch && armed2.load(std::sync::atomic::Ordering::SeqCst) {
                chattr("+i", &path2);
            }
        }
    });
    let s = config(&ws, default_policies(), Profile::Workspace)
        .audit(log.clone())
        .observer(observer)
        .local()
        .await
        .unwrap();
    ok(&s, "echo recorded").await;

    // A program started by an allowed command: refused as it starts.
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = s.exec("sh ./run.sh", &Default::default()).await.unwrap();
    armed.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !ws.path().join("made.txt").exists(),
        "the program ran unrecorded: {r:?}"
    );
    assert!(
        r.runtime_denials
            .iter()
            .any(|d| d.program.ends_with("touch") && d.reason.contains("audit log")),
        "{:?}",
        r.runtime_denials
    );

    // Still immutable: commands are refused, and no session opens.
    match s.exec("rm -f proof.txt", &Default::default()).await {
        Err(ExecError::AuditUnavailable(why)) => {
            assert!(why.contains("not permitted"), "{why}")
        }
        other => panic!("ran without a decision record: {other:?}"),
    }
    assert!(ws.path().join("proof.txt").exists(), "the file was deleted");
    let second = config(
        &Workspace::new("audit-immutable-2"),
        default_policies(),
        Profile::Workspace,
    )
    .audit(log.clone())
    .local()
    .await;
    assert!(
        matches!(second, Err(SessionError::AuditUnavailable(_))),
        "a session opened on an immutable log"
    );
    assert!(log.lock().unwrap().failing().is_some());

    // Writable again: a recovery record says what was lost, then the command's record.
    chattr("-i", &log_path);
    ok(&s, "echo recorded again").await;
    assert!(log.lock().unwrap().failing().is_none());
    s.close().await;
    let report = execkit_audit::verify_file(&log_path, &VerifyOptions::default()).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    let kinds: Vec<String> = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["kind"].as_str().unwrap_or("").to_string())
        .collect();
    let recovery = kinds.iter().position(|k| k == "recovery");
    assert!(recovery.is_some(), "no recovery record: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "recovery").count(),
        1,
        "{kinds:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
