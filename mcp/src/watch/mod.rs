//! `execkit watch --audit FILE`: a read-only terminal view of what agents are doing,
//! following the audit log a server (or `execkit session --audit`) writes.
//!
//! Why the audit log: it is the one record every session already writes, redacted before
//! it is written and hash-chained, and reading a file cannot change anything the agent or
//! the server does: the viewer is read-only by construction and needs no access to the
//! server. It works over SSH (a terminal is all it needs) and with the keyboard only.
//!
//! Layout: sessions on the left (with their denial counts), the selected session's
//! history on the right (verdict, exit code or elapsed time while it runs, the command),
//! and under it the selected entry's facts with their determining policies and reasons.
//! Denials are red, asks yellow. Keys: ↑/↓ (k/j) select, Tab switches between the session
//! list and the history, End (G) follows the newest entry again, d shows denials only,
//! q or Esc quits.
//!
//! `--socket PATH` follows a running `execkit-mcp` through its owner-only watch socket
//! instead of a file (`[watch] socket` in the server's config); there a running command
//! also shows its output so far (the server's live `progress` lines, protected as the
//! result will be). `--http 127.0.0.1:PORT`
//! serves an audit log as a web page instead of the terminal view (see `web`).

mod model;
mod tail;
mod web;

pub use model::{Entry, EntryKind, Finished, Model, SessionView};
pub use tail::Tail;

use anyhow::Context as _;
use execkit_audit::Verdict;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// `execkit watch`.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// The audit log to follow (JSON Lines, as `execkit-mcp` or `execkit session --audit`
    /// write it). It need not exist yet.
    #[arg(long, value_name = "FILE", required_unless_present = "socket")]
    audit: Option<PathBuf>,
    /// A running `execkit-mcp`'s watch socket (`[watch] socket` in its config).
    #[arg(long, value_name = "PATH", conflicts_with = "audit")]
    socket: Option<PathBuf>,
    /// Serve a read-only web page instead (loopback only; prints its URL with a random
    /// access token that every request needs).
    #[arg(long, value_name = "127.0.0.1:PORT")]
    http: Option<std::net::SocketAddr>,
    /// Keep the web page's access token in this file (created owner-only when missing,
    /// reused after): the page's URL survives restarts and an open tab reconnects. The
    /// token can also come from `EXECKIT_WATCH_TOKEN` (at least 32 characters).
    #[arg(long, value_name = "FILE", requires = "http")]
    token_file: Option<PathBuf>,
}

/// Where the records come from.
pub(crate) enum Source {
    /// A growing audit log.
    File(Tail),
    /// A server's watch socket, read by a thread (lines arrive on the channel; it closes
    /// when the server goes away).
    Socket(std::sync::mpsc::Receiver<String>, bool),
}

