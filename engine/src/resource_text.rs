//! How a decision shows a fact's resource: `Type::"id"`, as Cedar writes an entity, the
//! id quoted as Rust's `{:?}` quotes a string.
//!
//! Why not `format!("{type_name}::{id:?}")` every time: quoting walks the id a character
//! at a time through the formatting machinery, and every fact of every decision shows its
//! resource. An id of printable ASCII without `"` or `\` is its own quoting, so it is
//! copied; anything else is still quoted by `{:?}`.

/// `Type::"id"`, exactly as `format!("{type_name}::{id:?}")` writes it.
pub(crate) fn entity_display(type_name: &str, id: &str) -> String {
    if !id.bytes().all(quotes_as_itself) {
        return format!("{type_name}::{id:?}");
    }
    let mut s = String::with_capacity(type_name.len() + id.len() + 4);
    s.push_str(type_name);
    s.push_str("::\"");
    s.push_str(id);
    s.push('"');
    s
}

/// Whether `{:?}` writes this byte of a string as it is.
fn quotes_as_itself(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_that_need_quoting_are_quoted_as_format_quotes_them() {
        for id in [
            "/work/a b",
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "new\nline",
            "nul\0",
            "\u{7f}",
            "é",
            "\u{202e}evil",
            "",
            "*",
            "/*",
        ] {
            assert_eq!(
                entity_display("Path", id),
                format!("Path::{id:?}"),
                "{id:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_id_is_shown_as_format_shows_it(id in any::<String>(), ascii in "[ -~]{0,40}") {
            prop_assert_eq!(entity_display("Program", &id), format!("Program::{id:?}"));
            prop_assert_eq!(entity_display("Host", &ascii), format!("Host::{ascii:?}"));
        }
    }
}
