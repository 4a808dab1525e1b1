//! Data-driven grammar cases: `tests/cases/*.toml` hold scripts and the IR the grammar must
//! extract from them (a projection of each `Command`: what policies see).
//!
//! A case lists every command the script yields, in order, with only the fields that are
//! not at their default. `EXECKIT_BLESS=1 cargo test -p execkit-grammar --test cases`
//! rewrites the expectations from the current code; review the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_grammar::{parse, Command, Cwd, ParseError, ParseOptions, PathRef};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// What the cases in this file cover.
    about: String,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Case {
    script: String,
    /// Where the script starts (default `/work`; `unknown` for no known cwd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
    /// The parser's refusal (`syntax`, `control_char`, `unsupported`, `too_deep`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    commands: Vec<View>,
}

/// What a policy can see of one command. Paths are written `/x` (exactly), `/x/*` (some
/// path below) or `*` (anything).
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct View {
    program: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    /// Path-like arguments and where they point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    /// `unknown`, or the candidate directories joined with ` | `. Omitted when it is `/work`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
    /// `OP KIND PATH...` per redirect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    redirects: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wrappers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_as: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    input_sources: Vec<String>,
    /// `i/n` when in a pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pipeline: Option<String>,
    /// Structure flags that are set: `background`, `negated`, `subshell`, `substitution`,
    /// `function`, `dynamic_command`, `dynamic_args`, `unbounded_args`, `sudo`,
    /// `env_cleared`, `nesting=N`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    flags: Vec<String>,
}

fn path_text(p: &PathRef) -> String {
    match p {
        PathRef::Exact(p) => p.clone(),
        PathRef::Under(d) if d == "/" => "/*".into(),
        PathRef::Under(d) => format!("{d}/*"),
        PathRef::Anywhere => "*".into(),
    }
}

fn paths_of(ps: &[PathRef]) -> String {
    ps.iter().map(path_text).collect::<Vec<_>>().join(" | ")
}

