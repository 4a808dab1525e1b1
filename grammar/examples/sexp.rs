//! Prints tree-sitter-bash's syntax tree for a script given as the first argument.
//! Handy when extending the walker: `cargo run -p execkit-grammar --example sexp -- 'ls | wc'`.

#![allow(clippy::expect_used)] // a developer tool: a failure is printed and ends it
fn main() {
    let script = std::env::args().nth(1).unwrap_or_default();
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .expect("tree-sitter-bash is compatible with this tree-sitter");
    match parser.parse(&script, None) {
        Some(tree) => print(tree.root_node(), &script, 0, None),
        None => eprintln!("parser returned no tree"),
    }
}

fn print(node: tree_sitter::Node, src: &str, depth: usize, field: Option<&str>) {
    let text = &src[node.byte_range()];
    let shown = if node.child_count() == 0 {
        format!(" {text:?}")
    } else {
        String::new()
    };
    let field = field.map(|f| format!("{f}: ")).unwrap_or_default();
    let anon = if node.is_named() { "" } else { " (anon)" };
    let missing = if node.is_missing() { " MISSING" } else { "" };
    println!(
        "{}{field}{}{anon}{missing}{shown}",
        "  ".repeat(depth),
        node.kind()
    );
    let mut cursor = node.walk();
    for (i, child) in node.children(&mut cursor).enumerate() {
        print(child, src, depth + 1, node.field_name_for_child(i as u32));
    }
}
