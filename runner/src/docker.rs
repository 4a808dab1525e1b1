//! Docker endpoints for the Docker transport (bollard): the operator's endpoint, hardened
//! ephemeral containers, and attaching to existing ones.
//!
//! What is built: connecting to the operator's endpoint (a Unix socket) with API version
//! negotiation (older daemons such as Debian's 20.10 speak API 1.41); an ephemeral
//! container from an image with the hardened default — all capabilities dropped,
//! `no-new-privileges`, a read-only root filesystem with the workspace as the only
//! writable bind mount plus a `tmpfs` `/tmp`, network `none` unless the operator allows it,
//! pids and memory limits, the image's non-root user unless the operator names another —
//! removed (forced) on close; attaching to an existing,
//! running container; and running one command in it with separate stdout/stderr and its
//! exit code. The Docker socket is never mounted into a container. The persistent shell
//! over Docker builds on this.
//!
//! An ephemeral container lives exactly as long as its server: its main process (the
//! remote helper's `guard`, bind-mounted read-only, or a `read` loop in `sh`) ends when
//! the attach stream this server holds closes — at `close`, or when the server exits or
//! is killed — and the daemon removes it (auto-remove). Containers labelled as belonging
//! to a server of this user that is gone are removed when the next one opens.

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;

/// Where ephemeral containers have the helper (bind-mounted read-only).
pub(crate) const CONTAINER_HELPER: &str = "/.execkit-helper";

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
    /// The sandbox the helper applies inside the container.
    pub sandbox: crate::remote_sandbox::RemoteSandbox,
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
            sandbox: crate::remote_sandbox::RemoteSandbox::default(),
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
    /// The helper is bind-mounted at [`CONTAINER_HELPER`].
    helper_mounted: bool,
    /// Made by this server with network `none`: only the loopback.
    network_none: bool,
    /// The attach stream of an ephemeral container's main process: while it is open the
    /// container lives; when this server closes it (or dies) the container ends.
    lifeline: Option<tokio::task::AbortHandle>,
}

/// The label every ephemeral container carries, and the one naming its server.
const SESSION_LABEL: &str = "execkit.session";
const OWNER_LABEL: &str = "execkit.owner";

/// Removes ephemeral containers whose server (this user's, on this machine) is gone.
/// Returns how many were removed.
async fn sweep_stale(docker: &Docker) -> usize {
    use bollard::query_parameters::ListContainersOptions;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{SESSION_LABEL}=ephemeral")],
    )]);
    let Ok(list) = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        }))
        .await
    else {
        return 0;
    };
    let mut removed = 0;
    for c in list {
        let stale = c
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_LABEL))
            .is_some_and(|owner| crate::tmpdirs::owner_label_is_stale(owner));
        let Some(id) = c.id else { continue };
        if stale
            && docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..RemoveContainerOptions::default()
                    }),
                )
                .await
                .is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Creates, attaches to and starts a hardened ephemeral container whose main process
/// (the helper's guard, or a `read` loop without the helper) ends when its attach stream
/// closes; the daemon then removes it. Containers left by servers of this user that are
/// gone are removed first.
async fn open_ephemeral(
    docker: Docker,
    s: &DockerSettings,
    image: &str,
) -> Result<DockerConnection, DockerError> {
    use bollard::query_parameters::AttachContainerOptionsBuilder;
    sweep_stale(&docker).await;
    let name = format!(
        "execkit-{}",
        crate::frame::random_hex(6).map_err(|e| DockerError::Daemon(e.to_string()))?
    );
    let helper = match s.sandbox.helper {
        crate::remote_sandbox::HelperSource::Bundled => crate::helper_binary::local_copy().ok(),
        _ => None,
    };
    let mut binds: Vec<String> = s
        .workspace
        .iter()
        .map(|w| format!("{}:/work:rw", w.display()))
        .collect();
    if let Some(h) = &helper {
        binds.push(format!("{}:{}:ro", h.display(), CONTAINER_HELPER));
    }
    let cmd: Vec<String> = match &helper {
        Some(_) => vec![CONTAINER_HELPER.into(), "guard".into()],
        None => vec![
            "sh".into(),
            "-c".into(),
            "while read -r _; do :; done".into(),
        ],
    };
    let host = HostConfig {
        cap_drop: Some(vec!["ALL".into()]),
        // In the bounding set only (no process of the image's account holds it, and the
        // helper's shell drops every capability): it makes Docker's own seccomp profile let
        // the helper take a connecting socket from the shell (`pidfd_getfd`) to connect it
        // on its behalf. The session's filter refuses that call to the session.
        cap_add: helper.as_ref().map(|_| vec!["SYS_PTRACE".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            "rw,nosuid,nodev,size=256m".to_string(),
        )])),
        network_mode: Some(if s.network { "bridge" } else { "none" }.into()),
        pids_limit: Some(s.pids_limit),
        memory: Some(s.memory_bytes),
        binds: (!binds.is_empty()).then_some(binds),
        auto_remove: Some(true),
        ..HostConfig::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd),
        user: s.user.clone(),
        working_dir: Some("/work".into()),
        network_disabled: Some(!s.network),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        labels: Some(HashMap::from([
            (SESSION_LABEL.to_string(), "ephemeral".to_string()),
            (OWNER_LABEL.to_string(), crate::tmpdirs::owner_label()),
        ])),
        host_config: Some(host),
        ..ContainerCreateBody::default()
    };
    let opts = CreateContainerOptionsBuilder::new().name(&name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| DockerError::Image {
            image: image.to_string(),
            message: e.to_string(),
        })?;
    let mut conn = DockerConnection {
        docker,
        container: name,
        ephemeral: true,
        helper_mounted: helper.is_some(),
        network_none: !s.network,
        lifeline: None,
    };
    let attach = conn
        .docker
        .attach_container(
            &conn.container,
            Some(
                AttachContainerOptionsBuilder::default()
                    .stdin(true)
                    .stdout(true)
                    .stderr(true)
                    .stream(true)
                    .build(),
            ),
        )
        .await;
    let attach = match attach {
        Ok(a) => a,
        Err(e) => {
            conn.close().await;
            return Err(daemon(e));
        }
    };
    let task = tokio::spawn(async move {
        let bollard::container::AttachContainerResults { mut output, input } = attach;
        // The input is held, never written: its end is the container's end.
        let _input = input;
        while let Some(item) = output.next().await {
            if item.is_err() {
                break;
            }
        }
    });
    conn.lifeline = Some(task.abort_handle());
    if let Err(e) = conn.docker.start_container(&conn.container, None).await {
        conn.close().await;
        return Err(daemon(e));
    }
    Ok(conn)
}

