//! SSH connections for the SSH transport (russh): operator-chosen credentials and host-key
//! trust, never an agent's.
//!
//! What is built: connecting with the host key checked against the operator's
//! `known_hosts` ([`crate::known_hosts`]; unknown hosts refused unless the operator enabled
//! trust-on-first-use, which appends the key, or the test-only `insecure` acceptance);
//! public-key authentication with key files that must be owner-only (as OpenSSH demands),
//! then a password from an operator source if configured; keepalives; and running one
//! command with separate stdout/stderr and its exit status (for probes and the doctor).
//! The persistent shell over SSH builds on this connection.

use crate::known_hosts::{HostKeyVerdict, KnownHosts, KnownHostsError};
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do with a host `known_hosts` does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownHosts {
    /// Refuse (the default).
    #[default]
    Refuse,
    /// Trust the first key seen and append it to `known_hosts` (an explicit operator choice).
    TrustOnFirstUse,
    /// Accept any key, known or not, changed or not. Only for tests; never in production.
    InsecureAcceptAny,
}

/// Operator settings for SSH connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SshSettings {
    /// Private key files tried in order (each must be owner-only).
    pub identity_files: Vec<PathBuf>,
    /// Passphrase for encrypted key files.
    pub passphrase: Option<String>,
    /// A file holding the passphrase (owner-only; used when `passphrase` is unset).
    pub passphrase_file: Option<PathBuf>,
    /// An ssh-agent socket whose keys are tried after the key files.
    pub agent_socket: Option<PathBuf>,
    /// A password tried after the keys.
    pub password: Option<String>,
    /// A file holding the password (owner-only; used when `password` is unset).
    pub password_file: Option<PathBuf>,
    /// The operator's `known_hosts`.
    pub known_hosts: PathBuf,
    /// Unknown hosts.
    pub unknown_hosts: UnknownHosts,
    /// How long connecting and authenticating may take.
    pub connect_timeout: Duration,
    /// Keepalive interval.
    pub keepalive: Duration,
    /// Run a POSIX `sh` where the host has no bash (bash syntax is then lost, and the
    /// policies still judge commands as bash). Off: such a host is refused.
    pub allow_sh: bool,
    /// The sandbox the remote helper applies on the host.
    pub sandbox: crate::remote_sandbox::RemoteSandbox,
}

impl SshSettings {
    /// Settings with one known_hosts file and nothing else (add keys or a password).
    pub fn new(known_hosts: impl Into<PathBuf>) -> SshSettings {
        SshSettings {
            identity_files: Vec::new(),
            passphrase: None,
            passphrase_file: None,
            agent_socket: None,
            password: None,
            password_file: None,
            known_hosts: known_hosts.into(),
            unknown_hosts: UnknownHosts::Refuse,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(15),
            allow_sh: false,
            sandbox: crate::remote_sandbox::RemoteSandbox::default(),
        }
    }
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Remote user.
    pub user: String,
}

/// Why a connection was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// The operator's known_hosts is unreadable or malformed.
    #[error("known_hosts {path}: {message}")]
    KnownHosts {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The host key is not trusted.
    #[error("{host}:{port}: {verdict}")]
    HostKey {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        verdict: HostKeyVerdict,
    },
    /// A key file cannot be used.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A passphrase or password file cannot be used.
    #[error("secret file {path}: {message}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// No method authenticated.
    #[error("authentication as `{user}` failed (tried: {tried})")]
    Auth {
        /// The user.
        user: String,
        /// The methods tried.
        tried: String,
    },
    /// Connecting or the protocol failed.
    #[error("{host}:{port}: {message}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// What happened.
        message: String,
    },
}

/// Checks the server's key and remembers the verdict for the error message.
struct Verifier {
    known: KnownHosts,
    known_path: PathBuf,
    host: String,
    port: u16,
    unknown: UnknownHosts,
    verdict: Arc<Mutex<Option<HostKeyVerdict>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            if let Ok(mut v) = self.verdict.lock() {
                *v = Some(HostKeyVerdict::CertificatesUnsupported { line: 0 });
            }
            return Ok(false);
        };
        let algorithm = key.algorithm().as_str().to_string();
        let Ok(blob) = key.to_bytes() else {
            return Ok(false);
        };
        let verdict = self.known.check(&self.host, self.port, &algorithm, &blob);
        let accept = match (&verdict, self.unknown) {
            (_, UnknownHosts::InsecureAcceptAny) => true,
            (HostKeyVerdict::Trusted { .. }, _) => true,
            (HostKeyVerdict::Unknown, UnknownHosts::TrustOnFirstUse) => {
                let line = KnownHosts::line_for(&self.host, self.port, &algorithm, &blob);
                append_line(&self.known_path, &line).is_ok()
            }
            _ => false,
        };
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(verdict);
        }
        Ok(accept)
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line}")
}

