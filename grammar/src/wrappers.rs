//! Wrapper programs: `sudo rm x` runs `rm`, so `rm` must be judged too.
//!
//! A wrapper is split into the wrapper command itself (with its own options) and the inner
//! command it runs, which inherits the context and records the wrapper in
//! `structure.wrappers`. Wrappers that run a *string* (`bash -c`, `eval`, `su -c`, `ssh host
//! CMD`, `watch`, `env -S`, `alias`, `trap`) have that string re-parsed one level deeper when
//! it is literal; when it is not, the inner command is marked dynamic so that it can never be
//! allowed by a rule that needs to know the program.

use crate::ir::{Cwd, PathRef, Program, RedirectKind};
use crate::knowledge::{Catalog, Trait};
use crate::paths;
use crate::proto::{Frame, Payload, Proto, Stdin, Unwrapped};
use crate::words::Decoded;

/// Result of scanning wrapper options.
struct Scan {
    /// (option, value) pairs, options as written (`-u`, `--user`).
    opts: Vec<(String, Option<Decoded>)>,
    /// Index in argv of the first word after the options.
    next: usize,
    /// An option word was dynamic: the rest cannot be interpreted.
    dynamic: bool,
}

/// Scans `argv[1..]` for options. `short_val` lists short options taking a value,
/// `long_val` long ones. Stops at the first non-option or after `--`.
fn scan(argv: &[Decoded], short_val: &str, long_val: &[&str], numeric_opts: bool) -> Scan {
    let mut s = Scan {
        opts: Vec::new(),
        next: argv.len(),
        dynamic: false,
    };
    let mut i = 1;
    while i < argv.len() {
        let Some(v) = argv[i].literal_text() else {
            if argv[i].value_text().starts_with('-') {
                s.dynamic = true;
            }
            s.next = i;
            return s;
        };
        if v == "--" {
            s.next = i + 1;
            return s;
        }
        if !v.starts_with('-') || v == "-" {
            s.next = i;
            return s;
        }
        if numeric_opts && v[1..].chars().all(|c| c.is_ascii_digit()) {
            s.opts.push((v.to_string(), None));
            i += 1;
            continue;
        }
        if let Some(long) = v.strip_prefix("--") {
            let (name, val) = match long.split_once('=') {
                Some((n, val)) => (format!("--{n}"), Some(Decoded::literal(val))),
                None => (v.to_string(), None),
            };
            if val.is_none() && long_val.contains(&name.as_str()) {
                s.opts.push((name, argv.get(i + 1).cloned()));
                i += 2;
            } else {
                s.opts.push((name, val));
                i += 1;
            }
            continue;
        }
        let chars: Vec<char> = v[1..].chars().collect();
        let mut j = 0;
        let mut consumed_next = false;
        while j < chars.len() {
            let c = chars[j];
            if short_val.contains(c) {
                let rest: String = chars[j + 1..].iter().collect();
                if rest.is_empty() {
                    s.opts.push((format!("-{c}"), argv.get(i + 1).cloned()));
                    consumed_next = true;
                } else {
                    s.opts
                        .push((format!("-{c}"), Some(Decoded::literal(&rest))));
                }
                break;
            }
            s.opts.push((format!("-{c}"), None));
            j += 1;
        }
        i += if consumed_next { 2 } else { 1 };
    }
    s
}

fn opt<'a>(s: &'a Scan, names: &[&str]) -> Option<&'a Option<Decoded>> {
    s.opts
        .iter()
        .rev()
        .find(|(n, _)| names.contains(&n.as_str()))
        .map(|(_, v)| v)
}

fn has(s: &Scan, names: &[&str]) -> bool {
    s.opts.iter().any(|(n, _)| names.contains(&n.as_str()))
}

fn outer_of(p: &Proto, upto: usize) -> Proto {
    let mut o = p.with_argv(p.argv[..upto.min(p.argv.len())].to_vec());
    o.fixed_paths = p
        .fixed_paths
        .iter()
        .filter(|(i, _)| *i < upto)
        .cloned()
        .collect();
    o
}

fn inner_of(p: &Proto, from: usize, wrapper: &str) -> Proto {
    let mut i = p.with_argv(p.argv[from.min(p.argv.len())..].to_vec());
    i.fixed_paths = p
        .fixed_paths
        .iter()
        .filter(|(j, _)| *j >= from)
        .map(|(j, v)| (j - from, v.clone()))
        .collect();
    i.structure.wrappers.push(wrapper.to_string());
    i
}

/// A command whose program cannot be known (a non-literal payload).
fn dynamic_inner(p: &Proto, raw: &str, wrapper: &str) -> Proto {
    let mut i = p.with_argv(vec![Decoded::opaque(raw)]);
    i.structure.wrappers.push(wrapper.to_string());
    i.structure.dynamic_command = true;
    i
}

fn payload(p: &Proto, text: String, wrapper: &str, cwd: Cwd) -> Payload {
    let mut structure = p.structure.clone();
    structure.wrappers.push(wrapper.to_string());
    let frame = Frame {
        structure,
        redirects: Vec::new(),
        span_override: Some(p.span),
        payload_sources: Default::default(),
        // A payload's commands read what the command that runs it reads.
        stdin: p.stdin.clone(),
    };
    Payload {
        text,
        span: p.span,
        cwd,
        frame,
    }
}

