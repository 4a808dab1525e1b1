//! Knowledge the rule file keeps as data rather than inside regexes: the names of secrets
//! that take more than one word (`erlangCookie`, `routing_key`, `ldap_bind_pw`,
//! `npmAuthIdent`), and the flags through which programs take a password on their
//! command line (`ldapsearch -w`, `keytool -storepass`, `redis-server --requirepass`).
//!
//! A rule uses them through placeholders, expanded when the file is read:
//! - `{names}` in a pattern becomes an alternation of every name, each word joined by an
//!   optional `_`, `-`, `.` or blank (so `erlang_cookie`, `erlang-cookie`,
//!   `erlang.cookie`, `erlangcookie`, `erlang cookie`, and under `(?i)` `erlangCookie`
//!   and `ERLANG_COOKIE`); `{names}` as a keyword becomes each name's longest word (the
//!   first of the longest), which every spelling holds: one keyword a name keeps the
//!   keyword scan's table small, so the list should hold no name whose longest word is
//!   common text (`service_key`, `deploy_key`);
//! - `{credential_flags}` as a pattern becomes one pattern per entry (the program's name,
//!   a blank, anything on the line, then one of its flags and the value),
//!   `{credential_programs}` as a keyword every program's name followed by a blank (so that
//!   `az` is not looked for in every `lazy`), and each entry's example joins the rule's
//!   positives.
//!
//! Why data: the regexes stay readable and the lists grow by a line, with an example the
//! test suite redacts; the keyword-cover proof and the reference redactor see the expanded
//! rules like any other.

use crate::rules::RuleSpec;
use serde::Deserialize;

/// Multi-word names of secrets (see the module docs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabularySpec {
    /// Each name as its words, lower case: `["erlang", "cookie"]`.
    #[serde(default)]
    pub names: Vec<Vec<String>>,
}

/// The flags through which one family of programs takes a password or token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialFlagSpec {
    /// The programs, as they appear on a command line (`ldapsearch`, `ldapmodify`).
    pub programs: Vec<String>,
    /// The flags, as written (`-w`, `--requirepass`, `-storepass`).
    pub flags: Vec<String>,
    /// A command line with a value the rule must redact.
    pub example: String,
}

/// Where the placeholders stand in a rule.
const NAMES: &str = "{names}";
const FLAGS: &str = "{credential_flags}";
const PROGRAMS: &str = "{credential_programs}";

/// The five spellings of a name (see the module docs).
#[cfg(test)]
fn spellings(words: &[String]) -> [String; 5] {
    ["_", "-", ".", "", " "].map(|sep| words.join(sep))
}

/// The keyword of a name: its longest word, the first of the longest.
fn keyword_of(words: &[String]) -> Option<String> {
    words.iter().rev().max_by_key(|w| w.len()).cloned()
}

/// A regex alternation of every name, words joined by an optional separator.
fn names_alternation(v: &VocabularySpec) -> String {
    let names: Vec<String> = v
        .names
        .iter()
        .map(|words| {
            words
                .iter()
                .map(|w| regex::escape(w))
                .collect::<Vec<_>>()
                .join("[_.\\- ]?")
        })
        .collect();
    format!("(?:{})", names.join("|"))
}

/// One pattern for an entry (its `before`-th flag on the line, `before` flags and their
/// values first): the program as a word and a blank, then on the same line one of its
/// flags, joined to its value by blanks, `=` or nothing, and the value (which does not
/// start with a dash: that is the next flag).
fn flag_pattern(f: &CredentialFlagSpec, before: usize) -> String {
    let alt = |xs: &[String]| {
        xs.iter()
            .map(|x| regex::escape(x))
            .collect::<Vec<_>>()
            .join("|")
    };
    // The `before`-th flag of the line after the program: the search goes on after a match,
    // where the program's name no longer is (`keytool … -storepass a -keypass b`).
    let earlier = format!(r"(?:[^\n]*?\s(?:{})\S*){{{before}}}", alt(&f.flags));
    format!(
        r#"(?:^|[\s/;|&(])(?:{}) {earlier}(?:[^\n]*?\s)?(?:{})(?:[ \t]+|=)?["']?(?P<s>[^\s"'\-][^\s"']*)"#,
        alt(&f.programs),
        alt(&f.flags)
    )
}

/// Expands the placeholders of every rule (see the module docs).
pub(crate) fn expand(rules: &mut [RuleSpec], v: &VocabularySpec, flags: &[CredentialFlagSpec]) {
    let names = names_alternation(v);
    for rule in rules.iter_mut() {
        let mut keywords = Vec::with_capacity(rule.keywords.len());
        for k in rule.keywords.drain(..) {
            match k.as_str() {
                NAMES => keywords.extend(v.names.iter().filter_map(|w| keyword_of(w))),
                PROGRAMS => keywords.extend(
                    flags
                        .iter()
                        .flat_map(|f| f.programs.iter().map(|p| format!("{p} "))),
                ),
                _ => keywords.push(k),
            }
        }
        keywords.dedup();
        rule.keywords = keywords;
        let mut patterns = Vec::with_capacity(rule.patterns.len());
        for p in rule.patterns.drain(..) {
            if p == FLAGS {
                patterns.extend(
                    flags
                        .iter()
                        .flat_map(|f| [flag_pattern(f, 0), flag_pattern(f, 1)]),
                );
                rule.positives
                    .extend(flags.iter().map(|f| f.example.clone()));
            } else {
                patterns.push(p.replace(NAMES, &names));
            }
        }
        rule.patterns = patterns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_spelled_four_ways_and_matched_in_each() {
        let v = VocabularySpec {
            names: vec![vec!["erlang".into(), "cookie".into()]],
        };
        assert_eq!(
            spellings(&v.names[0]),
            [
                "erlang_cookie",
                "erlang-cookie",
                "erlang.cookie",
                "erlangcookie",
                "erlang cookie"
            ]
            .map(String::from)
        );
        let re = regex::Regex::new(&format!("(?i)^{}$", names_alternation(&v))).unwrap();
        for s in [
            "erlangCookie",
            "ERLANG_COOKIE",
            "erlang-cookie",
            "erlang.cookie",
        ] {
            assert!(re.is_match(s), "{s}");
        }
        assert!(!re.is_match("erlang__cookie"));
        assert_eq!(keyword_of(&v.names[0]).as_deref(), Some("erlang"));
        assert_eq!(
            keyword_of(&["seed".into(), "phrase".into()]).as_deref(),
            Some("phrase")
        );
    }

    #[test]
    fn a_flag_entry_finds_its_value_on_the_programs_line_only() {
        let f = CredentialFlagSpec {
            programs: vec!["ldapsearch".into()],
            flags: vec!["-w".into()],
            example: String::new(),
        };
        let re = regex::Regex::new(&flag_pattern(&f, 0)).unwrap();
        let caps = re
            .captures("ldapsearch -x -D cn=admin -w Summer2024 -b dc=x")
            .unwrap();
        assert_eq!(&caps["s"], "Summer2024");
        assert!(re.captures("  -w passwd  bind password").is_none());
        assert!(re.captures("ldapsearch -x -W -b dc=x").is_none());
    }
}
