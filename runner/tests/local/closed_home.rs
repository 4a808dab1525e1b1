//! The closed home, measured as harm: credentials planted in the home the session really
//! has (the run-as account's passwd home locally, the SSH account's home remotely), read by
//! every way a program can read a file, under a policy set that permits everything — so
//! only the kernel stands between the attack and the key. Each attack is first shown to
//! work with the sandbox off.

use crate::common::*;
use crate::remote_sessions::{ssh_fixture, ssh_home};
use execkit_runner::sandbox::{HomeAccess, Profile, SandboxConfig};
use execkit_runner::{RunAs, Session};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;

/// A local account whose passwd home the tests may fill (created by `scripts/test.sh`).
const ACCOUNT: &str = "execkit-home-test";

/// Credential files no list names, in the places tools really keep them.
const PLANTED: &[&str] = &[
    ".ssh/id_rsa",
    ".cache/huggingface/token",
    ".aws/cli/cache/0a1b2c.json",
    ".config/someapp/token",
    ".local/share/app/session.key",
    ".netrc",
];

/// Ways to read `~/.ssh/id_rsa` (or all of the home) that the text and runtime decisions
/// cannot see or that a permit-all policy lets through: in-process reads by interpreters
/// and compiled programs, shell reads, links, interpreter lines, build tools, archives.
const ATTACKS: &[&str] = &[
    "cat ~/.ssh/id_rsa",
    "python3 -c 'import os; print(open(os.path.expanduser(\"~/.ssh/id_rsa\")).read())'",
    "perl -e 'open F, \"<\", \"$ENV{HOME}/.ssh/id_rsa\"; print <F>'",
    "node -e 'console.log(require(\"fs\").readFileSync(process.env.HOME + \"/.ssh/id_rsa\", \"utf8\"))'",
    "printf '#include <stdio.h>\\nint main(){char b[256];FILE*f=fopen(\"%s/.ssh/id_rsa\",\"r\");if(!f)return 1;size_t n=fread(b,1,255,f);b[n]=0;puts(b);return 0;}' \"$HOME\" > r.c && cc r.c -o r && ./r",
    "while read -r l; do echo \"$l\"; done < ~/.ssh/id_rsa",
    "printf 'all:\\n\\t@echo \"$(file <%s/.ssh/id_rsa)\"\\n' \"$HOME\" > Makefile && make",
    "printf '#!/bin/cat %s/.ssh/id_rsa\\n' \"$HOME\" > s && chmod +x s && ./s",
    "ln -s ~/.ssh k && cat k/id_rsa",
    "printf 'cat < ~/.ssh/id_rsa\\n' > s.sh && bash s.sh",
    "cat /proc/self/root$HOME/.ssh/id_rsa",
    "ln ~/.ssh/id_rsa hard && cat hard",
    "cp ~/.ssh/id_rsa copied && cat copied",
    "dd if=$HOME/.ssh/id_rsa status=none",
    "awk '{print}' ~/.ssh/id_rsa",
    "(cd ~/.ssh && cat id_rsa)",
    "find ~ -type f -exec cat {} +",
    "grep -r . ~ 2>/dev/null",
    "tar cf - -C ~ . | tar xOf -",
    "python3 -c 'import mmap, os; f=open(os.path.expanduser(\"~/.ssh/id_rsa\")); print(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:])'",
    "cat ~/.cache/huggingface/token ~/.aws/cli/cache/*.json ~/.config/*/token ~/.local/share/*/*.key ~/.netrc",
    "git diff --no-index ~/.ssh/id_rsa /dev/null",
];

