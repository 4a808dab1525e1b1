//! A session on an SSH host: the operator's known_hosts and key, a persistent shell, a
//! structured result. Policies are the guard there (no local sandbox); this example
//! permits everything, so point it at a throwaway host.
//!
//! ```text
//! cargo run -p execkit-runner --example ssh -- USER@HOST:PORT KNOWN_HOSTS KEY
//! ```
//! (`scripts/sshd-for-tests.sh start DIR` starts a throwaway sshd to try it on.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // example code

use execkit_runner::ssh::{SshSettings, SshTarget};
use execkit_runner::{Engine, PolicyBundle, Session};
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(spec), Some(known_hosts), Some(key)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: ssh USER@HOST:PORT KNOWN_HOSTS KEY");
        std::process::exit(2);
    };
    let (user, hostport) = spec.split_once('@').ok_or("USER@HOST:PORT")?;
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "22"));
    let target = SshTarget {
        host: host.into(),
        port: port.parse()?,
        user: user.into(),
    };
    let mut settings = SshSettings::new(known_hosts);
    settings.identity_files = vec![key.into()];
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
    let session = Session::ssh(&target, &settings, config).await?;
    session
        .exec("cd /tmp && export GREETING=hello", &Default::default())
        .await?;
    let r = session
        .exec(
            "echo \"$GREETING from $(hostname):$(pwd)\"",
            &Default::default(),
        )
        .await?;
    println!(
        "stdout: {:?} exit {:?} in {} ms",
        r.stdout, r.exit_code, r.duration_ms
    );
    session.close().await;
    Ok(())
}
