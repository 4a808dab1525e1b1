//! Docker endpoints for the Docker transport (bollard): the operator's endpoint, hardened
//! ephemeral containers, and attaching to existing ones.
//!
//! What is built: connecting to the operator's endpoint (a Unix socket) with API version
//! negotiation (older daemons such as Debian's 20.10 speak API 1.41); an ephemeral
//! container from an image with the hardened default — all capabilities dropped,
//! `no-new-privileges`, a read-only root filesystem with the workspace as the only
//! writable bind mount plus a `tmpfs` `/tmp`, network `none` unless the operator allows it,
//! pids and memory limits, the image's non-root user unless the operator names another —
//! kept alive by a long `sleep` and removed (forced) on close; attaching to an existing,
//! running container; and running one command in it with separate stdout/stderr and its
//! exit code. The Docker socket is never mounted into a container. The persistent shell
//! over Docker builds on this.

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;

/// Operator settings for Docker sessions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DockerSettings {
    /// The daemon's Unix socket (`unix:///path` or a path).
    pub endpoint: String,
    /// Give ephemeral containers a network (default: `none`).
    pub network: bool,
    /// Processes an ephemeral container may run at once.
    pub pids_limit: i64,
    /// Memory of an ephemeral container, in bytes.
    pub memory_bytes: i64,
    /// The user ephemeral containers run as (default: the image's).
    pub user: Option<String>,
    /// The host directory mounted read-write at `/work` in ephemeral containers.
    pub workspace: Option<PathBuf>,
    /// Run a POSIX `sh` where a container has no bash (bash syntax is then lost, and the
    /// policies still judge commands as bash). Off: such a container is refused.
    pub allow_sh: bool,
}

impl DockerSettings {
    /// Settings for one endpoint with the hardened defaults (no network, 256 processes,
    /// 1 GiB, the image's user, no workspace).
    pub fn new(endpoint: impl Into<String>) -> DockerSettings {
        DockerSettings {
            endpoint: endpoint.into(),
            network: false,
            pids_limit: 256,
            memory_bytes: 1 << 30,
            user: None,
            workspace: None,
            allow_sh: false,
        }
    }
}

/// Where a Docker session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DockerTarget {
    /// An existing, running container (by name or id).
    Container(String),
    /// An ephemeral container from this image.
    Image(String),
}

/// Why a Docker session could not be opened or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// The endpoint is unreachable.
    #[error("Docker endpoint {endpoint}: {message}")]
    Endpoint {
        /// The endpoint.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// The container does not exist or is not running.
    #[error("container `{0}` is not running (or does not exist)")]
    NotRunning(String),
    /// The image is not present (no registry is contacted).
    #[error("image `{image}`: {message}")]
    Image {
        /// The image.
        image: String,
        /// What the daemon said.
        message: String,
    },
    /// Any other daemon error.
    #[error("Docker: {0}")]
    Daemon(String),
}

/// What one command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOutput {
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// A container a session runs in.
pub struct DockerConnection {
    docker: Docker,
    container: String,
    ephemeral: bool,
}

/// Connects to the endpoint and returns the daemon's version (for the doctor).
pub async fn ping(s: &DockerSettings) -> Result<String, DockerError> {
    let endpoint_err = |message: String| DockerError::Endpoint {
        endpoint: s.endpoint.clone(),
        message,
    };
    let docker = Docker::connect_with_unix(&s.endpoint, 10, bollard::API_DEFAULT_VERSION)
        .map_err(|e| endpoint_err(e.to_string()))?
        .negotiate_version()
        .await
        .map_err(|e| endpoint_err(e.to_string()))?;
    let v = docker
        .version()
        .await
        .map_err(|e| endpoint_err(e.to_string()))?;
    Ok(v.version.unwrap_or_else(|| "?".into()))
}

fn daemon(e: bollard::errors::Error) -> DockerError {
    DockerError::Daemon(e.to_string())
}

