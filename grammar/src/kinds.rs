//! Node kinds and field names by id, looked up in tables built once.
//!
//! tree-sitter's `Node::kind` asks the C library for the kind's name and validates it as
//! UTF-8 on every call, `child_by_field_name` compares the name with every field name of
//! the grammar, and `field_name_for_child` walks the parent's field map per child: the
//! walk asks ~40 kinds and ~20 fields per short command, about 7% of a parse.
//! The names are the language's static strings, so tables indexed by id (and a map from a
//! field's name to its id) give the same answers for the price of an index.

use crate::FastMap;
use std::num::NonZeroU16;
use std::sync::OnceLock;
use tree_sitter::{Node, TreeCursor};

fn language() -> tree_sitter::Language {
    tree_sitter_bash::LANGUAGE.into()
}

/// Every field name of the bash grammar, indexed by field id, and the ids by name.
fn fields() -> &'static (Vec<&'static str>, FastMap<&'static str, NonZeroU16>) {
    static FIELDS: OnceLock<(Vec<&'static str>, FastMap<&'static str, NonZeroU16>)> =
        OnceLock::new();
    FIELDS.get_or_init(|| {
        let lang = language();
        let names: Vec<&'static str> = (0..=lang.field_count())
            .map(|id| {
                u16::try_from(id)
                    .ok()
                    .and_then(|id| lang.field_name_for_id(id))
                    .unwrap_or("")
            })
            .collect();
        let ids = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let id = NonZeroU16::new(u16::try_from(i).ok()?)?;
                (!n.is_empty()).then_some((*n, id))
            })
            .collect();
        (names, ids)
    })
}

/// The id of the field named `name` (`None` if the grammar has no such field).
fn field_id(name: &str) -> Option<NonZeroU16> {
    fields().1.get(name).copied()
}

/// The name of field `id`.
fn field_name(id: Option<NonZeroU16>) -> Option<&'static str> {
    let id = id?;
    fields()
        .0
        .get(usize::from(id.get()))
        .copied()
        .filter(|n| !n.is_empty())
}

/// A node's children, each with the name of the field it is in (as
/// `Node::field_name_for_child` names them), read with one cursor.
pub(crate) struct Fielded<'t> {
    cursor: TreeCursor<'t>,
    started: bool,
    done: bool,
}

impl<'t> Iterator for Fielded<'t> {
    type Item = (Option<&'static str>, Node<'t>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let moved = if self.started {
            self.cursor.goto_next_sibling()
        } else {
            self.started = true;
            self.cursor.goto_first_child()
        };
        if !moved {
            self.done = true;
            return None;
        }
        Some((field_name(self.cursor.field_id()), self.cursor.node()))
    }
}

/// Field lookups by name, through the id tables.
pub(crate) trait Fields<'t> {
    /// The first child in field `name` (as `child_by_field_name`).
    fn field_child(&self, name: &str) -> Option<Node<'t>>;
    /// The children in field `name` (as `children_by_field_name`).
    fn field_children<'c>(
        &self,
        name: &str,
        cursor: &'c mut TreeCursor<'t>,
    ) -> impl Iterator<Item = Node<'t>> + 'c;
    /// Every child with the name of its field.
    fn fielded_children(&self) -> Fielded<'t>;
}

impl<'t> Fields<'t> for Node<'t> {
    fn field_child(&self, name: &str) -> Option<Node<'t>> {
        self.child_by_field_id(field_id(name)?.get())
    }
    fn field_children<'c>(
        &self,
        name: &str,
        cursor: &'c mut TreeCursor<'t>,
    ) -> impl Iterator<Item = Node<'t>> + 'c {
        // tree-sitter's `children_by_field_name`, with the id from the table.
        let id = field_id(name);
        let mut done = id.is_none();
        if !done {
            cursor.reset(*self);
            cursor.goto_first_child();
        }
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            while cursor.field_id() != id {
                if !cursor.goto_next_sibling() {
                    return None;
                }
            }
            let result = cursor.node();
            if !cursor.goto_next_sibling() {
                done = true;
            }
            Some(result)
        })
    }
    fn fielded_children(&self) -> Fielded<'t> {
        Fielded {
            cursor: self.walk(),
            started: false,
            done: false,
        }
    }
}

/// Every kind name of the bash grammar, indexed by kind id.
fn names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let lang = language();
        (0..lang.node_kind_count())
            .map(|id| {
                u16::try_from(id)
                    .ok()
                    .and_then(|id| lang.node_kind_for_id(id))
                    .unwrap_or("")
            })
            .collect()
    })
}

/// A node's kind name, as [`Node::kind`] gives it.
pub(crate) trait KindName {
    /// The kind name from the table (tree-sitter's own call for an id past its end).
    fn kind_name(&self) -> &'static str;
}

impl KindName for Node<'_> {
    fn kind_name(&self) -> &'static str {
        match names().get(usize::from(self.kind_id())) {
            Some(k) if !k.is_empty() => k,
            _ => self.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_tables_name_every_node_and_field_as_tree_sitter_does() {
        let mut p = tree_sitter::Parser::new();
        p.set_language(&tree_sitter_bash::LANGUAGE.into()).unwrap();
        let src = "cd /a && { x=1 cat <<EOF > o; } | tee \"$(ls)\" 2>&1 & for i in *; do echo $i; done\nEOF\n";
        let tree = p.parse(src, None).unwrap();
        let mut stack = vec![tree.root_node()];
        let mut seen = 0;
        while let Some(n) = stack.pop() {
            assert_eq!(n.kind_name(), n.kind());
            seen += 1;
            let fielded: Vec<_> = n.fielded_children().collect();
            let mut c = n.walk();
            let by_index: Vec<_> = n
                .children(&mut c)
                .enumerate()
                .map(|(i, k)| (n.field_name_for_child(i as u32), k))
                .collect();
            assert_eq!(fielded, by_index, "fields of {}", n.kind());
            for f in [
                "name",
                "body",
                "redirect",
                "value",
                "argument",
                "descriptor",
                "nope",
            ] {
                assert_eq!(
                    n.field_child(f),
                    n.child_by_field_name(f),
                    "{f} of {}",
                    n.kind()
                );
                let mut c1 = n.walk();
                let mut c2 = n.walk();
                let ours: Vec<_> = n.field_children(f, &mut c1).collect();
                let theirs: Vec<_> = n.children_by_field_name(f, &mut c2).collect();
                assert_eq!(ours, theirs, "{f} children of {}", n.kind());
            }
            let mut c = n.walk();
            stack.extend(n.children(&mut c));
        }
        assert!(seen > 40, "{seen} nodes");
    }
}
