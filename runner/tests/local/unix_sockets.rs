//! Unix sockets outside the session, measured as harm: a tmux server of the session's own
//! account runs outside the session (as on any developer's machine). Driving it writes
//! where the session's sandbox cannot — shown first with runtime decisions off — so every
//! way of reaching its socket must be refused at the connection, under the shipped
//! `default` forbids over a permit-all set (only the connection's decision stands in the
//! way). The session's own sockets, abstract names in its own network, and a socket the
//! operator lists still connect, as the session's account.

use crate::common::*;
use crate::remote_sessions::ssh_fixture;
use execkit_engine::{Engine, PolicyBundle};
use execkit_runner::sandbox::Profile;
use execkit_runner::{RunAs, Session};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The account the session and the tmux server run as (created by `scripts/test.sh`).
const ACCOUNT: &str = "execkit-home-test";

/// The shipped default set's Unix-socket forbid over a permit-all policy, with `extra`
/// listed in `HostGroup::"unix-sockets"`.
fn forbids_over_permit_all(extra: &[String]) -> Arc<Engine> {
    let set = execkit_policies::DEFAULT;
    let mut entities: Vec<serde_json::Value> = serde_json::from_str(set.entities).unwrap();
    for e in entities.iter_mut() {
        if e["uid"]["type"] == "HostGroup" && e["uid"]["id"] == "unix-sockets" {
            let pats = e["attrs"]["patterns"].as_array_mut().unwrap();
            pats.extend(extra.iter().map(|h| serde_json::json!(h)));
        }
    }
    let text = serde_json::to_string(&entities).unwrap();
    let shipped = set
        .policies
        .iter()
        .map(|(_, t)| *t)
        .find_map(|t| {
            let at = t.find("@id(\"deny-unix-sockets\")")?;
            let end = at + t[at..].find("};")? + 2;
            Some(t[at..end].to_string())
        })
        .expect("the default set forbids Unix sockets");
    let policies = format!("{shipped}\n@id(\"permit-all\") permit(principal, action, resource);");
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[("sockets.cedar", policies.as_str())],
        &text,
    );
    Arc::new(Engine::new(&bundle).unwrap())
}

/// A directory outside the session owned by the account (mode 0700, as tmux keeps its).
struct Outside(PathBuf);