fn split(outer: Proto, inners: Vec<Proto>, payloads: Vec<Payload>) -> Unwrapped {
    Unwrapped::Split {
        outer,
        inners,
        payloads,
    }
}

/// A literal string, or the dynamic-inner fallback.
fn run_string(p: &Proto, outer: Proto, word: &Decoded, wrapper: &str, cwd: Cwd) -> Unwrapped {
    match word.literal_value() {
        Some(text) => {
            let pl = payload(p, text, wrapper, cwd);
            split(outer, vec![], vec![pl])
        }
        None => split(outer, vec![dynamic_inner(p, &word.raw, wrapper)], vec![]),
    }
}

/// The words from `from` on, joined, run as a script (`eval a b`, `watch cmd`, `ssh h cmd`);
/// a dynamic word makes the inner command dynamic.
fn run_words(p: &Proto, outer: Proto, from: usize, wrapper: &str, cwd: Cwd) -> Unwrapped {
    match join_words(&p.argv[from..]) {
        Some(text) => split(outer, vec![], vec![payload(p, text, wrapper, cwd)]),
        None => split(outer, vec![dynamic_inner(p, wrapper, wrapper)], vec![]),
    }
}

/// Joins words as bash would see them after word splitting (`eval a b` runs `a b`).
fn join_words(words: &[Decoded]) -> Option<String> {
    let mut parts = Vec::new();
    for w in words {
        parts.push(w.literal_value()?);
    }
    Some(parts.join(" "))
}

fn resolve_dir(d: &Decoded, cwd: &Cwd) -> Cwd {
    match d.literal_value() {
        Some(v) if v.starts_with('/') => Cwd::Known([paths::resolve("/", &v)].into()),
        Some(v) => match cwd {
            Cwd::Known(b) if !b.is_empty() => {
                Cwd::Known(b.iter().map(|b| paths::resolve(b, &v)).collect())
            }
            _ => Cwd::Unknown,
        },
        None => Cwd::Unknown,
    }
}

/// Splits one wrapper (given the command and the wrapper's name).
type SplitFn = fn(Proto, &str) -> Unwrapped;

/// Wrapper programs and the function that splits each (the shells are handled by [`shell`]).
const WRAPPERS: &[(&str, SplitFn)] = &[
    ("sudo", sudo),
    ("doas", doas),
    ("pkexec", pkexec),
    ("run0", pkexec),
    ("su", su),
    ("env", env_wrapper),
    ("command", command_wrapper),
    ("exec", exec_wrapper),
    ("builtin", bare_wrapper),
    ("nohup", bare_wrapper),
    ("setsid", bare_wrapper),
    ("nice", nice),
    ("ionice", ionice),
    ("stdbuf", stdbuf),
    ("time", time_wrapper),
    ("timeout", timeout),
    ("chroot", chroot),
    ("xargs", xargs),
    ("watch", watch),
    ("eval", eval),
    ("ssh", ssh),
    ("alias", alias),
    ("trap", trap),
    ("find", find_wrapper),
    ("flock", flock),
    ("taskset", taskset),
    ("chrt", chrt),
    ("busybox", busybox),
    ("sg", sg),
    ("unbuffer", bare_wrapper),
    ("fakeroot", bare_wrapper),
    ("eatmydata", bare_wrapper),
    ("nocache", bare_wrapper),
    ("catchsegv", bare_wrapper),
    ("torsocks", bare_wrapper),
    ("dbus-run-session", bare_wrapper),
    ("firejail", bare_wrapper),
    ("valgrind", bare_wrapper),
    ("proxychains", option_wrapper),
    ("proxychains4", option_wrapper),
    ("xvfb-run", option_wrapper),
    ("setpriv", option_wrapper),
    ("unshare", option_wrapper),
    ("nsenter", option_wrapper),
    ("systemd-run", option_wrapper),
    ("strace", option_wrapper),
    ("ltrace", option_wrapper),
    ("perf", perf),
];

/// Commands hidden in a command's options: dynamic ones, and literal ones to re-parse.
type Hidden = (Vec<Proto>, Vec<Payload>);

/// What a script has room for, still.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Room {
    pub commands: usize,
    pub words: usize,
}

/// A command hides more than the script has room for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NoRoom {
    Commands,
    Words,
}

/// Splits a wrapper into the commands it runs. Non-wrappers come back as `Plain`; the
/// commands hidden in its options come along. `room`: what the script may still hold; a
/// command hiding more is refused before they are built (each is a copy of the command's
/// context: tens of thousands of `awk 'system(…)'` words would take seconds and gigabytes).
pub(crate) fn unwrap(p: Proto, k: &Catalog, room: Room) -> Result<Unwrapped, NoRoom> {
    let Some(name) = p.name() else {
        return Ok(Unwrapped::Plain(p));
    };
    let Program::Literal(base) = crate::program::identify(&name, &p.cwd, k) else {
        // A path to a program is never a wrapper: `./sudo` is not `sudo`.
        return Ok(Unwrapped::Plain(p));
    };
    let p = chdir_by_options(p, &base, k);
    // Commands given as option values (`rsync -e CMD`, `git -c core.pager=CMD`).
    let hidden = hidden_commands(&p, &base, k, room)?;
    let unwrapped = if let Some((_, split)) = WRAPPERS.iter().find(|(n, _)| *n == base) {
        split(p, &base)
    } else if k.has(&base, Trait::Shell) {
        shell(p, &base)
    } else {
        Unwrapped::Plain(p)
    };
    let Some((dynamic, payloads)) = hidden else {
        return Ok(unwrapped);
    };
    Ok(match unwrapped {
        Unwrapped::Plain(outer) => split(outer, dynamic, payloads),
        Unwrapped::Split {
            outer,
            mut inners,
            payloads: mut own,
        } => {
            inners.extend(dynamic);
            own.extend(payloads);
            split(outer, inners, own)
        }
    })
}

