//! Which program a literal command word names.
//!
//! `rm`, `/usr/bin/rm` and `/bin/../bin/rm` are all the program `rm` (a system bin dir is
//! identified by the file name); `./rm` or `/tmp/evil/rm` are *paths*, never `rm`, so a
//! policy that trusts `rm` does not trust a look-alike.

use crate::ir::{Cwd, Program};
use crate::knowledge::Catalog;
use crate::paths;

/// The program a literal command word names, given the cwd candidates it may run in.
pub(crate) fn identify(argv0: &str, cwd: &Cwd, k: &Catalog) -> Program {
    if !argv0.contains('/') {
        return Program::Literal(argv0.to_string());
    }
    let bases: Vec<&str> = if argv0.starts_with('/') {
        vec!["/"]
    } else {
        match cwd {
            Cwd::Known(v) if !v.is_empty() => v.iter().map(String::as_str).collect(),
            _ => return Program::Path(argv0.to_string()),
        }
    };
    let resolved: Vec<String> = bases.iter().map(|b| paths::resolve(b, argv0)).collect();
    let in_system = |p: &String| {
        let dir = paths::ancestors(p).first().copied().unwrap_or("/");
        k.is_system_bin_dir(dir)
    };
    match resolved.first() {
        Some(first) if resolved.iter().all(in_system) => {
            Program::Literal(first.rsplit('/').next().unwrap_or("").to_string())
        }
        Some(first) => Program::Path(first.clone()),
        None => Program::Path(argv0.to_string()),
    }
}

/// The program an executable file is, by its absolute path: a file in a system bin dir is
/// the program of its name (`/usr/bin/make` is `make`), any other is that path.
///
/// ```
/// use execkit_grammar::{program_at, knowledge::catalog, Program};
/// let k = catalog().unwrap();
/// assert_eq!(program_at("/usr/bin/make", k), Program::Literal("make".into()));
/// assert_eq!(program_at("/tmp/x/make", k), Program::Path("/tmp/x/make".into()));
/// ```
pub fn program_at(path: &str, k: &Catalog) -> Program {
    if !path.starts_with('/') {
        return Program::Path(path.to_string());
    }
    identify(path, &Cwd::Unknown, k)
}