impl Outside {
    fn new(who: &RunAs) -> Outside {
        let d = std::env::temp_dir().join(format!("ek-sock-out-{:x}", rand_u64()));
        std::fs::create_dir_all(&d).unwrap();
        chown(&d, Some(who.uid), Some(who.gid)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        Outside(d.canonicalize().unwrap())
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(self.0.join("tmux"))
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a tmux server as `who` with its socket in `dir`.
fn tmux_server(who: &RunAs, dir: &Path) {
    use std::os::unix::process::CommandExt;
    let st = std::process::Command::new("tmux")
        .arg("-S")
        .arg(dir.join("tmux"))
        .args(["new-session", "-d", "sleep 600"])
        .uid(who.uid)
        .gid(who.gid)
        .env("HOME", dir)
        .status()
        .unwrap();
    assert!(st.success(), "tmux server did not start");
}

async fn session(ws: &Workspace, who: &RunAs, engine: Arc<Engine>, decide: bool) -> Session {
    config(ws, engine, Profile::Workspace)
        .run_as(who.clone())
        .exec_decisions(decide)
        .local()
        .await
        .unwrap()
}

/// Python connecting to `path` and saying whether it got through.
fn py_connect(path: &str) -> String {
    format!(
        "python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect(\"{path}\"); print(\"CONNECTED\")'"
    )
}

/// Every way to reach the tmux server's socket in `out`, by name, link, relative path,
/// magic link and `..`, each refused; the refusal names the socket, program and policy.
async fn attacks_fail(s: &Session, out: &Outside) {
    let sock = out.0.join("tmux").display().to_string();
    let proof = out.0.join("proof");
    let dir = out.0.display();
    let name = out.0.file_name().unwrap().to_string_lossy().to_string();
    let attacks = [
        drive(out),
        py_connect(&sock),
        format!("ln -sf {sock} link && {}", py_connect("link")),
        format!("cd {dir} && {}", py_connect("tmux")),
        py_connect(&format!("/proc/self/root{sock}")),
        py_connect(&format!("{dir}/../{name}/tmux")),
    ];
    for attack in &attacks {
        let r = run(s, attack).await;
        assert!(!r.stdout.contains("CONNECTED"), "{attack}: {r:?}");
    }
    assert!(!proof.exists(), "tmux wrote for the session");
    let r = run(s, &py_connect(&sock)).await;
    let d = r
        .runtime_denials
        .iter()
        .find(|d| d.destination.as_deref() == Some(&format!("unix:{sock}")))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(d.program.contains("python3"), "{d:?}");
    assert!(
        d.policies.contains(&"deny-unix-sockets".to_string()),
        "{d:?}"
    );
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
}

/// The command that has the tmux server in `out` write its proof file.
fn drive(out: &Outside) -> String {
    format!(
        "tmux -S {} new-window -d 'touch {}'; sleep 1",
        out.0.join("tmux").display(),
        out.0.join("proof").display()
    )
}

#[tokio::test]
async fn sockets_outside_the_session_are_refused_at_the_connection() {
    let who = RunAs::lookup(ACCOUNT).unwrap_or_else(|e| {
        panic!("no account {ACCOUNT} ({e}): scripts/test.sh creates it (useradd -m)")
    });
    let out = Outside::new(&who);
    tmux_server(&who, &out.0);
    let proof = out.0.join("proof");
    let ws = Workspace::new("unix-sockets");
    std::fs::set_permissions(ws.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The harm is real: without the connection's decision the server writes for us.
    let open = session(&ws, &who, forbids_over_permit_all(&[]), false).await;
    run(&open, &drive(&out)).await;
    assert!(proof.exists(), "the control attack failed");
    std::fs::remove_file(&proof).unwrap();
    open.close().await;
    let s = session(&ws, &who, forbids_over_permit_all(&[]), true).await;
    attacks_fail(&s, &out).await;
    s.close().await;
}

/// The session's own sockets and abstract names connect; so does one the operator lists,
/// and its peer sees the session's account.
#[tokio::test]
async fn own_and_listed_sockets_connect_as_the_sessions_account() {
    let who = RunAs::lookup(ACCOUNT).unwrap();
    let out = Outside::new(&who);
    let listed = out.0.join("db.sock");
    let seen = out.0.join("seen");
    // A server outside the session that writes down its peer's user and what it sent.
    let server = format!(
        "import socket, struct, os\n\
         s = socket.socket(socket.AF_UNIX); s.bind('{l}'); os.chown('{l}', {u}, {g}); s.listen()\n\
         c, _ = s.accept()\n\
         pid, uid, gid = struct.unpack('3i', c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))\n\
         data = b''\n\
         while True:\n    b = c.recv(4096)\n    if not b: break\n    data += b\n\
         open('{seen}', 'w').write(f'{{uid}} {{data.decode()}}')\n",
        l = listed.display(),
        u = who.uid,
        g = who.gid,
        seen = seen.display(),
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &server])
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if listed.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ws = Workspace::new("unix-own");
    std::fs::set_permissions(ws.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let engine = forbids_over_permit_all(&[format!("unix:{}", listed.display())]);
    let s = session(&ws, &who, engine, true).await;
    let own = "import socket, threading\n\
        def pair(addr):\n    srv=socket.socket(socket.AF_UNIX); srv.bind(addr); srv.listen()\n    c=socket.socket(socket.AF_UNIX); c.connect(addr); a,_=srv.accept(); c.sendall(b'hi'); return a.recv(2)\n\
        print(pair('own.sock'), pair('\\0execkit-abstract-test'))\n";
    std::fs::write(ws.path().join("own.py"), own).unwrap();
    let r = ok(&s, "python3 own.py").await;
    assert_eq!(r.stdout, "b'hi' b'hi'\n");
    let r = ok(
        &s,
        &format!(
            "python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect(\"{}\"); s.sendall(b\"from the session\")'",
            listed.display()
        ),
    )
    .await;
    assert!(r.runtime_denials.is_empty(), "{r:?}");
    child.wait().unwrap();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("{} from the session", who.uid),
        "the peer sees the session's account and its data"
    );
    s.close().await;
}

/// Over SSH the helper stops the same calls and asks this server about the same socket:
/// the tmux server of the SSH account is out of reach, the harm shown first with runtime
/// decisions off.
#[tokio::test]
async fn sockets_outside_the_session_are_refused_over_ssh() {
    let Some((t, secrets)) = ssh_fixture() else {
        return;
    };
    let who = RunAs::lookup(&t.user).unwrap();
    let out = Outside::new(&who);
    tmux_server(&who, &out.0);
    let remote = |decide: bool| {
        Session::builder()
            .engine(forbids_over_permit_all(&[]))
            .exec_decisions(decide)
            .build()
            .unwrap()
    };
    let open = Session::ssh(&t, &secrets, remote(false)).await.unwrap();
    run(&open, &drive(&out)).await;
    assert!(
        out.0.join("proof").exists(),
        "the control attack failed over SSH"
    );
    std::fs::remove_file(out.0.join("proof")).unwrap();
    open.close().await;
    let s = Session::ssh(&t, &secrets, remote(true)).await.unwrap();
    attacks_fail(&s, &out).await;
    s.close().await;
}