fn view(c: &Command) -> View {
    let s = &c.structure;
    let mut flags = Vec::new();
    for (on, name) in [
        (s.background, "background"),
        (s.negated, "negated"),
        (s.in_subshell, "subshell"),
        (s.in_substitution, "substitution"),
        (s.in_function, "function"),
        (s.dynamic_command, "dynamic_command"),
        (s.dynamic_args, "dynamic_args"),
        (s.unbounded_args, "unbounded_args"),
        (s.sudo, "sudo"),
        (c.env_cleared, "env_cleared"),
    ] {
        if on {
            flags.push(name.to_string());
        }
    }
    if s.nesting_depth > 0 {
        flags.push(format!("nesting={}", s.nesting_depth));
    }
    let cwd = match &c.cwd {
        Cwd::Known(v) if v.len() == 1 && v[0] == "/work" => None,
        Cwd::Known(v) => Some(v.join(" | ")),
        Cwd::Unknown => Some("unknown".into()),
    };
    View {
        program: c.program.to_string(),
        args: c.args.iter().map(|a| a.value.clone()).collect(),
        paths: c
            .args
            .iter()
            .filter(|a| !a.paths.is_empty())
            .map(|a| format!("{} -> {}", a.value, paths_of(&a.paths)))
            .collect(),
        cwd,
        redirects: c
            .redirects
            .iter()
            .map(|r| {
                let kind = serde_json::to_value(r.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let target = if r.target.paths.is_empty() {
                    r.target.value.clone()
                } else {
                    paths_of(&r.target.paths)
                };
                format!("{} {kind} {target}", r.op)
            })
            .collect(),
        wrappers: s.wrappers.clone(),
        run_as: s.run_as.clone(),
        env: c
            .env
            .iter()
            .map(|a| format!("{}={}", a.name, a.value.value))
            .collect(),
        input_sources: s.input_sources.iter().cloned().collect(),
        pipeline: (s.pipeline_length > 1)
            .then(|| format!("{}/{}", s.pipeline_index, s.pipeline_length)),
        flags,
    }
}

fn error_kind(e: &ParseError) -> String {
    match e {
        ParseError::ControlChar { .. } => "control_char",
        ParseError::Syntax { .. } => "syntax",
        ParseError::Unsupported { .. } => "unsupported",
        ParseError::TooLarge { .. } => "too_large",
        ParseError::TooDeep { .. } => "too_deep",
        ParseError::NoTree => "no_tree",
        _ => "other",
    }
    .to_string()
}

fn run(case: &Case) -> (Option<String>, Vec<View>) {
    let cwd = match case.cwd.as_deref() {
        None => Some("/work"),
        Some("unknown") => None,
        Some(c) => Some(c),
    };
    let opts = ParseOptions::new(cwd, "/home/agent");
    match parse(&case.script, &opts) {
        Ok(s) => (None, s.commands.iter().map(view).collect()),
        Err(e) => (Some(error_kind(&e)), vec![]),
    }
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn grammar_cases() {
    let bless = std::env::var_os("EXECKIT_BLESS").is_some();
    let mut total = 0;
    let mut failures = Vec::new();
    for path in case_files() {
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut file: CaseFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (i, case) in file.cases.iter_mut().enumerate() {
            total += 1;
            let (error, commands) = run(case);
            if bless {
                case.error = error;
                case.commands = commands;
                continue;
            }
            if error != case.error || commands != case.commands {
                failures.push(format!(
                    "{} case {} `{}`:\n  expected error {:?} commands {:#?}\n  actual   error {:?} commands {:#?}",
                    path.display(),
                    i + 1,
                    case.script,
                    case.error,
                    case.commands,
                    error,
                    commands
                ));
            }
        }
        if bless {
            let out = toml::to_string_pretty(&file).expect("serializable");
            std::fs::write(&path, out).expect("writable");
        }
    }
    assert!(total >= 200, "only {total} grammar cases");
    assert!(
        failures.is_empty(),
        "{} of {total} grammar cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every example in `knowledge/programs.toml` extracts exactly the path words it lists,
/// and every example's script names a program of its own entry.
#[test]
fn knowledge_examples() {
    let k = execkit_grammar::knowledge::catalog().unwrap_or_else(|e| panic!("{e}"));
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let mut failures = Vec::new();
    let mut total = 0;
    for entry in k.entries() {
        assert!(
            !entry.examples().is_empty(),
            "{:?} has no example",
            entry.names()
        );
        for ex in entry.examples() {
            total += 1;
            let script = match parse(&ex.script, &opts) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("`{}`: {e}", ex.script));
                    continue;
                }
            };
            let names_own_program = script
                .commands
                .iter()
                .any(|c| entry.names().iter().any(|n| c.program.is(n)));
            if !names_own_program {
                failures.push(format!("`{}` runs none of {:?}", ex.script, entry.names()));
            }
            let paths: Vec<String> = script
                .commands
                .iter()
                .flat_map(|c| c.args.iter())
                .filter(|a| !a.paths.is_empty())
                .map(|a| a.value.clone())
                .collect();
            if paths != ex.paths {
                failures.push(format!(
                    "`{}`: expected paths {:?}, extracted {:?}",
                    ex.script, ex.paths, paths
                ));
            }
        }
    }
    assert!(total >= 60, "only {total} knowledge examples");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A knowledge file with a mistake is refused with a reason, never half-loaded.
#[test]
fn knowledge_file_mistakes_are_refused() {
    use execkit_grammar::knowledge::{Catalog, KnowledgeError};
    let head = "about = \"x\"\nsystem_bin_dirs = []\ncommon_value_options = []\npattern_flags = []\nrecursive_flags = []\n";
    let entry = |names: &str, extra: &str| {
        format!("[[program]]\nnames = [{names}]\n{extra}examples = [{{ script = \"a\", paths = [] }}]\n")
    };
    let dup = format!("{head}{}{}", entry("\"a\"", ""), entry("\"b\", \"a\"", ""));
    assert_eq!(
        Catalog::from_toml(&dup).unwrap_err(),
        KnowledgeError::DuplicateName("a".into())
    );
    let twice = format!(
        "{head}{}",
        entry(
            "\"a\"",
            "value_options = [\"-e\"]\ncode_options = [\"-e\"]\n"
        )
    );
    assert!(matches!(
        Catalog::from_toml(&twice).unwrap_err(),
        KnowledgeError::DuplicateOption { .. }
    ));
    let bad_trait = format!("{head}{}", entry("\"a\"", "traits = [\"flies\"]\n"));
    assert!(matches!(
        Catalog::from_toml(&bad_trait).unwrap_err(),
        KnowledgeError::Toml(_)
    ));
    let no_example = format!("{head}[[program]]\nnames = [\"a\"]\n");
    assert_eq!(
        Catalog::from_toml(&no_example).unwrap_err(),
        KnowledgeError::NoExample("a".into())
    );
}

/// Every case of `knowledge/exec_options.toml`: the programs run through exec-capable
/// options are extracted as commands of their own, in order; options that run nothing
/// add nothing.
#[test]
fn exec_option_cases() {
    let k = execkit_grammar::knowledge::catalog().unwrap_or_else(|e| panic!("{e}"));
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let mut failures = Vec::new();
    let mut total = 0;
    let option_cases = k.exec_options().rules().iter().flat_map(|r| &r.cases);
    let marker_cases = k.exec_options().markers().iter().flat_map(|m| &m.cases);
    let stdin_cases = k.exec_options().stdin_rules().iter().flat_map(|m| &m.cases);
    {
        for case in option_cases.chain(marker_cases).chain(stdin_cases) {
            total += 1;
            match parse(&case.script, &opts) {
                Err(e) => failures.push(format!("`{}`: {e}", case.script)),
                Ok(s) => {
                    let runs: Vec<String> =
                        s.commands.iter().map(|c| c.program.entity_id()).collect();
                    if runs != case.runs {
                        failures.push(format!(
                            "`{}`: expected {:?}, extracted {:?}",
                            case.script, case.runs, runs
                        ));
                    }
                }
            }
        }
    }
    assert!(total >= 60, "only {total} exec-option cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every case of `knowledge/readonly.toml`: whether the command is a use of its program
/// that the table lists as read-only.
#[test]
fn readonly_option_cases() {
    let k = execkit_grammar::knowledge::catalog().unwrap_or_else(|e| panic!("{e}"));
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let mut failures = Vec::new();
    let mut total = 0;
    for case in k.readonly().tools().iter().flat_map(|t| &t.cases) {
        total += 1;
        match parse(&case.script, &opts) {
            Err(e) => failures.push(format!("`{}`: {e}", case.script)),
            Ok(s) => {
                let c = &s.commands[0];
                let listed =
                    k.readonly()
                        .listed(c.program.base_name(), &c.flags, c.positionals.len());
                if listed != case.listed {
                    failures.push(format!(
                        "`{}`: expected listed = {}, got {listed}",
                        case.script, case.listed
                    ));
                }
            }
        }
    }
    // A program without an entry is read-only only without options.
    let none = std::collections::BTreeSet::new();
    let one = std::collections::BTreeSet::from(["-x".to_string()]);
    assert!(k.readonly().listed("no-such-tool", &none, 3));
    assert!(!k.readonly().listed("no-such-tool", &one, 0));
    assert!(total >= 40, "only {total} read-only cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A pipeline too large to analyse is refused (each command is told every program up- and
/// downstream of it, so the analysis grows with commands × programs): distinct parts past
/// the limit, and a long pipeline of one program, whose parts' upstream sets must not be
/// rebuilt from all earlier parts (quadratic in the parts alone).
#[test]
fn a_pipeline_too_large_to_analyse_is_refused() {
    // More commands than a script may hold by default: the pipeline bound is tested alone.
    let opts = ParseOptions {
        max_commands: 1 << 16,
        ..ParseOptions::new(Some("/work"), "/home/agent")
    };
    let distinct: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    match parse(&distinct.join(" | "), &opts) {
        Err(ParseError::PipelineTooLarge {
            commands,
            elements,
            programs,
            pairs,
            max,
        }) => {
            assert_eq!((commands, elements, programs), (300, 300, 300));
            assert_eq!((pairs, max), (600 * 300, 1 << 14));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // One program: (parts + commands) × 1 pairs, so 8,192 parts reach the limit exactly.
    let over = vec!["a"; 8_193].join("|");
    assert!(matches!(
        parse(&over, &opts),
        Err(ParseError::PipelineTooLarge {
            programs: 1,
            pairs: 16_386,
            ..
        })
    ));
    let at_limit = vec!["a"; 8_192].join("|");
    let script = parse(&at_limit, &opts).expect("at the limit");
    assert_eq!(script.commands.len(), 8_192);
}

/// A script of more commands than one decision judges is refused, wherever the commands
/// come from: a list, a pipeline, a `bash -c` payload (the `bash` counts too), the inner
/// commands of wrappers. A megabyte of `a;a;…` is half a million commands: without the
/// bound, seconds of work and a gigabyte of memory to decide.
#[test]
fn a_script_of_too_many_commands_is_refused() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let max = opts.max_commands;
    assert_eq!(max, 4096);
    let list = |n: usize, sep: &str| vec!["a"; n].join(sep);
    let refused = Some(ParseError::TooManyCommands { max });
    for sep in [";", "|", "\n"] {
        let s = parse(&list(max, sep), &opts).expect("at the limit");
        assert_eq!(s.commands.len(), max, "{sep:?}");
        assert_eq!(parse(&list(max + 1, sep), &opts).err(), refused, "{sep:?}");
    }
    let payload = |n: usize| format!("bash -c '{}'", list(n, ";"));
    assert_eq!(
        parse(&payload(max - 1), &opts).map(|s| s.commands.len()),
        Ok(max)
    );
    assert_eq!(parse(&payload(max), &opts).err(), refused);
    // A long `&&` chain nests one level a link (refused as too deep past 200): pairs.
    let pairs = |n: usize| vec!["a && a"; n].join("\n");
    assert_eq!(
        parse(&pairs(max / 2), &opts).map(|s| s.commands.len()),
        Ok(max)
    );
    assert_eq!(parse(&pairs(max / 2 + 1), &opts).err(), refused);
    // `sudo a` is two commands: the wrapper and what it runs.
    let wrapped = |n: usize| vec!["sudo a"; n].join(";");
    assert_eq!(
        parse(&wrapped(max / 2), &opts).map(|s| s.commands.len()),
        Ok(max)
    );
    assert_eq!(parse(&wrapped(max / 2 + 1), &opts).err(), refused);
    // Commands hidden in one command's words (`awk 'system(…)'`: each word a command that
    // cannot be known) count too, and are refused before they are built.
    let hidden = |n: usize| {
        let words: Vec<String> = (0..n).map(|i| format!("'system(x{i})'")).collect();
        format!("awk {}", words.join(" "))
    };
    assert_eq!(
        parse(&hidden(max - 1), &opts).map(|s| s.commands.len()),
        Ok(max)
    );
    assert_eq!(parse(&hidden(max), &opts).err(), refused);
    assert_eq!(parse(&hidden(10 * max), &opts).err(), refused);
    // The limit is the caller's: a larger one accepts more.
    let more = ParseOptions {
        max_commands: 2 * max,
        ..opts
    };
    assert!(parse(&list(max + 1, ";"), &more).is_ok());
}

/// A script whose commands hold more words than the budget is refused: arguments,
/// environment assignments and redirects, each counted for every command it applies to, so
/// commands hidden in a command's words that each carry its many assignments are refused
/// before they are built (unbounded, 4,000 such commands of 20,000 assignments would take
/// 91 seconds and 15 GB to decide).
#[test]
fn a_script_of_too_many_words_is_refused() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let max = opts.max_words;
    assert_eq!(max, 1 << 16);
    let refused = Some(ParseError::TooManyWords { max });
    let cat = |n: usize| {
        let words: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
        format!("cat {}", words.join(" "))
    };
    assert_eq!(parse(&cat(max - 1), &opts).map(|s| s.commands.len()), Ok(1));
    assert_eq!(parse(&cat(max), &opts).err(), refused);
    // Words across commands add up: two halves fit, one more word does not.
    let two = format!("{}\n{}", cat(max / 2 - 1), cat(max / 2 - 1));
    assert!(parse(&two, &opts).is_ok());
    let over = format!("{}\n{}", cat(max / 2 - 1), cat(max / 2));
    assert_eq!(parse(&over, &opts).err(), refused);
    // Assignments and redirects count, and commands hidden in a command's words carry them.
    let env: Vec<String> = (0..1000).map(|i| format!("V{i}=1")).collect();
    let hidden: Vec<String> = (0..100).map(|i| format!("'system(x{i})'")).collect();
    let script = format!("{} awk {}", env.join(" "), hidden.join(" "));
    assert_eq!(parse(&script, &opts).err(), refused);
    let few = format!("{} awk {}", env.join(" "), hidden[..10].join(" "));
    assert_eq!(parse(&few, &opts).map(|s| s.commands.len()), Ok(11));
    let redirects: Vec<String> = (0..max).map(|i| format!("> o{i}")).collect();
    let script = format!("echo {}", redirects.join(" "));
    assert_eq!(parse(&script, &opts).err(), refused);
}

/// A line that would make the parser re-read it at every `$` is refused before it is
/// parsed: tree-sitter-bash asks for the column at each token of a here-document, which
/// tree-sitter finds from the line's start (one 24 KB line of `$x $x …` takes 0.5 s, a
/// megabyte many minutes). The bound is on each such byte times its line's length, summed
/// over the script and its payloads; short lines of many `$` are fine.
#[test]
fn lines_too_dense_to_read_are_refused() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let max = opts.max_line_work;
    assert_eq!(max, 1 << 26);
    let refused = Some(ParseError::LinesTooDense { max });
    let heredoc = |line: &str| format!("cat <<EOF\n{line}\nEOF\n");
    // 4,000 `$x ` on a 12,000-byte line: 48 million, read; 8,000 on 24,000: refused.
    assert!(parse(&heredoc(&"$x ".repeat(4000)), &opts).is_ok());
    assert_eq!(parse(&heredoc(&"$x ".repeat(8000)), &opts).err(), refused);
    // Backquotes and backslashes end tokens too.
    assert_eq!(parse(&heredoc(&"`a`".repeat(5000)), &opts).err(), refused);
    assert_eq!(parse(&heredoc(&"\\a ".repeat(5000)), &opts).err(), refused);
    // Without a here-document the line is read in a few tokens: not counted.
    let quoted = format!("echo '{}' > f", "$x \\\" ".repeat(8000));
    assert!(parse(&quoted, &opts).is_ok());
    // After a `<<` every line counts, here-document or not (the bound does not parse).
    assert_eq!(
        parse(&format!("cat <<EOF\nEOF\n{quoted}"), &opts).err(),
        refused
    );
    // The same `$`s on short lines are far below the bound.
    assert!(parse(&heredoc(&"$x\n".repeat(20_000)), &opts).is_ok());
    // Payloads add to the script's sum: two halves of the bound refused together.
    let half = format!("eval 'cat <<EOF\n{}\nEOF\n'", "$x ".repeat(3000));
    assert!(parse(&half, &opts).is_ok());
    assert_eq!(parse(&format!("{half}\n{half}"), &opts).err(), refused);
}

/// A script that takes the parser more steps than the budget is refused as too complex,
/// and the budget is the whole script's: payloads (`eval '…'`, `bash -c '…'`) spend from it
/// too. Without the budget a megabyte of `a|a|…` costs tree-sitter 8 seconds and 1.6 GB
/// before anything can refuse it.
#[test]
fn a_script_too_complex_to_read_is_refused() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let too_complex = Some(ParseError::TooComplex {
        max_steps: opts.max_parse_steps,
    });
    assert_eq!(opts.max_parse_steps, 8192);
    let dense = vec!["a"; 500_000].join("|");
    assert_eq!(parse(&dense, &opts).err(), too_complex);
    // About the fewest `$x` lines one here-document may not hold (within 2%): found by
    // doubling, then bisecting. (Not words, nor long lines: those are bounded on their own.)
    let refused = |s: &str| match parse(s, &opts) {
        Err(ParseError::TooComplex { .. }) => true,
        Ok(_) => false,
        Err(e) => panic!("{e}"),
    };
    let words = |k: usize| format!("cat <<EOF\n{}EOF\n", "$x\n".repeat(k));
    let mut hi = 1024;
    while !refused(&words(hi)) {
        hi *= 2;
    }
    let mut lo = hi / 2;
    while hi - lo > lo / 64 {
        let mid = (lo + hi) / 2;
        if refused(&words(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Thousands of expansions fit (the budget is far above what commands need) …
    assert!(lo > 10_000, "{lo}");
    // … and two payloads of two thirds of that each, each fine alone, are refused together.
    let part = format!("eval '{}'", words(lo * 2 / 3));
    assert!(!refused(&part));
    assert!(refused(&format!("{part}\n{part}")));
    // The limit is the caller's.
    let more = ParseOptions {
        max_parse_steps: 4 * opts.max_parse_steps,
        ..opts.clone()
    };
    assert!(parse(&format!("{part}\n{part}"), &more).is_ok());
}

/// Each part of a pipeline is told the programs of the parts before it (upstream, also its
/// input sources) and after it (downstream), as sets: checked part by part on a long
/// pipeline with repeated programs and a group part.
#[test]
fn pipeline_parts_know_the_programs_up_and_downstream() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let parts: Vec<String> = (0..120).map(|i| format!("p{}", i % 40)).collect();
    let script = format!("{} | {{ x; y; }}", parts.join(" | "));
    let s = parse(&script, &opts).expect("parses");
    assert_eq!(s.commands.len(), 122);
    let names = |r: std::ops::Range<usize>| -> std::collections::BTreeSet<String> {
        r.map(|i| format!("p{}", i % 40)).collect()
    };
    for (i, c) in s.commands.iter().enumerate() {
        let part = i.min(120);
        let mut up = names(0..part);
        let mut down = names(part + 1..120);
        if part < 120 {
            down.extend(["x".to_string(), "y".to_string()]);
        } else {
            up = names(0..120);
            down.clear();
        }
        let st = &c.structure;
        assert_eq!(
            (st.pipeline_index, st.pipeline_length),
            (part, 121),
            "command {i}"
        );
        assert_eq!(st.upstream, up, "upstream of command {i}");
        assert_eq!(st.downstream, down, "downstream of command {i}");
        assert_eq!(st.input_sources, up, "input sources of command {i}");
    }
}

/// A chain of wrappers longer than the limit is refused (each command of the chain carries
/// the wrappers outside it: unbounded, 400 `sudo`s would take 244M instructions to
/// decide); at the limit it is unwrapped to the end.
#[test]
fn a_wrapper_chain_too_long_is_refused() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let chain = |n: usize| format!("{}ls", "sudo ".repeat(n));
    let s = parse(&chain(32), &opts).expect("at the limit");
    assert_eq!(s.commands.len(), 33);
    let last = s.commands.last().expect("the innermost command");
    assert_eq!(last.program.entity_id(), "ls");
    assert_eq!(last.structure.wrappers.len(), 32);
    assert_eq!(
        parse(&chain(33), &opts).err(),
        Some(ParseError::TooDeep { max: 32 })
    );
    let mixed = format!("{}ls", "env nice timeout 5 ".repeat(11));
    assert_eq!(
        parse(&mixed, &opts).err(),
        Some(ParseError::TooDeep { max: 32 })
    );
}

/// A long `&&`/`||` chain is read whole: tree-sitter-bash nests it one level per link, and
/// the walk follows that spine in a loop, not by recursion (which would refuse a generated
/// chain of more than 200 links as too deep). Each command starts where bash would run it, a
/// redirect after the chain binds to its last command only, and nesting of other kinds is
/// still refused past the depth limit.
#[test]
fn a_long_and_chain_is_read_whole() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let n = 1000;
    let links: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let chain = format!("cd /tmp && {} > out.log", links.join(" && "));
    let s = parse(&chain, &opts).expect("a long chain");
    assert_eq!(s.commands.len(), n + 1);
    let tmp = Cwd::Known(["/tmp".to_string()].into());
    for (i, c) in s.commands.iter().skip(1).enumerate() {
        assert_eq!(c.program.entity_id(), format!("c{i}"));
        assert_eq!(c.cwd, tmp, "c{i} runs after cd /tmp succeeded");
        assert_eq!(c.redirects.is_empty(), i + 1 < n, "redirects of c{i}");
    }
    // `||` runs its right side where the left failed: after `cd /tmp || a`, `a` runs in
    // the start directory; after `cd /tmp && b || c`, `c` may run in either.
    let s = parse("cd /tmp || a && b || c", &opts).expect("mixed");
    let cwds: Vec<Vec<&str>> = s
        .commands
        .iter()
        .map(|c| match &c.cwd {
            Cwd::Known(v) => {
                let mut v: Vec<&str> = v.iter().map(String::as_str).collect();
                v.sort_unstable();
                v
            }
            Cwd::Unknown => vec!["?"],
        })
        .collect();
    let (work, either) = (vec!["/work"], vec!["/tmp", "/work"]);
    assert_eq!(cwds, [&work, &work, &either, &either].map(Vec::clone));
    let chain = format!("{} || {}", links.join(" && "), links.join(" || "));
    assert_eq!(parse(&chain, &opts).map(|s| s.commands.len()), Ok(2 * n));
    // The walk's stack does not grow with the chain: 4,000 links (near the command limit)
    // are read on a 512 KiB thread stack (an async worker's is 2 MiB), debug build too.
    let longest = (0..4000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(" && ");
    let read = std::thread::Builder::new()
        .stack_size(512 << 10)
        .spawn(move || {
            let opts = ParseOptions::new(Some("/work"), "/home/agent");
            parse(&longest, &opts).map(|s| s.commands.len())
        })
        .expect("thread")
        .join()
        .expect("no overflow");
    assert_eq!(read, Ok(4000));
    let deep = format!("{}a{}", "( ".repeat(250), " )".repeat(250));
    assert!(
        matches!(parse(&deep, &opts), Err(ParseError::TooDeep { .. })),
        "250 nested subshells: {:?}",
        parse(&deep, &opts).err()
    );
}

/// The bounds hold where an agent would hide the oversized shape: inside a re-parsed
/// payload (`bash -c '…'`, `eval`), and split between a wrapper chain outside the payload
/// and one inside it (the payload's commands carry the wrappers of the command that runs it).
#[test]
fn the_analysis_bounds_hold_inside_payloads() {
    let opts = ParseOptions::new(Some("/work"), "/home/agent");
    let distinct: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    let pipeline = distinct.join("|");
    for script in [
        format!("bash -c '{pipeline}'"),
        format!("eval '{pipeline}'"),
    ] {
        assert!(
            matches!(
                parse(&script, &opts),
                Err(ParseError::PipelineTooLarge { .. })
            ),
            "{}",
            &script[..20]
        );
    }
    let split = format!("{}bash -c '{}ls'", "sudo ".repeat(20), "sudo ".repeat(20));
    assert_eq!(
        parse(&split, &opts).err(),
        Some(ParseError::TooDeep { max: 32 })
    );
    let within = format!("{}bash -c '{}ls'", "sudo ".repeat(10), "sudo ".repeat(10));
    assert!(parse(&within, &opts).is_ok());
}

/// Every case of `knowledge/env_values.toml`: the assignments reported inert.
#[test]
fn env_value_cases() {
    let k = execkit_grammar::knowledge::catalog().unwrap();
    let values = k.env_values();
    let mut failures = Vec::new();
    let mut n = 0;
    for case in values.cases() {
        n += 1;
        let script = parse(
            &case.script,
            &ParseOptions::new(Some("/work"), "/home/agent"),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.script));
        let inert: Vec<String> = script
            .commands
            .iter()
            .flat_map(|c| c.env.iter().filter(|a| values.inert_assignment(c, a)))
            .map(|a| a.name.clone())
            .collect();
        if inert != case.inert {
            failures.push(format!(
                "`{}`: inert {inert:?}, expected {:?}",
                case.script, case.inert
            ));
        }
    }
    assert!(n >= 20, "{n} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