/// `p` run where its directory options say (`git -C /etc clean -fdx` runs in `/etc`; `make
/// -C a -C b` in `a/b`): options before a subcommand, for programs that have one.
fn chdir_by_options(mut p: Proto, base: &str, k: &Catalog) -> Proto {
    let opts = k.chdir_options(base);
    if opts.is_empty() {
        return p;
    }
    let stops_at_subcommand = k.has(base, Trait::Subcommand);
    let mut cwd = p.cwd.clone();
    let mut changed = false;
    let mut i = 1;
    while i < p.argv.len() {
        let Some(w) = p.argv[i].literal_value() else {
            if opts.iter().any(|o| p.argv[i].raw.starts_with(o.as_str())) {
                cwd = Cwd::Unknown;
                changed = true;
            }
            if stops_at_subcommand {
                break;
            }
            i += 1;
            continue;
        };
        if w == "--" {
            break;
        }
        if opts.contains(&w) {
            cwd = match p.argv.get(i + 1) {
                Some(d) => resolve_dir(d, &cwd),
                None => cwd,
            };
            changed = true;
            i += 2;
            continue;
        }
        let attached = opts.iter().find_map(|o| match o.strip_prefix("--") {
            Some(_) => w.strip_prefix(o.as_str())?.strip_prefix('='),
            None => w.strip_prefix(o.as_str()).filter(|r| !r.is_empty()),
        });
        if let Some(d) = attached {
            cwd = resolve_dir(&Decoded::literal(d), &cwd);
            changed = true;
            i += 1;
            continue;
        }
        if !w.starts_with('-') && stops_at_subcommand {
            break;
        }
        if k.value_option(base, &w).is_some() {
            i += 1;
        }
        i += 1;
    }
    if changed {
        p.cwd = cwd;
    }
    p
}

