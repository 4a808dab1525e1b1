//! Runtime decisions, tried as an attacker would: a command the shipped `default` set
//! allows writes a file, then an allowed program runs it (a sourced file, a Makefile, a
//! git hook, an npm script, a script that reads a key, a git textconv, `os.system`,
//! `child_process`, `system(3)`, a sitecustomize). Each harmful program is refused as it
//! starts — the refusal names it, its parents and the policy — and the fake home is
//! untouched. The workspace is outside `/tmp`, so deleting it is something the kernel
//! sandbox would allow and only the runtime decision stops.

use crate::common::*;
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecError, ExecResult, Session, Verdict};
use std::path::PathBuf;

/// A workspace and a fake home outside /tmp, removed on drop.
struct Place {
    root: PathBuf,
}

impl Place {
    fn new(tag: &str) -> Place {
        let root = PathBuf::from(format!("/srv/ek-rt-{tag}-{}", rand_u64()));
        std::fs::create_dir_all(root.join("ws")).unwrap();
        std::fs::create_dir_all(root.join("home/.ssh")).unwrap();
        std::fs::create_dir_all(root.join("home/keep")).unwrap();
        std::fs::write(root.join("home/keep/precious"), "precious\n").unwrap();
        std::fs::write(
            root.join("home/.ssh/id_rsa"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nfake-runtime-test-key\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        Place { root }
    }
    fn ws(&self) -> PathBuf {
        self.root.join("ws")
    }
    fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    fn intact(&self) -> bool {
        std::fs::read_to_string(self.home().join("keep/precious")).is_ok_and(|t| t == "precious\n")
            && self.ws().exists()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn session_in(p: &Place) -> Session {
    Session::builder()
        .workspace(p.ws())
        .home(p.home())
        .engine(default_policies())
        .profile(Profile::Workspace)
        .local()
        .await
        .unwrap()
}

/// Whether `program` is on PATH here; with `CI=true` (where `scripts/test.sh` installs
/// every one of them) a missing program fails the test instead.
fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).exists()));
    assert!(
        found || std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but `{program}` is missing (scripts/test.sh installs it)"
    );
    found
}

use crate::write_then_run::refused;

#[tokio::test]
async fn programs_a_command_starts_are_refused_as_they_start() {
    use crate::write_then_run::{attempt, Stopped, ATTACKS};
    let mut at_start = 0;
    let mut by_text = Vec::new();
    for attack in ATTACKS {
        if !attack.needs.iter().all(|p| have(p)) {
            eprintln!("{}: skipped, {:?} missing here", attack.name, attack.needs);
            continue;
        }
        let p = Place::new("attack");
        let s = session_in(&p).await;
        assert!(
            s.info().await.enforcement.exec_decisions,
            "no runtime decisions here"
        );
        match attempt(&s, attack, "local").await {
            Stopped::AtStart => at_start += 1,
            Stopped::ByTheText => by_text.push(attack.name),
        }
        assert!(p.intact(), "{}: the home was harmed", attack.name);
        s.close().await;
    }
    eprintln!(
        "{at_start} of {} refused at the harmful program's start; by the text: {by_text:?}",
        ATTACKS.len()
    );
    // The point of runtime decisions: most of these pass the decision on the text.
    assert!(at_start * 2 > ATTACKS.len(), "{at_start}");
}

/// The kernel sandbox lets a session write its own workspace; only the runtime decision
/// stands between a script and the workspace's deletion.
#[tokio::test]
async fn a_script_cannot_delete_the_workspace_it_runs_in() {
    let p = Place::new("wipe");
    let s = session_in(&p).await;
    let r = run(&s, "printf 'rm -rf \"$PWD\"\\n' > wipe.sh && bash wipe.sh").await;
    let d = refused(&r, "rm").unwrap_or_else(|| panic!("{r:?}"));
    assert!(d.parents.iter().any(|p| p.ends_with(" bash")), "{d:?}");
    assert!(p.ws().join("wipe.sh").exists(), "the workspace was deleted");
    s.close().await;
}