/// Refuses a key file others can read (as OpenSSH does) or that this user does not own.
pub fn check_key_file(path: &Path) -> Result<(), SshError> {
    owner_only(path).map_err(|message| SshError::KeyFile {
        path: path.display().to_string(),
        message,
    })
}

/// Refuses a file that others can read or that another user owns (as OpenSSH does).
fn owner_only(path: &Path) -> Result<(), String> {
    let m = path.metadata().map_err(|e| e.to_string())?;
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "permissions {:o} are too open: it must be readable by its owner only (chmod 600)",
            m.mode() & 0o777
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        return Err(format!("owned by uid {}, not by this user ({me})", m.uid()));
    }
    Ok(())
}

/// Refuses a passphrase or password file that others can read (checked again on connect).
pub fn check_secret_file(path: &Path) -> Result<(), SshError> {
    owner_only(path).map_err(|message| SshError::SecretFile {
        path: path.display().to_string(),
        message,
    })
}

/// The first line of an owner-only secret file.
fn read_secret(path: &Path) -> Result<String, SshError> {
    let err = |message: String| SshError::SecretFile {
        path: path.display().to_string(),
        message,
    };
    owner_only(path).map_err(err)?;
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// An authenticated SSH connection.
pub struct SshConnection {
    handle: client::Handle<Verifier>,
    target: SshTarget,
}

/// What one command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOutput {
    /// Exit status (`None` if the channel closed without one).
    pub exit_status: Option<u32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl SshConnection {
    /// Connects, checks the host key, and authenticates with the operator's credentials.
    pub async fn connect(s: &SshSettings, target: &SshTarget) -> Result<SshConnection, SshError> {
        let text = match std::fs::read_to_string(&s.known_hosts) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(SshError::KnownHosts {
                    path: s.known_hosts.display().to_string(),
                    message: e.to_string(),
                })
            }
        };
        let known =
            KnownHosts::parse(&text).map_err(|e: KnownHostsError| SshError::KnownHosts {
                path: s.known_hosts.display().to_string(),
                message: e.to_string(),
            })?;
        // Key and secret files are checked before anything connects.
        let passphrase = match (&s.passphrase, &s.passphrase_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret(f)?),
            (None, None) => None,
        };
        let password = match (&s.password, &s.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret(f)?),
            (None, None) => None,
        };
        let mut keys = Vec::new();
        for path in &s.identity_files {
            check_key_file(path)?;
            let key = russh::keys::load_secret_key(path, passphrase.as_deref()).map_err(|e| {
                SshError::KeyFile {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
            keys.push(Arc::new(key));
        }
        let verdict = Arc::new(Mutex::new(None));
        let handler = Verifier {
            known,
            known_path: s.known_hosts.clone(),
            host: target.host.clone(),
            port: target.port,
            unknown: s.unknown_hosts,
            verdict: verdict.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(s.keepalive),
            keepalive_max: 3,
            nodelay: true,
            ..client::Config::default()
        });
        let connect_err = |message: String| SshError::Connect {
            host: target.host.clone(),
            port: target.port,
            message,
        };
        let connecting = client::connect(config, (target.host.as_str(), target.port), handler);
        let mut handle = match tokio::time::timeout(s.connect_timeout, connecting).await {
            Err(_) => {
                return Err(connect_err(format!(
                    "no answer within {:?}",
                    s.connect_timeout
                )))
            }
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                let judged = verdict.lock().ok().and_then(|mut v| v.take());
                return Err(match judged {
                    Some(v) if !v.is_trusted() => SshError::HostKey {
                        host: target.host.clone(),
                        port: target.port,
                        verdict: v,
                    },
                    _ => connect_err(e.to_string()),
                });
            }
        };
        let mut tried = Vec::new();
        for key in keys {
            tried.push(format!("publickey {}", key.algorithm().as_str()));
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| connect_err(e.to_string()))?
                .flatten();
            let r = handle
                .authenticate_publickey(&target.user, PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            if r.success() {
                return Ok(SshConnection {
                    handle,
                    target: target.clone(),
                });
            }
        }
        if let Some(sock) = &s.agent_socket {
            match russh::keys::agent::client::AgentClient::connect_uds(sock).await {
                Err(e) => tried.push(format!("ssh-agent at {} ({e})", sock.display())),
                Ok(mut agent) => {
                    let ids = agent.request_identities().await.unwrap_or_default();
                    if ids.is_empty() {
                        tried.push(format!("ssh-agent at {} (no keys)", sock.display()));
                    }
                    for id in ids {
                        let key = id.public_key().into_owned();
                        tried.push(format!("ssh-agent {}", key.algorithm().as_str()));
                        let hash = handle
                            .best_supported_rsa_hash()
                            .await
                            .map_err(|e| connect_err(e.to_string()))?
                            .flatten();
                        let r = handle
                            .authenticate_publickey_with(&target.user, key, hash, &mut agent)
                            .await;
                        if r.is_ok_and(|r| r.success()) {
                            return Ok(SshConnection {
                                handle,
                                target: target.clone(),
                            });
                        }
                    }
                }
            }
        }
        if let Some(pw) = &password {
            tried.push("password".into());
            let r = handle
                .authenticate_password(&target.user, pw)
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            if r.success() {
                return Ok(SshConnection {
                    handle,
                    target: target.clone(),
                });
            }
        }
        Err(SshError::Auth {
            user: target.user.clone(),
            tried: if tried.is_empty() {
                "nothing: no key files or password configured".into()
            } else {
                tried.join(", ")
            },
        })
    }

    /// Runs one command (no PTY) and collects its output and exit status. What the
    /// account's startup files print first (a banner) is cut off both streams.
    pub async fn run(&self, command: &str) -> Result<RemoteOutput, SshError> {
        self.run_with(command, None).await
    }

    /// Runs one command with `input` on its stdin (then end of file), like [`Self::run`].
    pub async fn run_with_input(
        &self,
        command: &str,
        input: &[u8],
    ) -> Result<RemoteOutput, SshError> {
        self.run_with(command, Some(input)).await
    }

    async fn run_with(
        &self,
        command: &str,
        input: Option<&[u8]>,
    ) -> Result<RemoteOutput, SshError> {
        let err = |e: String| self.connect_error(e);
        let mut ch = self.session_channel().await?;
        let (line, mut cut_out) =
            PreludeCut::wrap(command, true).map_err(|e| err(e.to_string()))?;
        let mut cut_err = cut_out.twin();
        ch.exec(true, line).await.map_err(|e| err(e.to_string()))?;
        if let Some(input) = input {
            ch.data(input).await.map_err(|e| err(e.to_string()))?;
            ch.eof().await.map_err(|e| err(e.to_string()))?;
        }
        let mut out = RemoteOutput {
            exit_status: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    out.stdout.extend(cut_out.push(&data).unwrap_or_default())
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    out.stderr.extend(cut_err.push(&data).unwrap_or_default())
                }
                ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Runs `command` in a channel of its own as a raw byte channel (the remote helper):
    /// its stdin, its stdout as it arrives, and the first bytes of its stderr.
    pub(crate) async fn open_raw(
        &self,
        command: &str,
    ) -> Result<crate::helper_link::RawChannel, SshError> {
        let err = |e: String| self.connect_error(e);
        let mut ch = self.session_channel().await?;
        ch.exec(true, command)
            .await
            .map_err(|e| err(e.to_string()))?;
        let input = ch.make_writer();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let stderr: Arc<Mutex<Vec<u8>>> = Arc::default();
        let errs = stderr.clone();
        tokio::spawn(async move {
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } if tx.send(data.to_vec()).await.is_err() => break,
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        if let Ok(mut e) = errs.lock() {
                            if e.len() < 8192 {
                                e.extend_from_slice(&data);
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
        Ok(crate::helper_link::RawChannel {
            input: Box::new(input),
            output: rx,
            stderr,
        })
    }

    /// Starts the persistent shell in its own channel (no PTY), feeding stdout and stderr
    /// to `tx` as separate streams.
    pub(crate) async fn open_shell(
        &self,
        tx: tokio::sync::mpsc::Sender<crate::stream::Chunk>,
        dialect: crate::frame::Dialect,
    ) -> Result<crate::stream::Streams, SshError> {
        use crate::stream::Chunk;
        let err = |e: String| self.connect_error(e);
        let mut ch = self.session_channel().await?;
        let (line, mut cut_out) = PreludeCut::wrap(&format!("exec {}", dialect.program()), true)
            .map_err(|e| err(e.to_string()))?;
        let mut cut_err = cut_out.twin();
        ch.exec(true, line).await.map_err(|e| err(e.to_string()))?;
        let input = ch.make_writer();
        let (exit_tx, exit_rx) = tokio::sync::watch::channel(None);
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lost_flag = lost.clone();
        tokio::spawn(async move {
            let mut code = None;
            let mut ended = false;
            while let Some(msg) = ch.wait().await {
                let chunk = match msg {
                    ChannelMsg::Data { data } => cut_out.push(&data).map(|d| (false, d)),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        cut_err.push(&data).map(|d| (true, d))
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        code = i32::try_from(exit_status).ok();
                        ended = true;
                        None
                    }
                    ChannelMsg::ExitSignal { .. } => {
                        code = Some(128 + libc::SIGKILL);
                        ended = true;
                        None
                    }
                    _ => None,
                };
                if let Some((is_err, data)) = chunk {
                    if tx
                        .send(Chunk {
                            gen: 0,
                            err: is_err,
                            data: Some(data),
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
            if !ended {
                lost_flag.store(true, std::sync::atomic::Ordering::SeqCst);
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
            let _ = exit_tx.send(Some(code));
        });
        Ok(crate::stream::Streams {
            input: Box::new(input),
            exit: exit_rx,
            lost,
        })
    }

    /// Runs `command` in a channel of its own and forwards its stdout to `sink` (one
    /// stream of a rotated shell's output). Returns once the command has started.
    pub(crate) async fn stream(
        &self,
        command: &str,
        sink: crate::stream::StreamSink,
    ) -> Result<(), SshError> {
        let err = |e: String| self.connect_error(e);
        let mut ch = self.session_channel().await?;
        let (line, mut cut) = PreludeCut::wrap(command, false).map_err(|e| err(e.to_string()))?;
        ch.exec(true, line).await.map_err(|e| err(e.to_string()))?;
        tokio::spawn(async move {
            while let Some(msg) = ch.wait().await {
                if let ChannelMsg::Data { data } = msg {
                    let Some(data) = cut.push(&data) else {
                        continue;
                    };
                    if !sink.send(data).await {
                        return;
                    }
                }
            }
            sink.end().await;
        });
        Ok(())
    }

    /// A connection error naming this target.
    fn connect_error(&self, message: String) -> SshError {
        SshError::Connect {
            host: self.target.host.clone(),
            port: self.target.port,
            message,
        }
    }

    /// A new session channel on the connection.
    async fn session_channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        self.handle
            .channel_open_session()
            .await
            .map_err(|e| self.connect_error(e.to_string()))
    }

    /// True once the connection has dropped (or was closed).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Says goodbye.
    pub async fn close(self) {
        self.disconnect().await;
    }

    /// Says goodbye (the connection may still be shared).
    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Cuts off what the remote account's startup files print before a command's own output
/// (a banner, `echo` in `~/.bashrc`): the command is prefixed with a marker line printed
/// first, and everything up to it is dropped. Past [`PreludeCut::LIMIT`] bytes without
/// the marker, the prelude is passed on (the marker was lost, nothing is withheld).
pub(crate) struct PreludeCut {
    needle: Vec<u8>,
    held: Vec<u8>,
    done: bool,
}

impl PreludeCut {
    const LIMIT: usize = 256 * 1024;

    /// `command` with a marker printed before it (on stderr too with `both`), and the cut
    /// for its stdout.
    pub(crate) fn wrap(command: &str, both: bool) -> std::io::Result<(String, PreludeCut)> {
        let nonce = crate::frame::random_hex(8)?;
        let mut line = format!("printf '\\037EKS%s\\n' {nonce}; ");
        if both {
            line.push_str(&format!("printf '\\037EKS%s\\n' {nonce} >&2; "));
        }
        line.push_str(command);
        Ok((
            line,
            PreludeCut {
                needle: format!("\x1fEKS{nonce}\n").into_bytes(),
                held: Vec::new(),
                done: false,
            },
        ))
    }

    /// A cut for the same marker on another stream.
    pub(crate) fn twin(&self) -> PreludeCut {
        PreludeCut {
            needle: self.needle.clone(),
            held: Vec::new(),
            done: false,
        }
    }

    /// The bytes of `data` that are the command's own (`None`: still in the prelude).
    pub(crate) fn push(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if self.done {
            return Some(data.to_vec());
        }
        self.held.extend_from_slice(data);
        if let Some(at) = memchr::memmem::find(&self.held, &self.needle) {
            self.done = true;
            let rest = self.held.split_off(at + self.needle.len());
            self.held = Vec::new();
            return (!rest.is_empty()).then_some(rest);
        }
        if self.held.len() > Self::LIMIT {
            self.done = true;
            return Some(std::mem::take(&mut self.held));
        }
        None
    }
}

#[cfg(test)]
mod prelude_tests {
    use super::PreludeCut;

    #[test]
    fn the_prelude_is_cut_in_any_split() {
        let (line, cut) = PreludeCut::wrap("exec cat", false).unwrap();
        assert!(line.starts_with("printf '\\037EKS%s\\n' ") && line.ends_with("; exec cat"));
        let mut text = b"Welcome to host\n".to_vec();
        text.extend_from_slice(&cut.needle);
        text.extend_from_slice(b"own output\n");
        for step in 1..text.len() {
            let mut c = cut.twin();
            let mut got = Vec::new();
            for chunk in text.chunks(step) {
                if let Some(d) = c.push(chunk) {
                    got.extend(d);
                }
            }
            assert_eq!(got, b"own output\n", "step {step}");
        }
    }
}