/// The commands `p` runs through exec-capable options: dynamic ones, and literal ones to
/// re-parse; `None` when there are none.
fn hidden_commands(
    p: &Proto,
    base: &str,
    k: &Catalog,
    room: Room,
) -> Result<Option<Hidden>, NoRoom> {
    let opts = k.exec_options();
    let from_pipe = script_from_process_substitution(p, base, k);
    if !opts.knows(base) && from_pipe.is_none() {
        return Ok(None);
    }
    let mut found = opts.found(base, &p.argv);
    found.extend(from_pipe);
    // An interpreter reading its code from stdin (`base64 -d x | python3`).
    if opts.reads_code_from_stdin(base, &p.argv) {
        match crate::stdin::of(p) {
            Some(Stdin::Computed(what) | Stdin::Paths(what, _)) => {
                found.push(crate::exec_options::Found::Dynamic(what))
            }
            Some(Stdin::Literal(text)) if opts.marks(base, &text) => {
                found.push(crate::exec_options::Found::Dynamic(text))
            }
            _ => {}
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    // Each is a command or a payload to re-parse (which runs at least one, as written),
    // and carries the command's environment and redirects.
    if found.len() > room.commands {
        return Err(NoRoom::Commands);
    }
    if found
        .len()
        .saturating_mul(1 + p.env.len() + p.redirects.len())
        > room.words
    {
        return Err(NoRoom::Words);
    }
    let label = format!("{base} (option)");
    let mut dynamic = Vec::new();
    let mut payloads = Vec::new();
    for f in found {
        match f {
            crate::exec_options::Found::Script(text) => {
                payloads.push(payload(p, text, &label, p.cwd.clone()))
            }
            crate::exec_options::Found::Dynamic(raw) => {
                dynamic.push(dynamic_inner(p, &raw, &label))
            }
        }
    }
    Ok(Some((dynamic, payloads)))
}

/// A script read from a process substitution (`source <(echo …)`, `bash <(curl …)`,
/// `python3 <(…)`): code that cannot be known, run by a shell, `source` or an
/// interpreter.
fn script_from_process_substitution(
    p: &Proto,
    base: &str,
    k: &Catalog,
) -> Option<crate::exec_options::Found> {
    let reads_code = matches!(base, "source" | ".")
        || k.has(base, Trait::Shell)
        || k.exec_options()
            .stdin_rules()
            .iter()
            .any(|r| r.programs.iter().any(|n| n == base));
    if !reads_code {
        return None;
    }
    let script = p
        .argv
        .iter()
        .skip(1)
        .find(|w| !w.value_text().starts_with('-'))?;
    let raw = script.raw.as_str();
    let piped = (raw.starts_with("<(") || raw.starts_with(">(")) && raw.ends_with(')');
    piped.then(|| crate::exec_options::Found::Dynamic(raw.to_string()))
}

/// `sudo`.
fn sudo(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(
        &p.argv,
        "ugpCDrtUhT",
        &[
            "--user",
            "--group",
            "--prompt",
            "--close-from",
            "--chdir",
            "--role",
            "--type",
            "--other-user",
            "--host",
            "--command-timeout",
        ],
        false,
    );
    privileged(p, s, "sudo", &["-u", "--user"], &["-D", "--chdir"])
}

/// `doas`.
fn doas(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "uC", &[], false);
    privileged(p, s, "doas", &["-u"], &[])
}

/// `pkexec`, `run0`.
fn pkexec(p: Proto, name: &str) -> Unwrapped {
    let s = scan(&p.argv, "u", &["--user", "--chdir", "-D"], false);
    privileged(p, s, name, &["--user", "-u"], &["--chdir", "-D"])
}

/// `su`.
fn su(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(
        &p.argv,
        "cgGsw",
        &[
            "--command",
            "--shell",
            "--group",
            "--supp-group",
            "--whitelist-environment",
            "--session-command",
        ],
        false,
    );
    let mut rest = s.next;
    if p.argv.get(rest).and_then(Decoded::literal_value).as_deref() == Some("-") {
        rest += 1;
    }
    let user = p
        .argv
        .get(rest)
        .and_then(Decoded::literal_value)
        .unwrap_or_else(|| "root".into());
    let mut p2 = p.clone();
    p2.structure.sudo = true;
    p2.structure.run_as = Some(user);
    let outer = outer_of(&p, p.argv.len());
    match opt(&s, &["-c", "--command", "--session-command"]) {
        Some(Some(cmd)) => run_string(&p2, outer, cmd, "su -c", p.cwd.clone()),
        Some(None) => split(outer, vec![dynamic_inner(&p2, "su -c", "su -c")], vec![]),
        None => Unwrapped::Plain(p),
    }
}

/// `env`.
fn env_wrapper(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(
        &p.argv,
        "uCSP",
        &[
            "--unset",
            "--chdir",
            "--split-string",
            "--ignore-signal",
            "--default-signal",
            "--block-signal",
        ],
        false,
    );
    if s.dynamic {
        let inner = dynamic_inner(&p, "env", "env");
        return split(outer_of(&p, p.argv.len()), vec![inner], vec![]);
    }
    let mut i = s.next;
    let mut cleared = has(&s, &["-i", "--ignore-environment"]);
    if p.argv.get(i).and_then(Decoded::literal_value).as_deref() == Some("-") {
        cleared = true;
        i += 1;
    }
    let mut assigns = Vec::new();
    while let Some(w) = p.argv.get(i) {
        let v = w.value();
        // Any operand with `=` after its first character is an assignment to env, whatever
        // the name (`BASH_FUNC_ls%%=...`, `x-y=1`): env passes it to the program.
        match v.split_once('=') {
            Some((n, _)) if !n.is_empty() => {
                // A name that is not literal (`env "$N=1" cmd`) cannot be judged.
                let Some(val) = w.without_literal_prefix(n.len() + 1) else {
                    let inner = dynamic_inner(&p, "env", "env");
                    return split(outer_of(&p, p.argv.len()), vec![inner], vec![]);
                };
                assigns.push((n.to_string(), val));
                i += 1;
            }
            _ => break,
        }
    }
    let outer = outer_of(&p, i);
    let mut cwd = p.cwd.clone();
    if let Some(Some(d)) = opt(&s, &["-C", "--chdir"]) {
        cwd = resolve_dir(d, &p.cwd);
    }
    let mut env = p.env.clone();
    env.extend(assigns.clone());
    let mut outer = outer;
    outer.env.extend(assigns);
    if let Some(Some(str_word)) = opt(&s, &["-S", "--split-string"]) {
        let mut q = p.clone();
        q.env = env;
        q.env_cleared |= cleared;
        let mut text = match str_word.literal_value() {
            Some(t) => t,
            None => {
                return split(
                    outer,
                    vec![dynamic_inner(&q, &str_word.raw, "env -S")],
                    vec![],
                )
            }
        };
        match join_words(&p.argv[i..]) {
            Some(rest) if !rest.is_empty() => {
                text.push(' ');
                text.push_str(&rest);
            }
            Some(_) => {}
            None => {
                return split(
                    outer,
                    vec![dynamic_inner(&q, &str_word.raw, "env -S")],
                    vec![],
                )
            }
        }
        return split(outer, vec![], vec![payload(&q, text, "env -S", cwd)]);
    }
    if i >= p.argv.len() {
        return Unwrapped::Plain(outer);
    }
    let mut inner = inner_of(&p, i, "env");
    inner.env = env;
    inner.env_cleared |= cleared;
    inner.cwd = cwd;
    split(outer, vec![inner], vec![])
}

/// `command`.
fn command_wrapper(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "", &[], false);
    if has(&s, &["-v", "-V"]) || s.next >= p.argv.len() {
        return Unwrapped::Plain(p);
    }
    simple(p, s, "command")
}

/// `exec`.
fn exec_wrapper(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "a", &[], false);
    simple(p, s, "exec")
}

/// `builtin`, `nohup`, `setsid`.
fn bare_wrapper(p: Proto, name: &str) -> Unwrapped {
    let s = scan(&p.argv, "", &[], false);
    simple(p, s, name)
}

/// `nice`.
fn nice(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "n", &["--adjustment"], true);
    simple(p, s, "nice")
}