impl Source {
    fn socket(path: &std::path::Path) -> anyhow::Result<Source> {
        let stream = std::os::unix::net::UnixStream::connect(path)
            .with_context(|| format!("cannot connect to the watch socket {}", path.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Source::Socket(rx, true))
    }

    pub(crate) fn poll(&mut self) -> std::io::Result<tail::Polled> {
        match self {
            Source::File(t) => t.poll(),
            Source::Socket(rx, connected) => {
                let mut out = tail::Polled::default();
                loop {
                    match rx.try_recv() {
                        Ok(l) => out.lines.push(l),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                            *connected = false;
                            break;
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// The file exists / the server is still connected.
    fn live(&self) -> bool {
        match self {
            Source::File(t) => t.exists(),
            Source::Socket(_, c) => *c,
        }
    }
}

/// Which pane the arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pane {
    Sessions,
    History,
}

/// What the user selected.
struct View {
    pane: Pane,
    session: usize,
    /// `None`: follow the newest entry.
    entry: Option<usize>,
    denials_only: bool,
}

fn verdict_style(v: Verdict) -> (&'static str, Style) {
    match v {
        Verdict::Allow => ("ALLOW", Style::default().fg(Color::Green)),
        Verdict::Ask => (
            "ASK",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        _ => (
            "DENY",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    }
}

fn fmt_ms(ms: u128) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The status column of an entry: the exit code and time, `running 3.2s`, or why it
/// never ran.
fn status(e: &Entry, now: SystemTime) -> String {
    if e.kind == EntryKind::Approval {
        return String::new();
    }
    if !e.ran() {
        return if e.verdict == Verdict::Ask {
            "not approved".into()
        } else {
            "refused".into()
        };
    }
    if e.kind == EntryKind::Checkpoint {
        return String::new();
    }
    if e.kind == EntryKind::Program {
        return "started".into();
    }
    match &e.finished {
        Some(f) => {
            let code = match (f.timed_out, f.cancelled, f.exit_code) {
                (true, _, _) => "timeout".to_string(),
                (_, true, _) => "cancelled".to_string(),
                (_, _, Some(c)) => format!("exit {c}"),
                _ => "killed".to_string(),
            };
            format!("{code} {}", fmt_ms(u128::from(f.duration_ms)))
        }
        None => format!(
            "running {}",
            e.elapsed(now)
                .map(|d| fmt_ms(d.as_millis()))
                .unwrap_or_default()
        ),
    }
}

fn visible(s: &SessionView, denials_only: bool) -> Vec<&Entry> {
    s.entries
        .iter()
        .filter(|e| !denials_only || !e.ran() || e.refused_programs() > 0)
        .collect()
}

fn draw(f: &mut Frame, m: &Model, v: &View, file: &str, waiting: bool) {
    let now = SystemTime::now();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(1), Constraint::Min(3)])
        .split(f.area());
    let header = format!(
        " execkit watch  {file}  {} sessions, {} records{}{}   q quit  ↑↓ select  Tab pane  End follow  d denials only",
        m.sessions.len(),
        m.records,
        if waiting { "  (waiting for the file / server gone)" } else { "" },
        if v.denials_only { "  [denials only]" } else { "" },
    );
    f.render_widget(
        Paragraph::new(header).style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[0],
    );
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(28), Constraint::Percentage(72)])
        .split(rows[1]);
    let focus = |p: Pane| {
        if v.pane == p {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default()
        }
    };
    let sessions: Vec<ListItem> = m
        .sessions
        .iter()
        .map(|s| {
            let d = s.denials();
            let mut spans = vec![Span::raw(format!(
                "{} {} {} cmds{}",
                s.id,
                s.who.transport,
                s.entries.len(),
                if s.closed { " closed" } else { "" }
            ))];
            if d > 0 {
                spans.push(Span::styled(
                    format!(" {d} denied"),
                    Style::default().fg(Color::Red),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut sstate = ListState::default();
    if !m.sessions.is_empty() {
        sstate.select(Some(v.session));
    }
    f.render_stateful_widget(
        List::new(sessions)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title("sessions")
                    .border_style(focus(Pane::Sessions)),
            )
            .highlight_symbol("> ")
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        cols[0],
        &mut sstate,
    );
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(60), Constraint::Percentage(40)])
        .split(cols[1]);
    let Some(s) = m.sessions.get(v.session) else {
        f.render_widget(
            Paragraph::new("no sessions yet").block(Block::default().borders(Borders::ALL)),
            right[0],
        );
        return;
    };
    let entries = visible(s, v.denials_only);
    let selected = v
        .entry
        .unwrap_or(entries.len().saturating_sub(1))
        .min(entries.len().saturating_sub(1));
    let items: Vec<ListItem> = entries
        .iter()
        .map(|e| {
            let (word, style) = verdict_style(e.verdict);
            let word = match e.kind {
                EntryKind::Process => "BG",
                EntryKind::Checkpoint => "CKPT",
                EntryKind::Approval => "APPR",
                EntryKind::Program => "PROG",
                EntryKind::Command => word,
            };
            let mut spans = vec![
                Span::styled(format!("{word:<5}"), style),
                Span::raw(format!(" {:<16} ", status(e, now))),
                Span::raw(e.text.replace('\n', "⏎")),
            ];
            if e.kind == EntryKind::Command && !e.programs.is_empty() {
                spans.push(Span::styled(
                    format!("  · {} started", e.programs.len()),
                    Style::default().fg(Color::DarkGray),
                ));
            }
            let refused = e.refused_programs();
            if refused > 0 && e.kind == EntryKind::Command {
                spans.push(Span::styled(
                    format!(", {refused} refused at start"),
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut hstate = ListState::default();
    if !entries.is_empty() {
        hstate.select(Some(selected));
    }
    let title = format!(
        "session {} — {} {} {}",
        s.id, s.who.agent, s.who.transport, s.who.target
    );
    f.render_stateful_widget(
        List::new(items)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .border_style(focus(Pane::History)),
            )
            .highlight_symbol("> ")
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        right[0],
        &mut hstate,
    );
    let mut lines: Vec<Line> = Vec::new();
    if let Some(e) = entries.get(selected) {
        let (word, style) = verdict_style(e.verdict);
        lines.push(Line::from(vec![
            Span::styled(word, style),
            Span::raw(format!("  $ {}", e.text)),
        ]));
        if !e.cwd.is_empty() {
            lines.push(Line::from(format!("cwd {}", e.cwd)));
        }
        if let Some(a) = &e.approved_by {
            lines.push(Line::from(format!("approved by {a}")));
        }
        if let Some(p) = &e.parse_error {
            lines.push(Line::from(Span::styled(
                format!("parse error: {p}"),
                Style::default().fg(Color::Red),
            )));
        }
        if let (None, Some(live)) = (&e.finished, &e.live) {
            lines.push(Line::from(format!(
                "output so far: {} bytes stdout, {} bytes stderr",
                live.stdout_bytes, live.stderr_bytes
            )));
            for l in last_lines(&live.stdout_tail, LIVE_LINES) {
                lines.push(Line::from(format!("  {l}")));
            }
            for l in last_lines(&live.stderr_tail, LIVE_LINES) {
                lines.push(Line::from(Span::styled(
                    format!("  {l}"),
                    Style::default().fg(Color::Yellow),
                )));
            }
        }
        if let Some(fin) = &e.finished {
            lines.push(Line::from(format!(
                "{}  {} bytes of output, {} redactions",
                status(e, now),
                fin.bytes,
                fin.redactions
            )));
        }
        if let Some(out) = &e.output {
            lines.push(Line::from("output (as the agent got it):"));
            for l in out.stdout.lines().take(OUTPUT_LINES) {
                lines.push(Line::from(format!("  {l}")));
            }
            for l in out.stderr.lines().take(OUTPUT_LINES) {
                lines.push(Line::from(Span::styled(
                    format!("  {l}"),
                    Style::default().fg(Color::Yellow),
                )));
            }
        }
        for fact in &e.facts {
            let (w, st) = verdict_style(fact.verdict);
            lines.push(Line::from(vec![
                Span::styled(format!("{w:<5}"), st),
                Span::raw(format!(
                    " {} {}  [{}]  {}",
                    fact.action,
                    fact.resource,
                    fact.policies.join(", "),
                    fact.reason
                )),
            ]));
            if let Some(a) = &fact.advice {
                lines.push(Line::from(Span::styled(
                    format!("      advice: {a}"),
                    Style::default().fg(Color::Cyan),
                )));
            }
        }
    }
    if let Some(e) = entries.get(selected) {
        program_tree(&mut lines, e);
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title("decision")),
        right[1],
    );
}

/// Programs shown in a command's tree at most (every refused one is shown).
const TREE_PROGRAMS: usize = 40;

/// The programs a command started, as a tree under it: each with its verdict, the
/// refused ones in red with their parents and why.
fn program_tree(lines: &mut Vec<Line>, e: &Entry) {
    if e.programs.is_empty() {
        return;
    }
    lines.push(Line::from(format!(
        "programs started: {}, refused at their start: {}",
        e.programs.len(),
        e.refused_programs()
    )));
    let allowed_budget = TREE_PROGRAMS.saturating_sub(e.refused_programs());
    let mut allowed_shown = 0;
    let mut hidden = 0;
    let n = e.programs.len();
    for (i, p) in e.programs.iter().enumerate() {
        if p.ran() {
            if allowed_shown == allowed_budget {
                hidden += 1;
                continue;
            }
            allowed_shown += 1;
        }
        let branch = if i + 1 == n { "└─" } else { "├─" };
        let (w, st) = verdict_style(p.verdict);
        let (w, st) = if p.ran() {
            (w, Style::default().fg(Color::Green))
        } else {
            (w, st)
        };
        lines.push(Line::from(vec![
            Span::raw(format!(" {branch} ")),
            Span::styled(format!("{w:<5}"), st),
            Span::styled(
                format!(" {}", p.text),
                if p.ran() {
                    Style::default()
                } else {
                    Style::default().fg(Color::Red)
                },
            ),
        ]));
        if !p.ran() {
            let red = Style::default().fg(Color::Red);
            if !p.parents.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("    started by {}", p.parents.join(" ← ")),
                    red,
                )));
            }
            for f in p.facts.iter().filter(|f| f.verdict != Verdict::Allow) {
                lines.push(Line::from(Span::styled(
                    format!(
                        "    {} {}  [{}]  {}",
                        f.action,
                        f.resource,
                        f.policies.join(", "),
                        f.reason
                    ),
                    red,
                )));
            }
        }
    }
    if hidden > 0 {
        lines.push(Line::from(format!(" … and {hidden} more allowed")));
    }
}

/// Lines of each stream shown of a finished command's transcript.
const OUTPUT_LINES: usize = 12;

/// Lines of each stream shown of a running command's output so far.
const LIVE_LINES: usize = 8;

/// The last `n` lines of `text`, oldest first.
fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..].to_vec()
}

/// Moves the selection for one key; returns false to quit.
fn key(code: KeyCode, m: &Model, v: &mut View) -> bool {
    let count = m
        .sessions
        .get(v.session)
        .map(|s| visible(s, v.denials_only).len())
        .unwrap_or(0);
    let current = v.entry.unwrap_or(count.saturating_sub(1));
    match code {
        KeyCode::Char('q') | KeyCode::Esc => return false,
        KeyCode::Tab | KeyCode::Left | KeyCode::Right => {
            v.pane = match v.pane {
                Pane::Sessions => Pane::History,
                Pane::History => Pane::Sessions,
            }
        }
        KeyCode::Char('d') => {
            v.denials_only = !v.denials_only;
            v.entry = None;
        }
        KeyCode::End | KeyCode::Char('G') => v.entry = None,
        KeyCode::Up | KeyCode::Char('k') => match v.pane {
            Pane::Sessions => {
                v.session = v.session.saturating_sub(1);
                v.entry = None;
            }
            Pane::History => v.entry = Some(current.saturating_sub(1)),
        },
        KeyCode::Down | KeyCode::Char('j') => match v.pane {
            Pane::Sessions => {
                v.session = (v.session + 1).min(m.sessions.len().saturating_sub(1));
                v.entry = None;
            }
            Pane::History => {
                let next = current + 1;
                v.entry = if next + 1 >= count { None } else { Some(next) };
            }
        },
        _ => {}
    }
    true
}

/// `execkit watch`.
pub fn run(a: WatchArgs) -> anyhow::Result<ExitCode> {
    let (mut source, file) = match (&a.audit, &a.socket) {
        (Some(f), _) => (Source::File(Tail::new(f)), f.display().to_string()),
        (None, Some(p)) => (Source::socket(p)?, p.display().to_string()),
        (None, None) => anyhow::bail!("give --audit FILE or --socket PATH"),
    };
    if let Some(addr) = a.http {
        let token = web::token(a.token_file.as_deref())?;
        web::serve(source, &file, addr, token)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut model = Model::default();
    let mut view = View {
        pane: Pane::History,
        session: 0,
        entry: None,
        denials_only: false,
    };
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let result = (|| -> anyhow::Result<()> {
        loop {
            let polled = source.poll().with_context(|| format!("reading {file}"))?;
            if polled.restarted {
                model = Model::default();
            }
            for l in &polled.lines {
                model.ingest(l);
            }
            let waiting = !source.live();
            terminal.draw(|f| draw(f, &model, &view, &file, waiting))?;
            if event::poll(Duration::from_millis(250))? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press && !key(k.code, &model, &mut view) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}