/// Fills `home` with the planted credentials (owned by `uid`/`gid`, mode 0600, so only
/// the sandbox can keep that account from them) and a toolchain file that must stay
/// readable. Returns the secret marker.
fn plant(home: &Path, uid: u32, gid: u32) -> String {
    let marker = format!("planted-credential-{}", rand_u64());
    for rel in PLANTED
        .iter()
        .copied()
        .chain([".rustup/toolchains/readable.txt"])
    {
        let path = home.join(rel);
        let mut dir = path.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        while dir != home {
            chown(&dir, Some(uid), Some(gid)).unwrap();
            dir = dir.parent().unwrap().to_path_buf();
        }
        let text = if rel.starts_with(".rustup") {
            "toolchain\n".to_string()
        } else {
            format!("{marker}\n")
        };
        std::fs::write(&path, text).unwrap();
        chown(&path, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    marker
}

/// Runs every attack in `s`; the ones whose output holds `marker`.
async fn leaks(s: &Session, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attack in ATTACKS {
        let r = run(s, attack).await;
        if r.stdout.contains(marker) || r.stderr.contains(marker) {
            out.push(attack.to_string());
        }
    }
    out
}

fn account() -> RunAs {
    RunAs::lookup(ACCOUNT).unwrap_or_else(|e| {
        panic!("no account {ACCOUNT} ({e}): scripts/test.sh creates it (useradd -m)")
    })
}

#[tokio::test]
async fn the_run_as_accounts_home_is_closed_to_every_read() {
    let who = account();
    let marker = plant(&who.home, who.uid, who.gid);
    let ws = Workspace::new("closed-home");
    std::fs::set_permissions(ws.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The harm is real: with the sandbox off the same account reads the key.
    let open = config(&ws, permit_all(), Profile::Off)
        .run_as(who.clone())
        .local()
        .await
        .unwrap();
    let r = run(&open, "cat ~/.ssh/id_rsa").await;
    assert!(
        r.stdout.contains(&marker),
        "the control attack failed: {r:?}"
    );
    open.close().await;
    // And the sandbox without the closure lets most of the attacks through: the attacks
    // are what a closed home must stop, not what Landlock stopped already.
    let unclosed = config(&ws, permit_all(), Profile::Workspace)
        .sandbox(SandboxConfig {
            home: HomeAccess::open_home(),
            ..SandboxConfig::default()
        })
        .run_as(who.clone())
        .local()
        .await
        .unwrap();
    let through = leaks(&unclosed, &marker).await;
    eprintln!(
        "home open: {} of {} attacks read the key",
        through.len(),
        ATTACKS.len()
    );
    assert!(
        through.len() * 4 >= ATTACKS.len() * 3,
        "only {through:#?} read the key with the home open"
    );
    unclosed.close().await;
    let s = config(&ws, permit_all(), Profile::Workspace)
        .run_as(who.clone())
        .local()
        .await
        .unwrap();
    let e = s.info().await.enforcement;
    assert_eq!(
        e.closed_home.as_deref(),
        Some(who.home.canonicalize().unwrap().as_path()),
        "{e:?}"
    );
    let leaked = leaks(&s, &marker).await;
    assert!(
        leaked.is_empty(),
        "{} of {} attacks read the key: {leaked:#?}",
        leaked.len(),
        ATTACKS.len()
    );
    // Toolchains stay readable; the workspace too.
    let r = ok(
        &s,
        "cat ~/.rustup/toolchains/readable.txt; echo w > w.txt; cat w.txt",
    )
    .await;
    assert_eq!(r.stdout, "toolchain\nw\n");
    s.close().await;
}

#[tokio::test]
async fn the_ssh_accounts_home_is_closed_to_every_read() {
    let Some((t, secrets)) = ssh_fixture() else {
        return;
    };
    let home = ssh_home(&t.user);
    let meta = std::fs::metadata(home.join(".bashrc")).unwrap();
    let (uid, gid) = (
        std::os::unix::fs::MetadataExt::uid(&meta),
        std::os::unix::fs::MetadataExt::gid(&meta),
    );
    let marker = plant(&home, uid, gid);
    let b = Session::builder().engine(permit_all());
    let s = Session::ssh(&t, &secrets, b.build().unwrap())
        .await
        .unwrap();
    assert!(s.info().await.enforcement.closed_home.is_some());
    let leaked = leaks(&s, &marker).await;
    assert!(
        leaked.is_empty(),
        "{} of {} attacks read the key over SSH: {leaked:#?}",
        leaked.len(),
        ATTACKS.len()
    );
    let r = ok(&s, "cat ~/.rustup/toolchains/readable.txt").await;
    assert_eq!(r.stdout, "toolchain\n");
    s.close().await;
}
