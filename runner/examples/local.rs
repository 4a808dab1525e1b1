//! A local session under the shipped `default` policies: state that persists, a
//! structured result, a denial, and a timeout that leaves the session usable.
//!
//! ```text
//! cargo run -p execkit-runner --example local
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_runner::{ExecError, ExecOptions, Session};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workspace = std::env::temp_dir().join(format!("execkit-example-{}", std::process::id()));
    std::fs::create_dir_all(workspace.join("src"))?;

    // The embedded `default` policy set and the `workspace` sandbox are the defaults.
    let session = Session::builder().workspace(&workspace).local().await?;
    let info = session.info().await;
    println!(
        "session {} sandbox {} ({:?}, Landlock ABI {})",
        info.id,
        info.enforcement.profile.as_str(),
        info.enforcement.level,
        info.enforcement.landlock_abi
    );

    session
        .exec("cd src && export GREETING=hello", &Default::default())
        .await?;
    let r = session
        .exec("echo \"$GREETING from $(pwd)\"", &Default::default())
        .await?;
    println!(
        "stdout: {:?} exit {:?} in {} ms",
        r.stdout, r.exit_code, r.duration_ms
    );

    match session.exec("cat ~/.ssh/id_rsa", &Default::default()).await {
        Err(ExecError::Denied(d)) => println!("denied: {}", d.reason),
        other => println!("unexpected: {other:?}"),
    }

    let r = session
        .exec(
            "sleep 30",
            &ExecOptions::timeout(Duration::from_millis(300)),
        )
        .await?;
    println!("timed out: {} (exit {:?})", r.timed_out, r.exit_code);
    let r = session.exec("pwd", &Default::default()).await?;
    println!("still in: {}", r.stdout.trim());

    session.close().await;
    std::fs::remove_dir_all(&workspace)?;
    Ok(())
}