/// `ionice`.
fn ionice(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(
        &p.argv,
        "cnp",
        &["--class", "--classdata", "--pid", "--pgid", "--uid"],
        false,
    );
    if has(&s, &["-p", "--pid", "-P", "--pgid", "-u", "--uid"]) {
        return Unwrapped::Plain(p);
    }
    simple(p, s, "ionice")
}

/// `stdbuf`.
fn stdbuf(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "ioe", &["--input", "--output", "--error"], false);
    simple(p, s, "stdbuf")
}

/// `time`.
fn time_wrapper(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "fo", &["--format", "--output"], false);
    simple(p, s, "time")
}

/// `timeout`.
fn timeout(p: Proto, _name: &str) -> Unwrapped {
    let mut s = scan(&p.argv, "sk", &["--signal", "--kill-after"], false);
    s.next += 1; // the duration
    simple(p, s, "timeout")
}

/// `chroot`.
fn chroot(p: Proto, _name: &str) -> Unwrapped {
    let mut s = scan(&p.argv, "", &["--userspec", "--groups"], false);
    s.next += 1; // the new root
    let mut r = simple(p, s, "chroot");
    if let Unwrapped::Split { inners, .. } = &mut r {
        for i in inners {
            i.cwd = Cwd::Unknown;
        }
    }
    r
}

/// `xargs`.
fn xargs(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(
        &p.argv,
        "aEILnPsd",
        &[
            "--arg-file",
            "--delimiter",
            "--max-args",
            "--max-procs",
            "--max-lines",
            "--max-chars",
            "--process-slot-var",
            "--eof",
        ],
        false,
    );
    let outer = outer_of(&p, s.next);
    if s.dynamic {
        return split(outer, vec![dynamic_inner(&p, "xargs", "xargs")], vec![]);
    }
    let mut inner = if s.next >= p.argv.len() {
        let mut i = p.with_argv(vec![Decoded::literal("echo")]);
        i.structure.wrappers.push("xargs".into());
        i
    } else {
        inner_of(&p, s.next, "xargs")
    };
    // Input from `find ROOTS -print0` read with `-0` is paths below the roots (unless xargs
    // reads a file instead); anything else is unknown.
    let from_file = opt(&s, &["-a", "--arg-file"]).is_some();
    let nul = has(&s, &["-0", "--null"]);
    let known: Option<Vec<Decoded>> = match &p.stdin {
        Some(Stdin::Paths(_, roots)) if nul && !from_file => Some(roots.clone()),
        _ => None,
    };
    let replace = opt(&s, &["-I", "--replace", "-i"]).map(|v| {
        v.as_ref()
            .and_then(Decoded::literal_value)
            .unwrap_or_else(|| "{}".into())
    });
    let mut replaced = false;
    if let Some(r) = replace {
        for w in inner.argv.iter_mut().skip(1) {
            let Some(v) = w.literal_value() else {
                continue;
            };
            if !v.contains(&r) {
                continue;
            }
            replaced = true;
            *w = match known.as_deref() {
                // `-I {} cmd {}`: the word is one input item.
                Some([one]) if v == r => one.clone(),
                _ => Decoded::opaque(&w.raw),
            };
        }
    }
    if !replaced {
        inner
            .argv
            .extend(known.unwrap_or_else(|| vec![Decoded::opaque("{xargs-input}")]));
    }
    split(outer, vec![inner], vec![])
}

/// `watch`.
fn watch(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "nqd", &["--interval", "--differences"], false);
    let outer = outer_of(&p, s.next);
    if s.next >= p.argv.len() {
        return Unwrapped::Plain(p);
    }
    if has(&s, &["-x", "--exec"]) {
        return simple(p, s, "watch");
    }
    let cwd = p.cwd.clone();
    run_words(&p, outer, s.next, "watch", cwd)
}

/// `eval`.
fn eval(p: Proto, _name: &str) -> Unwrapped {
    let outer = outer_of(&p, 1);
    let cwd = p.cwd.clone();
    run_words(&p, outer, 1, "eval", cwd)
}

/// `ssh`.
fn ssh(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "bcDEeFIiJLlmOopQRSWwB", &[], false);
    let outer = outer_of(&p, p.argv.len());
    let cmd_from = s.next + 1;
    if s.dynamic {
        return split(outer, vec![dynamic_inner(&p, "ssh", "ssh")], vec![]);
    }
    if cmd_from >= p.argv.len() {
        return Unwrapped::Plain(p);
    }
    if let Some(service) = git_service(&p.argv[cmd_from..]) {
        // Git's SSH transport: the remote end of a fetch or push, run on the remote host
        // against a repository there, so no local path is named.
        let mut i = p.with_argv(vec![Decoded::literal(service)]);
        i.cwd = Cwd::Unknown;
        i.structure.wrappers.push("ssh".into());
        return split(outer, vec![i], vec![]);
    }
    run_words(&p, outer, cmd_from, "ssh", Cwd::Unknown)
}

/// The service git runs over SSH, when `words` are exactly what git sends: one of its
/// transport programs and the repository path in single quotes (`git-upload-pack
/// 'org/repo.git'`), nothing else.
fn git_service(words: &[Decoded]) -> Option<&'static str> {
    const SERVICES: [&str; 3] = ["git-upload-pack", "git-receive-pack", "git-upload-archive"];
    let text = join_words(words)?;
    let (name, path) = text.split_once(' ')?;
    let service = SERVICES.into_iter().find(|s| *s == name)?;
    let inner = path.strip_prefix('\'')?.strip_suffix('\'')?;
    let plain = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-~@+".contains(c));
    plain.then_some(service)
}

