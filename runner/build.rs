//! Builds the remote helper (`execkit-helper`) as a static binary for the target and
//! embeds it in the runner, so the server can upload it to an SSH host or copy it into a
//! container with nothing else installed.
//!
//! The helper is built by a nested `cargo build` of the `execkit-helper` workspace member
//! with the `helper` profile (small, `panic = "abort"`, stripped) and
//! `-C target-feature=+crt-static`, into a target directory of its own inside this
//! build's (so it never waits on this build's lock and later builds reuse it).
//!
//! `EXECKIT_HELPER_BINARY=/path` embeds that file instead (a packager's prebuilt helper);
//! `EXECKIT_HELPER_BINARY=none` embeds none (remote sessions then run without the
//! helper's sandbox, and say so).

// A build script reports failure by panicking: the message is what cargo shows.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    for p in [
        "../helper/src",
        "../helper/Cargo.toml",
        "../sandbox/src",
        "../sandbox/Cargo.toml",
        "../Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=EXECKIT_HELPER_BINARY");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let dest = out.join("execkit-helper");
    match std::env::var("EXECKIT_HELPER_BINARY").ok().as_deref() {
        Some("none") => std::fs::write(&dest, b"").expect("write the empty helper"),
        Some(path) => {
            std::fs::copy(path, &dest)
                .unwrap_or_else(|e| panic!("EXECKIT_HELPER_BINARY={path}: {e}"));
        }
        None => build(&out, &dest),
    }
    println!("cargo:rustc-env=EXECKIT_HELPER_PATH={}", dest.display());
}

fn build(out: &Path, dest: &Path) {
    let target = std::env::var("TARGET").expect("TARGET");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let workspace = manifest.parent().expect("the runner is in the workspace");
    // OUT_DIR is <target dir>[/<triple>]/<profile>/build/<crate>-<hash>/out.
    let target_dir = out
        .ancestors()
        .nth(4)
        .unwrap_or(out)
        .join("execkit-helper-static");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--offline", "--locked", "--profile", "helper"])
        .args(["-p", "execkit-helper", "--bin", "execkit-helper"])
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    // Nothing of this build's flags, wrappers or profile settings (clippy, sanitizers,
    // coverage) reaches the helper's build; only the static C runtime is asked for.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_PROFILE_")
            || k.starts_with("CARGO_BUILD_")
            || k.starts_with("CARGO_TARGET_")
            || matches!(
                k.as_str(),
                "RUSTFLAGS"
                    | "CARGO_ENCODED_RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "CARGO_TARGET_DIR"
                    | "RUSTDOCFLAGS"
                    | "CARGO_ENCODED_RUSTDOCFLAGS"
            )
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build execkit-helper: {e}"));
    assert!(
        status.success(),
        "building the static execkit-helper failed (set EXECKIT_HELPER_BINARY=/path to a prebuilt one, or =none to build without it)"
    );
    let built = target_dir
        .join(&target)
        .join("helper")
        .join("execkit-helper");
    std::fs::copy(&built, dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
}
