//! Runtime decisions, tried as an attacker would: a command the shipped `default` set
//! allows writes a file, then an allowed program runs it (a sourced file, a Makefile, a
//! git hook, an npm script, a script that reads a key, a git textconv, `os.system`,
//! `child_process`, `system(3)`, a sitecustomize). Each harmful program is refused as it
//! starts — the refusal names it, its parents and the policy — and the fake home is
//! untouched. The workspace is outside `/tmp`, so deleting it is something the kernel
//! sandbox would allow and only the runtime decision stops.

use crate::common::*;
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecError, Session, Verdict};
use std::path::{Path, PathBuf};

/// A workspace and a fake home outside /tmp, removed on drop.
pub(crate) struct Place {
    root: PathBuf,
}

impl Place {
    pub(crate) fn new(tag: &str) -> Place {
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
    pub(crate) fn ws(&self) -> PathBuf {
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

pub(crate) async fn session_in(p: &Place) -> Session {
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
        // A script file: inline code that starts programs is refused before it runs.
        commands.push("printf 'import subprocess\\nsubprocess.run([\"ls\"], check=True)\\n' > sp.py && python3 sp.py");
    }
    for c in commands {
        let r = ok(&s, c).await;
        // Program starts only: connections are the broker's (see the shipped cases below).
        let starts: Vec<_> = r
            .runtime_denials
            .iter()
            .filter(|d| d.destination.is_none())
            .collect();
        assert!(starts.is_empty(), "`{c}`: {starts:?}");
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
    assert!(matches!(
        s.exec("true", &Default::default()).await,
        Err(ExecError::Closed)
    ));
}

/// A project for the everyday case set to work on: a crate, a C program with a Makefile,
/// an npm package, Python tests, text files, all in one git repository.
fn everyday_project(ws: &Path) {
    let files: &[(&str, &str)] = &[
        ("README.md", "# app\n"),
        ("Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"),
        ("src/main.rs", "fn main() {\n    println!(\"hi\"); // TODO\n}\n\n#[test]\nfn t() {}\n"),
        ("main.c", "int main(void) { return 0; }\n"),
        ("src/main.c", "int main(void) { return 0; }\n"),
        ("Makefile", "all: app\napp: main.c\n\tcc -O2 -o app main.c\ntest: app\n\t./app\nclean:\n\trm -f app\n.PHONY: all test clean\n"),
        ("package.json", "{\"name\": \"app\", \"version\": \"1.0.0\", \"scripts\": {\"test\": \"node -e 'process.exit(0)'\", \"build\": \"node scripts/gen.js\", \"lint\": \"echo lint\"}}\n"),
        ("scripts/gen.js", "console.log('generated');\n"),
        ("scripts/test.sh", "#!/bin/sh\necho test\n"),
        ("scripts/setup.sh", "#!/bin/sh\necho setup\n"),
        ("configure", "#!/bin/sh\necho configured\n"),
        ("script.py", "import sys\nprint(sys.argv)\n"),
        ("manage.py", "print('migrated')\n"),
        ("tests/test_app.py", "def test_parse():\n    assert True\n"),
        ("requirements.txt", ""),
        ("notes.txt", "some notes\n"),
        ("build.log", "ok\n"),
        ("app.log", "ok\n"),
        ("data.csv", "a,b\n1,2\n"),
        ("data.tsv", "a\tb\n"),
        ("a.txt", "1 x\n2 y\n"),
        ("b.txt", "1 z\n2 w\n"),
        ("big.csv", "x\ny\n"),
        ("files.txt", "notes.txt\n"),
        ("src/data.bin", "\u{1}\u{2}"),
        ("logo.png", "png"),
        ("dist/app.js", "x"),
        ("dist.tgz", "x"),
    ];
    for (path, text) in files {
        let p = ws.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    for script in ["scripts/test.sh", "scripts/setup.sh", "configure"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ws.join(script), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The engine of a shipped policy set.
fn set_engine(set: execkit_policies::PolicySetFiles) -> std::sync::Arc<execkit_runner::Engine> {
    let bundle = execkit_runner::PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        set.entities,
    );
    std::sync::Arc::new(execkit_runner::Engine::new(&bundle).unwrap())
}

/// The allowed local commands of a set's case files (the ones the exec oracle traces).
fn allowed_local_cases(set: execkit_policies::PolicySetFiles) -> Vec<String> {
    let mut out = Vec::new();
    for (_, text) in set.cases {
        let file: toml::Value = toml::from_str(text).unwrap();
        let default_transport = file
            .get("defaults")
            .and_then(|d| d.get("transport"))
            .and_then(|t| t.as_str())
            .unwrap_or("local");
        for case in file
            .get("case")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let transport = case
                .get("transport")
                .and_then(|t| t.as_str())
                .unwrap_or(default_transport);
            // A `started_by` case is a program start, not a command to type.
            let typed = case.get("started_by").is_none();
            if case.get("expect").and_then(|e| e.as_str()) == Some("allow")
                && transport == "local"
                && typed
            {
                if let Some(c) = case.get("command").and_then(|c| c.as_str()) {
                    out.push(c.to_string());
                }
            }
        }
    }
    out
}

/// Every allowed local case of the shipped sets (the exec oracle's allowed cases: builds,
/// tests, git, package managers, the programs hidden in commands' words), run for real
/// under runtime decisions in a project that gives them something to work on: no program
/// any of them starts — the compilers under cargo, gcc and make, npm's and git's children —
/// is refused. Network commands go through a closed proxy port, so they fail fast; one that
/// waits for more (`tail -f`) is stopped at its time-out.
#[tokio::test]
async fn the_shipped_allowed_cases_run_without_a_runtime_refusal() {
    use execkit_runner::ExecOptions;
    let real_home = std::env::var("HOME").unwrap_or_default();
    let path = format!(
        "{real_home}/.cargo/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
    );
    let (mut ran, mut refused_by_text, mut allowed_at_start) = (0, 0, 0);
    let mut strict_shells = 0;
    let mut refusals = Vec::new();
    for set in execkit_policies::SETS {
        let p = Place::new("cases");
        everyday_project(&p.ws());
        // A home of its own (no startup files of this machine's account), with this
        // account's Rust toolchain.
        let mut b = Session::builder()
            .workspace(p.ws())
            .home(p.home())
            .engine(set_engine(*set))
            .profile(Profile::Workspace)
            .env("PATH", path.clone())
            .env("https_proxy", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("PIP_NO_INDEX", "1")
            .env("CARGO_NET_OFFLINE", "true")
            .env(
                "CARGO_TARGET_DIR",
                p.ws().join("target").display().to_string(),
            );
        for var in ["RUSTUP_HOME", "CARGO_HOME"] {
            let dir = std::env::var(var).unwrap_or_else(|_| {
                format!(
                    "{real_home}/.{}",
                    var.trim_end_matches("_HOME").to_lowercase()
                )
            });
            b = b.env(var, dir);
        }
        let s = b.local().await.unwrap();
        let setup = "git init -q . && git config user.email a@b && git config user.name a && git add -A && git commit -qm first && git branch feature/x && git tag v0";
        let _ = s.exec(setup, &Default::default()).await;
        let home_ws = p.ws().display().to_string();
        for command in allowed_local_cases(*set) {
            // Each case starts where the cases' workspace is.
            let _ = s.exec(&format!("cd {home_ws}"), &Default::default()).await;
            let r = match s
                .exec(
                    &command,
                    &ExecOptions::timeout(std::time::Duration::from_secs(8)),
                )
                .await
            {
                Ok(r) => r,
                // Decided for this workspace rather than the cases' `/work`: absolute paths
                // in a few cases name places outside it.
                Err(ExecError::Denied(_)) => {
                    refused_by_text += 1;
                    continue;
                }
                Err(e) => panic!("`{command}`: {e}"),
            };
            ran += 1;
            allowed_at_start += r.runtime_allowed;
            // Connections the broker refused are not program starts: npm's registry
            // resolves to a private address on some machines (a mirror), which the shipped
            // sets refuse unless an operator lists it.
            for d in r
                .runtime_denials
                .into_iter()
                .filter(|d| d.destination.is_none())
            {
                // `strict` allows no `sh -c`: a build tool's script shell is refused as it
                // would be typed (`npm test` runs its script through `sh -c`).
                let shell = ["sh", "bash", "dash"]
                    .iter()
                    .any(|n| d.program.ends_with(&format!("/{n}")));
                let from_build = d.parents.first().is_some_and(|p| {
                    ["npm", "make", "yarn", "pnpm"]
                        .iter()
                        .any(|b| p.split_whitespace().nth(1) == Some(*b))
                });
                if set.name == "strict" && shell && from_build {
                    strict_shells += 1;
                    continue;
                }
                refusals.push(format!(
                    "[{}] `{command}`: {} {:?} in {} (under {}): {}",
                    set.name,
                    d.program,
                    d.argv,
                    d.cwd,
                    d.parents.join(" < "),
                    d.reason
                ));
            }
            if r.shell_exited {
                s.restart().await.unwrap();
            }
        }
        s.close().await;
    }
    eprintln!(
        "shipped allowed cases: {ran} ran ({allowed_at_start} programs allowed at their start), {refused_by_text} refused by the text here, {strict_shells} script shells of build tools refused under strict"
    );
    assert!(
        refusals.is_empty(),
        "runtime refusals:\n{}",
        refusals.join("\n")
    );
    assert!(ran >= 400, "only {ran} ran");
    assert!(allowed_at_start >= ran as u64, "{allowed_at_start}");
}

/// A C program for the race tests: its main thread calls `execve(PATH, {PATH, A1, A2,
/// A3})` from writable buffers while a second thread rewrites them to `rm -rf HOME`
/// (`MODE` `once`: once, after 150 ms, while the decision waits for a human; `spin`: as
/// fast as it can, `N` times in fresh processes).
const RACE_C: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static char path[256], a1[256], a2[256], a3[256];
static const char *home;
static int spin;
static void set(const char *p, const char *x, const char *y, const char *z) {
    strcpy(path, p); strcpy(a1, x); strcpy(a2, y); strcpy(a3, z);
}
static void *flip(void *u) {
    (void)u;
    if (!spin) { usleep(150000); set("/bin/rm", "-rf", home, "--"); return 0; }
    for (;;) { set("/bin/rm", "-rf", home, "--"); set("/usr/bin/git", "push", "origin", "main"); }
}
static void once(void) {
    char *argv[] = {path, a1, a2, a3, 0};
    pthread_t t;
    set("/usr/bin/git", "push", "origin", "main");
    pthread_create(&t, 0, flip, 0);
    execv(path, argv);
    perror("exec");
    _exit(126);
}
int main(int argc, char **argv) {
    home = getenv("HOME");
    spin = argc > 1 && strcmp(argv[1], "spin") == 0;
    if (!spin) once();
    for (int i = 0; i < atoi(argv[2]); i++) {
        pid_t p = fork();
        if (p == 0) once();
        int st; waitpid(p, &st, 0);
    }
    return 0;
}
"#;

/// A session whose runtime approver approves every ask after `delay`.
async fn session_approving_after(p: &Place, delay: std::time::Duration) -> Session {
    let approver: execkit_runner::RuntimeApprover = std::sync::Arc::new(move |_ask| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = tx.send(Some("tester".to_string()));
        });
        rx
    });
    Session::builder()
        .workspace(p.ws())
        .home(p.home())
        .engine(default_policies())
        .profile(Profile::Workspace)
        .runtime_approver(approver)
        .local()
        .await
        .unwrap()
}

/// A second thread rewrites the program and its arguments while the decision waits (a
/// human approves `git push` 400 ms after asking; the rewrite to `rm -rf ~` comes at
/// 150 ms): the arguments are read again after the decision, the change is seen, and the
/// program is refused — neither git nor rm runs.
#[tokio::test]
async fn arguments_rewritten_while_a_program_is_decided_are_refused() {
    if !have("cc") {
        return;
    }
    let p = Place::new("race");
    let s = session_approving_after(&p, std::time::Duration::from_millis(400)).await;
    std::fs::write(p.ws().join("race.c"), RACE_C).unwrap();
    ok(&s, "cc -O1 -pthread -o race race.c").await;
    let r = run(&s, "./race").await;
    let d = refused(&r, "git|rm").unwrap_or_else(|| panic!("{r:?}"));
    assert!(d.reason.contains("changed"), "{d:?}");
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    assert!(p.intact(), "the home was harmed");
    s.close().await;
}

/// The race that stays open (see docs/runtime-decisions.md): a thread rewriting the
/// arguments between the second read and the kernel's own copy of them. A thread that
/// flips `git push` and `rm -rf ~` as fast as it can, over 200 starts, gets refusals
/// and may get an `rm` through — which the kernel sandbox then stops: the home, outside
/// the workspace, is intact.
#[tokio::test]
async fn a_spinning_rewriter_never_gets_past_the_kernel() {
    if !have("cc") {
        return;
    }
    let p = Place::new("spin");
    let s = session_approving_after(&p, std::time::Duration::ZERO).await;
    std::fs::write(p.ws().join("race.c"), RACE_C).unwrap();
    ok(&s, "cc -O1 -pthread -o race race.c").await;
    let r = run(&s, "./race spin 200").await;
    let changed = r
        .runtime_denials
        .iter()
        .filter(|d| d.reason.contains("changed"))
        .count();
    eprintln!(
        "spin: {} refusals ({changed} for a change), {} programs allowed",
        r.runtime_denials.len(),
        r.runtime_allowed
    );
    assert!(p.intact(), "the home was harmed: {r:?}");
    s.close().await;
}

/// The shell outlives the thread that started the session: a shell forked by a runtime's
/// pool thread would die with it (`PR_SET_PDEATHSIG` follows the parent thread, and
/// tokio ends a blocking-pool thread after 10 s idle), mid-build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_outlives_idle_runtime_threads() {
    let p = Place::new("idle");
    let s = session_in(&p).await;
    assert!(s.info().await.enforcement.exec_decisions);
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let r = ok(&s, "echo alive").await;
    assert_eq!(r.stdout, "alive\n");
    s.close().await;
}

/// A script's path through a link the session made is decided where the link leads: the
/// `cat` of `k/id_rsa` with `k -> ~/.ssh` is the `cat` of the key (refused as it starts,
/// not left to the kernel), and a link inside the workspace changes nothing.
#[tokio::test]
async fn paths_through_links_are_decided_where_they_lead() {
    let p = Place::new("links");
    let s = session_in(&p).await;
    std::os::unix::fs::symlink(p.home().join(".ssh"), p.ws().join("k")).unwrap();
    let r = run(&s, "printf 'cat k/id_rsa\\n' > s.sh && sh s.sh").await;
    let d = refused(&r, "cat").unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        d.policies.contains(&"deny-credential-files".to_string()),
        "{d:?}"
    );
    // Twice: a start through a link is never remembered.
    let r = run(&s, "sh s.sh").await;
    assert!(refused(&r, "cat").is_some(), "{r:?}");
    std::fs::create_dir(p.ws().join("real")).unwrap();
    std::fs::write(p.ws().join("real/x"), "inside\n").unwrap();
    std::os::unix::fs::symlink(p.ws().join("real"), p.ws().join("lib")).unwrap();
    let r = ok(&s, "printf 'cat lib/x\\n' > t.sh && sh t.sh").await;
    assert_eq!(r.stdout, "inside\n", "{r:?}");
    assert!(r.runtime_denials.is_empty(), "{r:?}");
    s.close().await;
}