/// `alias`.
fn alias(p: Proto, _name: &str) -> Unwrapped {
    let mut payloads = Vec::new();
    let mut inners = Vec::new();
    for w in p.argv.iter().skip(1) {
        let v = w.value();
        if let Some((_, body)) = v.split_once('=') {
            match w.literal_value() {
                // Judged where it is defined; each use is judged again as its expansion,
                // where it runs.
                Some(_) => payloads.push(payload(&p, body.to_string(), "alias", p.cwd.clone())),
                None => inners.push(dynamic_inner(&p, &w.raw, "alias")),
            }
        }
    }
    if payloads.is_empty() && inners.is_empty() {
        return Unwrapped::Plain(p);
    }
    split(outer_of(&p, p.argv.len()), inners, payloads)
}

/// `trap`.
fn trap(p: Proto, _name: &str) -> Unwrapped {
    let args: Vec<&Decoded> = p
        .argv
        .iter()
        .skip(1)
        .filter(|w| !w.value().starts_with('-') || w.value() == "-")
        .collect();
    match args.first() {
        Some(w) if args.len() >= 2 => match w.literal_value() {
            Some(t) if t.is_empty() || t == "-" => Unwrapped::Plain(p),
            Some(t) => {
                let pl = payload(&p, t, "trap", Cwd::Unknown);
                split(outer_of(&p, p.argv.len()), vec![], vec![pl])
            }
            None => {
                let i = dynamic_inner(&p, &w.raw, "trap");
                split(outer_of(&p, p.argv.len()), vec![i], vec![])
            }
        },
        _ => Unwrapped::Plain(p),
    }
}

/// `flock [opts] FILE CMD ARGS…`, `flock [opts] FILE -c CMD`; `flock FD` runs nothing.
fn flock(p: Proto, _name: &str) -> Unwrapped {
    let mut s = scan(
        &p.argv,
        "wE",
        &["--wait", "--timeout", "--conflict-exit-code"],
        false,
    );
    if s.dynamic || s.next >= p.argv.len() {
        return simple(p, s, "flock");
    }
    let file = s.next;
    // Options may follow the lock file; `-c`/`--command` takes a shell string.
    let rest = scan(
        &p.argv[file..],
        "wEc",
        &["--wait", "--timeout", "--command"],
        false,
    );
    if let Some(Some(cmd)) = opt(&rest, &["-c", "--command"]) {
        let outer = outer_of(&p, p.argv.len());
        let cwd = p.cwd.clone();
        return run_string(&p, outer, &cmd.clone(), "flock", cwd);
    }
    s.next = file + rest.next;
    s.dynamic = rest.dynamic;
    simple(p, s, "flock")
}

/// `taskset [opts] MASK CMD ARGS…` (`-p` acts on a running process and runs nothing).
fn taskset(p: Proto, _name: &str) -> Unwrapped {
    let mut s = scan(&p.argv, "", &[], false);
    if has(&s, &["-p", "--pid"]) {
        return Unwrapped::Plain(p);
    }
    s.next += 1; // the mask or CPU list
    simple(p, s, "taskset")
}

/// `chrt [opts] PRIORITY CMD ARGS…` (`-p` acts on a running process).
fn chrt(p: Proto, _name: &str) -> Unwrapped {
    let mut s = scan(
        &p.argv,
        "TPD",
        &["--sched-runtime", "--sched-period", "--sched-deadline"],
        false,
    );
    if has(&s, &["-p", "--pid", "-m", "--max"]) {
        return Unwrapped::Plain(p);
    }
    s.next += 1; // the priority
    simple(p, s, "chrt")
}

/// `busybox APPLET ARGS…` runs the applet (`busybox sh -c …` is a shell).
fn busybox(p: Proto, _name: &str) -> Unwrapped {
    let s = scan(&p.argv, "", &[], false);
    if !s.opts.is_empty() {
        return Unwrapped::Plain(p);
    }
    simple(p, s, "busybox")
}

/// `sg GROUP -c CMD` or `sg GROUP CMD`: the command is a shell string.
fn sg(p: Proto, _name: &str) -> Unwrapped {
    let at = match p.argv.get(2).and_then(Decoded::literal_value).as_deref() {
        Some("-c") => 3,
        _ => 2,
    };
    match p.argv.get(at).cloned() {
        Some(cmd) => {
            let outer = outer_of(&p, p.argv.len());
            let cwd = p.cwd.clone();
            run_string(&p, outer, &cmd, "sg", cwd)
        }
        None => Unwrapped::Plain(p),
    }
}

