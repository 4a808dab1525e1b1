//! The kernel's list of home paths left readable is the shipped policy sets' list: what
//! `policy check` says of a home path is what the sandbox does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_sandbox::home::HOME_OPEN;

fn group(set: &str, id: &str) -> Vec<String> {
    let path = format!(
        "{}/../policies/{set}/entities.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let e = all
        .iter()
        .find(|e| e["uid"]["type"] == "PathGroup" && e["uid"]["id"] == id)
        .unwrap_or_else(|| panic!("{set} has no PathGroup::\"{id}\""));
    e["attrs"]["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn shipped_sets_open_what_the_kernel_opens() {
    let kernel: Vec<String> = HOME_OPEN.iter().map(|d| format!("~/{}", d.path)).collect();
    for set in ["default", "strict"] {
        assert_eq!(
            group(set, "home-open"),
            kernel,
            "{set}: PathGroup::\"home-open\""
        );
        assert_eq!(group(set, "home"), ["~"], "{set}: PathGroup::\"home\"");
    }
}