impl DockerConnection {
    /// Connects to the endpoint and attaches to, or creates and starts, the container.
    pub async fn open(
        s: &DockerSettings,
        target: &DockerTarget,
    ) -> Result<DockerConnection, DockerError> {
        let endpoint_err = |message: String| DockerError::Endpoint {
            endpoint: s.endpoint.clone(),
            message,
        };
        let docker = Docker::connect_with_unix(&s.endpoint, 60, bollard::API_DEFAULT_VERSION)
            .map_err(|e| endpoint_err(e.to_string()))?
            .negotiate_version()
            .await
            .map_err(|e| endpoint_err(e.to_string()))?;
        match target {
            DockerTarget::Container(name) => {
                let info = docker
                    .inspect_container(name, None)
                    .await
                    .map_err(|_| DockerError::NotRunning(name.clone()))?;
                let running = info.state.and_then(|st| st.running).unwrap_or(false);
                if !running {
                    return Err(DockerError::NotRunning(name.clone()));
                }
                Ok(DockerConnection {
                    docker,
                    container: name.clone(),
                    ephemeral: false,
                })
            }
            DockerTarget::Image(image) => {
                let name = format!(
                    "execkit-{}",
                    crate::frame::random_hex(6).map_err(|e| DockerError::Daemon(e.to_string()))?
                );
                let host = HostConfig {
                    cap_drop: Some(vec!["ALL".into()]),
                    security_opt: Some(vec!["no-new-privileges".into()]),
                    readonly_rootfs: Some(true),
                    tmpfs: Some(HashMap::from([(
                        "/tmp".to_string(),
                        "rw,nosuid,nodev,size=256m".to_string(),
                    )])),
                    network_mode: Some(if s.network { "bridge" } else { "none" }.into()),
                    pids_limit: Some(s.pids_limit),
                    memory: Some(s.memory_bytes),
                    binds: s
                        .workspace
                        .as_ref()
                        .map(|w| vec![format!("{}:/work:rw", w.display())]),
                    ..HostConfig::default()
                };
                let body = ContainerCreateBody {
                    image: Some(image.clone()),
                    cmd: Some(vec!["sleep".into(), "2147483647".into()]),
                    user: s.user.clone(),
                    working_dir: Some("/work".into()),
                    network_disabled: Some(!s.network),
                    labels: Some(HashMap::from([(
                        "execkit.session".to_string(),
                        "ephemeral".to_string(),
                    )])),
                    host_config: Some(host),
                    ..ContainerCreateBody::default()
                };
                let opts = CreateContainerOptionsBuilder::new().name(&name).build();
                docker
                    .create_container(Some(opts), body)
                    .await
                    .map_err(|e| DockerError::Image {
                        image: image.clone(),
                        message: e.to_string(),
                    })?;
                let conn = DockerConnection {
                    docker,
                    container: name,
                    ephemeral: true,
                };
                if let Err(e) = conn.docker.start_container(&conn.container, None).await {
                    conn.close().await;
                    return Err(daemon(e));
                }
                Ok(conn)
            }
        }
    }

    /// The container's name or id.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Runs one command (`sh -c`, no TTY) and collects its output and exit code.
    pub async fn run(&self, command: &str) -> Result<ContainerOutput, DockerError> {
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["sh", "-c", command]),
                    ..CreateExecOptions::default()
                },
            )
            .await
            .map_err(daemon)?;
        let mut out = ContainerOutput {
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(daemon)?
        {
            while let Some(item) = output.next().await {
                match item.map_err(daemon)? {
                    bollard::container::LogOutput::StdOut { message } => {
                        out.stdout.extend_from_slice(&message)
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        out.stderr.extend_from_slice(&message)
                    }
                    _ => {}
                }
            }
        }
        out.exit_code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(daemon)?
            .exit_code;
        Ok(out)
    }

    /// Starts the persistent shell in an attached `docker exec` (no TTY), feeding stdout and
    /// stderr to `tx` as separate streams.
    pub(crate) async fn open_shell(
        &self,
        tx: tokio::sync::mpsc::Sender<crate::shell::Chunk>,
        dialect: crate::frame::Dialect,
    ) -> Result<crate::remote::Streams, DockerError> {
        use crate::shell::Chunk;
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(dialect.program().split(' ').collect()),
                    ..CreateExecOptions::default()
                },
            )
            .await
            .map_err(daemon)?;
        let StartExecResults::Attached { mut output, input } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(daemon)?
        else {
            return Err(DockerError::Daemon(
                "the shell's exec did not attach".into(),
            ));
        };
        let (exit_tx, exit_rx) = tokio::sync::watch::channel(None);
        let docker = self.docker.clone();
        let id = exec.id.clone();
        tokio::spawn(async move {
            while let Some(item) = output.next().await {
                let chunk = match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => (false, message),
                    Ok(bollard::container::LogOutput::StdErr { message }) => (true, message),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if tx
                    .send(Chunk {
                        gen: 0,
                        err: chunk.0,
                        data: Some(chunk.1.to_vec()),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            for is_err in [false, true] {
                let _ = tx
                    .send(Chunk {
                        gen: 0,
                        err: is_err,
                        data: None,
                    })
                    .await;
            }
            let code = docker
                .inspect_exec(&id)
                .await
                .ok()
                .and_then(|i| i.exit_code)
                .and_then(|c| i32::try_from(c).ok());
            let _ = exit_tx.send(Some(code));
        });
        Ok(crate::remote::Streams {
            input: Box::new(input),
            exit: exit_rx,
            lost: Default::default(),
        })
    }

    /// Runs `command` in an exec of its own and forwards its stdout to `sink` (one stream
    /// of a rotated shell's output). Returns once the exec has started.
    pub(crate) async fn stream(
        &self,
        command: &str,
        sink: crate::remote::StreamSink,
    ) -> Result<(), DockerError> {
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    cmd: Some(vec!["sh", "-c", command]),
                    ..CreateExecOptions::default()
                },
            )
            .await
            .map_err(daemon)?;
        let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(daemon)?
        else {
            return Err(DockerError::Daemon(
                "the stream's exec did not attach".into(),
            ));
        };
        tokio::spawn(async move {
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        if !sink.send(message.to_vec()).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            sink.end().await;
        });
        Ok(())
    }

    /// Ends the session: an ephemeral container is removed with everything in it; an
    /// attached one is left as it was.
    pub async fn close(self) {
        self.remove_if_ephemeral().await;
    }

    /// Removes an ephemeral container (the connection may still be shared).
    pub async fn remove_if_ephemeral(&self) {
        if self.ephemeral {
            let _ = self
                .docker
                .remove_container(
                    &self.container,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..RemoveContainerOptions::default()
                    }),
                )
                .await;
        }
    }
}
