//! Matching: where in a text the rules' secrets are.
//!
//! One seam for every way a secret is found: [`keyword_dfa`] (the prefilter: every keyword
//! occurrence of every rule, one table lookup a byte), [`pattern_regex`] (the rules'
//! patterns on regex-automata's meta regex), [`keyword_search`] (patterns led by a keyword,
//! searched from its occurrences), [`known`] (the operator's exact values and their
//! encodings) and [`scan`] (a line against the rule set: which rules run where, and each
//! match judged by its rule's filters). The rules themselves (loading, validation, the
//! shipped file) are [`crate::rules`]; the stream that feeds lines in is
//! [`crate::stream`].

pub(crate) mod keyword_dfa;
pub(crate) mod keyword_search;
pub(crate) mod known;
pub(crate) mod pattern_regex;
pub(crate) mod scan;