/// Wrappers that take options, then the command they run: (name, short options taking a
/// value, long options taking a value, whether with no command they run a shell reading
/// its input). `strace`/`ltrace -p PID` attach to a running process and run nothing.
const OPTION_WRAPPERS: &[(&str, &str, &[&str], bool)] = &[
    ("proxychains", "f", &[], false),
    ("proxychains4", "f", &[], false),
    (
        "xvfb-run",
        "nsfepw",
        &[
            "--server-num",
            "--server-args",
            "--auth-file",
            "--error-file",
            "--xauth-protocol",
            "--wait",
        ],
        false,
    ),
    (
        "setpriv",
        "",
        &[
            "--reuid",
            "--regid",
            "--ruid",
            "--euid",
            "--rgid",
            "--egid",
            "--groups",
            "--inh-caps",
            "--ambient-caps",
            "--bounding-set",
            "--securebits",
            "--pdeathsig",
            "--selinux-label",
            "--apparmor-profile",
            "--landlock-access",
            "--landlock-rule",
        ],
        false,
    ),
    (
        "systemd-run",
        "pEHMu",
        &[
            "--property",
            "--setenv",
            "--host",
            "--machine",
            "--unit",
            "--description",
            "--slice",
            "--uid",
            "--gid",
            "--nice",
            "--working-directory",
            "--on-active",
            "--on-boot",
            "--on-startup",
            "--on-unit-active",
            "--on-unit-inactive",
            "--on-calendar",
            "--timer-property",
            "--path-property",
            "--socket-property",
            "--service-type",
        ],
        false,
    ),
    (
        "unshare",
        "SGRwl",
        &[
            "--setuid",
            "--setgid",
            "--root",
            "--wd",
            "--propagation",
            "--map-user",
            "--map-group",
            "--map-users",
            "--map-groups",
        ],
        true,
    ),
    (
        "nsenter",
        "tSGrwe",
        &[
            "--target", "--setuid", "--setgid", "--root", "--wd", "--env",
        ],
        true,
    ),
    (
        "strace",
        "eopsuabEIOPSXnlFAxwD",
        &[
            "--trace",
            "--output",
            "--attach",
            "--string-limit",
            "--user",
            "--signal",
            "--status",
            "--env",
            "--library",
        ],
        false,
    ),
    (
        "ltrace",
        "eopsuabEIOPSXnlFAxwD",
        &[
            "--trace",
            "--output",
            "--attach",
            "--string-limit",
            "--user",
            "--signal",
            "--status",
            "--env",
            "--library",
        ],
        false,
    ),
];

/// A wrapper of [`OPTION_WRAPPERS`].
fn option_wrapper(p: Proto, name: &str) -> Unwrapped {
    let Some(&(_, short, long, shell_without_command)) =
        OPTION_WRAPPERS.iter().find(|(n, ..)| *n == name)
    else {
        return Unwrapped::Plain(p);
    };
    let s = scan(&p.argv, short, long, false);
    if shell_without_command && s.next >= p.argv.len() && !s.dynamic {
        let outer = outer_of(&p, p.argv.len());
        return split(outer, vec![dynamic_inner(&p, name, name)], vec![]);
    }
    simple(p, s, name)
}

/// `perf stat|record|trace|top [opts] CMD ARGS…`.
fn perf(p: Proto, _name: &str) -> Unwrapped {
    let sub = p.argv.get(1).and_then(Decoded::literal_value);
    if !matches!(
        sub.as_deref(),
        Some("stat" | "record" | "trace" | "mem" | "c2c" | "kvm" | "sched" | "lock")
    ) {
        return Unwrapped::Plain(p);
    }
    let sub_argv: Vec<Decoded> = p.argv[1..].to_vec();
    let s = scan(
        &sub_argv,
        "eoCcGFjprtmIDuLd",
        &[
            "--event",
            "--output",
            "--cpu",
            "--count",
            "--cgroup",
            "--freq",
            "--pid",
            "--tid",
            "--repeat",
            "--delay",
            "--call-graph",
            "--uid",
        ],
        false,
    );
    let s = Scan {
        opts: s.opts,
        next: s.next + 1,
        dynamic: s.dynamic,
    };
    simple(p, s, "perf")
}

/// `wrapper [opts] cmd args...`
fn simple(p: Proto, s: Scan, wrapper: &str) -> Unwrapped {
    let outer = outer_of(&p, s.next);
    if s.dynamic {
        return split(outer, vec![dynamic_inner(&p, wrapper, wrapper)], vec![]);
    }
    if s.next >= p.argv.len() {
        return Unwrapped::Plain(p);
    }
    let inner = inner_of(&p, s.next, wrapper);
    split(outer, vec![inner], vec![])
}

fn privileged(
    p: Proto,
    s: Scan,
    wrapper: &str,
    user_opts: &[&str],
    chdir_opts: &[&str],
) -> Unwrapped {
    let user = match opt(&s, user_opts) {
        Some(Some(u)) => u.literal_value().unwrap_or_else(|| u.raw.clone()),
        _ => "root".to_string(),
    };
    let mut q = p.clone();
    q.structure.sudo = true;
    q.structure.run_as = Some(user);
    if let Some(Some(d)) = opt(&s, chdir_opts) {
        q.cwd = resolve_dir(d, &p.cwd);
    }
    let outer = outer_of(&p, s.next);
    if s.dynamic {
        return split(outer, vec![dynamic_inner(&q, wrapper, wrapper)], vec![]);
    }
    if s.next >= p.argv.len() {
        // `sudo -i`, `sudo -s`: an interactive root shell.
        return Unwrapped::Plain(p);
    }
    let inner = inner_of(&q, s.next, wrapper);
    split(outer, vec![inner], vec![])
}