/// `@ask` at run time, with no human to ask: the program is refused, and says why.
#[tokio::test]
async fn an_ask_at_run_time_without_an_approver_is_refused() {
    if !have("git") {
        return;
    }
    let p = Place::new("ask");
    let s = session_in(&p).await;
    ok(
        &s,
        "git init -q -b main . && git config user.email a@b && git config user.name a && git commit -q --allow-empty -m x && git init -q --bare remote.git && git remote add origin ./remote.git",
    )
    .await;
    let r = run(&s, "printf 'git push origin main\\n' > p.sh && bash p.sh").await;
    let d = refused(&r, "git").unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!(d.verdict, Verdict::Ask, "{d:?}");
    assert!(d.reason.contains("not approved"), "{d:?}");
    s.close().await;
}

/// The everyday work of an agent runs under runtime decisions without a refusal: a C
/// build with make, git with its hooks' plumbing, npm scripts, python, archives.
#[tokio::test]
async fn everyday_builds_run_without_a_runtime_refusal() {
    let p = Place::new("everyday");
    let s = session_in(&p).await;
    let mut commands = vec![
        "mkdir -p d && echo x > d/f && tar czf a.tgz d && tar tzf a.tgz",
        "printf 'x\\n' | sed s/x/y/ | grep -c y",
    ];
    if have("git") {
        commands.push("git init -q . && git config user.email a@b && git config user.name a && echo hi > a.txt && git add a.txt && git commit -qm first && git log --oneline | wc -l && git status --short");
    }
    if have("make") && have("cc") {
        commands.push("printf 'int main(void){return 0;}\\n' > m.c && printf 'all: m\\nm: m.c\\n\\tcc -O2 -o m m.c\\n' > Makefile && make && ./m");
    }
    if have("npm") {
        commands
            .push("npm init -y >/dev/null && npm pkg set scripts.test='echo tested' && npm test");
    }
    if have("python3") {
        commands.push("python3 -c 'import subprocess; subprocess.run([\"ls\"], check=True)'");
    }
    for c in commands {
        let r = ok(&s, c).await;
        assert!(
            r.runtime_denials.is_empty(),
            "`{c}`: {:?}",
            r.runtime_denials
        );
        assert!(
            r.runtime_allowed > 0,
            "`{c}`: no program was decided at its start"
        );
    }
    s.close().await;
}

/// A program refused at its start is in the audit log with its runtime context.
#[tokio::test]
async fn runtime_decisions_are_audited() {
    let p = Place::new("audit");
    let log_path = p.root.join("audit.jsonl");
    let log = execkit_runner::audit::AuditLog::open(&log_path, Default::default()).unwrap();
    let s = Session::builder()
        .workspace(p.ws())
        .home(p.home())
        .engine(default_policies())
        .audit(std::sync::Arc::new(std::sync::Mutex::new(log)))
        .local()
        .await
        .unwrap();
    let r = run(
        &s,
        "printf 'rm -rf ~/keep\\n' > env.sh && . ./env.sh"
            .replace('~', &p.home().display().to_string())
            .as_str(),
    )
    .await;
    assert!(refused(&r, "rm").is_some(), "{r:?}");
    s.close().await;
    let text = std::fs::read_to_string(&log_path).unwrap();
    let runtime: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "decision" && v.get("runtime").is_some())
        .collect();
    let rm = runtime
        .iter()
        .find(|v| {
            v["command"]
                .as_str()
                .is_some_and(|c| c.contains("'rm'") || c.contains("/rm'"))
        })
        .unwrap_or_else(|| panic!("no runtime record of rm: {runtime:?}"));
    assert_eq!(rm["verdict"], "deny");
    assert!(
        rm["runtime"]["under"]
            .as_str()
            .unwrap()
            .contains(". ./env.sh"),
        "{rm}"
    );
    assert!(matches!(s.exec("true").await, Err(ExecError::Closed)));
}
