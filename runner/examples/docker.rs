//! A session in a hardened ephemeral Docker container (removed on close).
//!
//! ```text
//! cargo run -p execkit-runner --example docker -- IMAGE [unix:///var/run/docker.sock]
//! ```
//! (`scripts/dockerd-for-tests.sh start DIR` starts a private daemon with the image
//! `execkit-test:latest`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // example code

use execkit_runner::docker::{DockerSettings, DockerTarget};
use execkit_runner::{Engine, PolicyBundle, Session};
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(image) = args.next() else {
        eprintln!("usage: docker IMAGE [ENDPOINT]");
        std::process::exit(2);
    };
    let endpoint = args
        .next()
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    let permit = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[(
            "all.cedar",
            "@id(\"all\") permit(principal, action, resource);",
        )],
        "[]",
    );
    let config = Session::builder()
        .engine(Arc::new(Engine::new(&permit)?))
        .build()?;
    let session = Session::docker(
        &DockerTarget::Image(image),
        &DockerSettings::new(endpoint),
        config,
    )
    .await?;
    let r = session
        .exec(
            "id -u; grep CapEff /proc/self/status; touch /etc/x || echo read-only root",
            &Default::default(),
        )
        .await?;
    println!("{}", r.stdout);
    session.close().await;
    Ok(())
}