/// `bash [opts] -c STR`, `bash script args`, or `bash` reading stdin.
fn shell(p: Proto, name: &str) -> Unwrapped {
    let mut has_c = false;
    let mut reads_stdin = false;
    let mut i = 1;
    while i < p.argv.len() {
        let Some(v) = p.argv[i].literal_value() else {
            if !has_c {
                let inner = dynamic_inner(&p, &p.argv[i].raw, &format!("{name} args"));
                return split(outer_of(&p, p.argv.len()), vec![inner], vec![]);
            }
            break;
        };
        if v == "--" || v == "-" {
            i += 1;
            break;
        }
        if v.starts_with("--") {
            if matches!(v.as_str(), "--rcfile" | "--init-file") {
                i += 1;
            }
            i += 1;
            continue;
        }
        if (v.starts_with('-') || v.starts_with('+')) && v.len() > 1 {
            if v.starts_with('-') && v.contains('c') {
                has_c = true;
            }
            // `bash -s ARGS`: the script comes from stdin, the words are its parameters.
            if v.starts_with('-') && v.contains('s') {
                reads_stdin = true;
            }
            if v.ends_with('o') || v.ends_with('O') {
                i += 1;
            }
            i += 1;
            continue;
        }
        break;
    }
    let wrapper = format!("{name} -c");
    if has_c {
        let outer = outer_of(&p, p.argv.len());
        return match p.argv.get(i) {
            Some(w) => {
                let mut outer = outer;
                // The payload is code, not a file name.
                outer.fixed_paths.push((i, vec![]));
                run_string(&p, outer, w, &wrapper, p.cwd.clone())
            }
            None => Unwrapped::Plain(p),
        };
    }
    if i < p.argv.len() && !reads_stdin {
        // `bash script.sh`: the script is a path argument of the shell.
        return Unwrapped::Plain(p);
    }
    // Reading the script from stdin: literal text (a here-document, `echo '...' |`) is the
    // script; text that cannot be known makes a dynamic command.
    let last_stdin_redirect = p.redirects.iter().rev().find(|r| {
        r.fd.unwrap_or(0) == 0
            && matches!(
                r.kind,
                RedirectKind::Read
                    | RedirectKind::ReadWrite
                    | RedirectKind::Heredoc
                    | RedirectKind::Herestring
            )
    });
    let wrapper = match last_stdin_redirect.map(|r| r.kind) {
        Some(RedirectKind::Heredoc | RedirectKind::Herestring) => format!("{name} <<"),
        Some(_) => format!("{name} <"),
        None => format!("{name} stdin"),
    };
    match crate::stdin::of(&p) {
        Some(Stdin::Literal(t)) => {
            let pl = payload(&p, t, &wrapper, p.cwd.clone());
            split(outer_of(&p, p.argv.len()), vec![], vec![pl])
        }
        Some(Stdin::Computed(what) | Stdin::Paths(what, _)) => split(
            outer_of(&p, p.argv.len()),
            vec![dynamic_inner(&p, &what, &wrapper)],
            vec![],
        ),
        None => Unwrapped::Plain(p),
    }
}

/// `find [opts] start... expr` with `-exec`/`-execdir`/`-ok`/`-okdir` payloads.
fn find_wrapper(p: Proto, _name: &str) -> Unwrapped {
    let mut i = 1;
    // Leading options.
    while let Some(v) = p.argv.get(i).and_then(Decoded::literal_value) {
        match v.as_str() {
            "-H" | "-L" | "-P" => i += 1,
            "-D" => i += 2,
            o if o.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    let mut starts = Vec::new();
    while let Some(w) = p.argv.get(i) {
        let v = w.value();
        if v.starts_with('-') || v == "(" || v == "!" || v == ")" || v == "," {
            break;
        }
        starts.push(w.clone());
        i += 1;
    }
    let start_refs: Vec<PathRef> = if starts.is_empty() {
        Decoded::literal(".").paths(&p.cwd)
    } else {
        starts.iter().flat_map(|w| w.paths(&p.cwd)).collect()
    };
    let mut under = Vec::new();
    for r in &start_refs {
        match r {
            PathRef::Exact(s) => {
                under.push(PathRef::Exact(s.clone()));
                under.push(PathRef::Under(s.clone()));
            }
            other => under.push(other.clone()),
        }
    }
    let mut outer_argv = p.argv[..i].to_vec();
    let mut inners = Vec::new();
    while i < p.argv.len() {
        let v = p.argv[i].value();
        if matches!(v.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            outer_argv.push(p.argv[i].clone());
            let mut j = i + 1;
            let mut cmd = Vec::new();
            let mut fixed = Vec::new();
            while j < p.argv.len() {
                let w = &p.argv[j];
                let wv = w.literal_value();
                if matches!(wv.as_deref(), Some(";") | Some("+")) {
                    break;
                }
                if w.value().contains("{}") {
                    fixed.push((cmd.len(), under.clone()));
                    cmd.push(Decoded::pattern(&w.raw));
                } else {
                    cmd.push(w.clone());
                }
                j += 1;
            }
            if !cmd.is_empty() {
                let mut inner = p.with_argv(cmd);
                inner.fixed_paths = fixed;
                inner.structure.wrappers.push(format!("find {v}"));
                if v.contains("dir") {
                    inner.cwd = Cwd::Unknown;
                }
                inners.push(inner);
            }
            i = j + 1;
        } else {
            outer_argv.push(p.argv[i].clone());
            i += 1;
        }
    }
    let outer = p.with_argv(outer_argv);
    if inners.is_empty() {
        return Unwrapped::Plain(outer);
    }
    split(outer, inners, vec![])
}