/// An attached exec's output stream and stdin.
type Attached = (
    String,
    std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
                > + Send,
        >,
    >,
    std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
);

impl DockerConnection {
    /// Creates and starts an exec of `argv` attached to its stdout and stderr (and stdin
    /// with `stdin`): its id, its output and its input. `what` names it in errors.
    async fn attached(
        &self,
        argv: &[&str],
        stdin: bool,
        what: &str,
    ) -> Result<Attached, DockerError> {
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv.to_vec()),
                    ..CreateExecOptions::default()
                },
            )
            .await
            .map_err(daemon)?;
        let StartExecResults::Attached { output, input } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(daemon)?
        else {
            return Err(DockerError::Daemon(format!("{what}'s exec did not attach")));
        };
        Ok((exec.id, output, input))
    }
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
                    helper_mounted: false,
                    network_none: false,
                    lifeline: None,
                })
            }
            DockerTarget::Image(image) => open_ephemeral(docker, s, image).await,
        }
    }

    /// The container's name or id.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// True when the helper is bind-mounted in the container.
    pub(crate) fn helper_mounted(&self) -> bool {
        self.helper_mounted
    }

    /// True when this server made the container with network `none`.
    pub(crate) fn network_none(&self) -> bool {
        self.network_none
    }

    /// Runs one command (`sh -c`, no TTY) and collects its output and exit code.
    pub async fn run(&self, command: &str) -> Result<ContainerOutput, DockerError> {
        let (id, mut output, _) = self
            .attached(&["sh", "-c", command], false, "the command")
            .await?;
        let mut out = ContainerOutput {
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
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
        out.exit_code = self
            .docker
            .inspect_exec(&id)
            .await
            .map_err(daemon)?
            .exit_code;
        Ok(out)
    }

    /// Starts the persistent shell in an attached `docker exec` (no TTY), feeding stdout and
    /// stderr to `tx` as separate streams.
    pub(crate) async fn open_shell(
        &self,
        tx: tokio::sync::mpsc::Sender<crate::stream::Chunk>,
        dialect: crate::frame::Dialect,
    ) -> Result<crate::stream::Streams, DockerError> {
        use crate::stream::Chunk;
        let argv: Vec<&str> = dialect.program().split(' ').collect();
        let (id, mut output, input) = self.attached(&argv, true, "the shell").await?;
        let (exit_tx, exit_rx) = tokio::sync::watch::channel(None);
        let docker = self.docker.clone();
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
        Ok(crate::stream::Streams {
            input: Box::new(input),
            exit: exit_rx,
            lost: Default::default(),
        })
    }

    /// Runs `argv` in an attached exec as a raw byte channel (the remote helper): its
    /// stdin, its stdout as it arrives, and the first bytes of its stderr.
    pub(crate) async fn open_raw(
        &self,
        argv: &[String],
    ) -> Result<crate::helper_link::RawChannel, DockerError> {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (_, mut output, input) = self.attached(&argv, true, "the helper").await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>> = Default::default();
        let errs = stderr.clone();
        tokio::spawn(async move {
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        if tx.send(message.to_vec()).await.is_err() {
                            break;
                        }
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        if let Ok(mut e) = errs.lock() {
                            if e.len() < 8192 {
                                e.extend_from_slice(&message);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(crate::helper_link::RawChannel {
            input: Box::new(input),
            output: rx,
            stderr,
        })
    }

    /// Copies `bytes` into the container as the executable file `dir/name` (mode 0755).
    pub(crate) async fn upload_file(
        &self,
        dir: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), DockerError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let mut archive = tar::Builder::new(Vec::new());
        archive
            .append_data(&mut header, name, bytes)
            .map_err(|e| DockerError::Daemon(format!("tar: {e}")))?;
        let tarball = archive
            .into_inner()
            .map_err(|e| DockerError::Daemon(format!("tar: {e}")))?;
        let opts = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(
                &self.container,
                Some(opts),
                bollard::body_full(tarball.into()),
            )
            .await
            .map_err(daemon)
    }

    /// Runs `command` in an exec of its own and forwards its stdout to `sink` (one stream
    /// of a rotated shell's output). Returns once the exec has started.
    pub(crate) async fn stream(
        &self,
        command: &str,
        sink: crate::stream::StreamSink,
    ) -> Result<(), DockerError> {
        let (_, mut output, _) = self
            .attached(&["sh", "-c", command], false, "the stream")
            .await?;
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
        if let Some(l) = &self.lifeline {
            l.abort();
        }
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

impl Drop for DockerConnection {
    /// Closing the lifeline ends an ephemeral container even when nobody awaited `close`.
    fn drop(&mut self) {
        if let Some(l) = &self.lifeline {
            l.abort();
        }
    }
}
