//! Signals that reach a process group while bash forks a command, and miss it.
//!
//! bash forks with SIGINT and SIGTERM blocked, unblocks them in the child *before* it
//! resets the parent's handlers, and only then execs. A signal sent to the group in that
//! moment is either taken by the parent's handler in the child (the trap is pending in a
//! process that is about to exec, so it is lost) or arrives while the parent still has it
//! blocked (the parent acts on it later; the child was forked without it). Either way the
//! program runs on as if nothing was sent: `sleep 30` outlives the INT that should have
//! ended it, and the shell around it waits for it. bash offers no way to close this from
//! shell code, and it is exactly when a signal sent right after a start lands.
//!
//! So after a signal whose default action ends a process, we look again: a member of the
//! group that already existed when the signal was sent (by its start time, in clock ticks)
//! and is still alive, with the signal at its default action (not caught, ignored, blocked
//! or pending), cannot have received it — that signal would have ended it. It gets the
//! signal again, alone. A process that handles the signal is never signalled twice; one
//! forked *after* the send by a handler is spared unless it started within the same clock
//! tick (10 ms), the one imprecision left.
//!
//! The looks are one series per group and signal ([`Looks`]): a send while its signal's
//! series runs only moves the series on, so a flood of sends (an agent signalling a program
//! that catches INT in a loop) costs the host the scans of one send, not of every send.

use super::ProcessSignal;
use crate::remote::Control;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// When the group is looked at again, after the send: the child of a fork in flight has
/// normally exec'd by the first look; the later ones cover a loaded machine.
const LOOKS: [Duration; 3] = [
    Duration::from_millis(30),
    Duration::from_millis(120),
    Duration::from_millis(400),
];

/// True for the signals a process dies of unless it does something about them: the ones
/// a fork in flight can make it miss. STOP and CONT are left alone.
pub(crate) fn ends_by_default(sig: ProcessSignal) -> bool {
    !matches!(sig, ProcessSignal::Stop | ProcessSignal::Cont)
}

/// The bit of `sig` in a `/proc/PID/status` signal mask.
fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Members of group `pgid` that started no later than tick `sent` and still have `sig`
/// at its default action: they missed it.
fn missed_here(pgid: i32, sig: i32, sent: u64) -> Vec<i32> {
    crate::procs::all()
        .into_iter()
        .filter(|s| s.pgid == pgid && s.state != 'Z' && s.start <= sent)
        .filter(|s| {
            crate::procs::signals_not_default(s.pid).is_some_and(|mask| mask & bit(sig) == 0)
        })
        .map(|s| s.pid)
        .collect()
}

/// Sends `sig` to group `pgid` on this machine, then sends it again to the members that
/// missed it (in the background; the caller does not wait for the looks).
pub(crate) fn deliver_here(looks: &Looks, pgid: i32, sig: ProcessSignal) {
    let number = sig.number();
    crate::procs::signal_group(pgid, number);
    if !ends_by_default(sig) {
        return;
    }
    let Some(sent) = crate::procs::boot_ticks_now() else {
        return;
    };
    looks.schedule(number, sent, move |sent| async move {
        let missed = tokio::task::spawn_blocking(move || missed_here(pgid, number, sent))
            .await
            .unwrap_or_default();
        for pid in missed {
            crate::procs::signal(pid, number);
        }
    });
}

/// The looks scheduled for one process group: at most one series of [`LOOKS`] per signal.
///
/// Why: each look scans every process of the host (remotely a shell loop over `/proc`
/// through the control channel, which other requests wait behind; about a second of the
/// host's CPU where thousands of processes run). Were three scheduled for every send, an
/// agent sending INT in a loop to a program that catches it would multiply them by its
/// sends. So a send while its signal's series runs is recorded (the newest send's tick, a
/// count of sends) and the series goes on: each look reads the newest tick, so it covers every send
/// before it, and a series that saw a send after its first look runs once more, so the
/// last send of a burst still gets looks at least 90 and 370 ms after it (the first look's
/// 30 ms after a send covers a fork in flight; the later ones a loaded machine).
#[derive(Clone, Default)]
pub(crate) struct Looks(Arc<Mutex<HashMap<i32, Series>>>);

/// One signal's series: the newest send's tick and how many sends were recorded.
struct Series {
    sent: u64,
    sends: u64,
}

impl Looks {
    /// Records a send of signal `sig` at tick `sent`; unless a series for `sig` runs,
    /// starts one that calls `scan` with the newest tick at each of [`LOOKS`].
    fn schedule<F, Fut>(&self, sig: i32, sent: u64, scan: F)
    where
        F: Fn(u64) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        {
            let mut series = self.lock();
            if let Some(s) = series.get_mut(&sig) {
                s.sent = s.sent.max(sent);
                s.sends += 1;
                return;
            }
            series.insert(sig, Series { sent, sends: 1 });
        }
        let looks = self.clone();
        tokio::spawn(async move {
            loop {
                let mut covered = 0;
                let mut waited = Duration::ZERO;
                for (i, at) in LOOKS.into_iter().enumerate() {
                    tokio::time::sleep(at - waited).await;
                    waited = at;
                    let Some((sent, sends)) = looks.lock().get(&sig).map(|s| (s.sent, s.sends))
                    else {
                        return;
                    };
                    if i == 0 {
                        covered = sends;
                    }
                    scan(sent).await;
                }
                // Ends unless a send came after this series' first look (under the same
                // lock as `schedule`'s check: no send is left without its looks).
                let mut series = looks.lock();
                if series.get(&sig).is_none_or(|s| s.sends == covered) {
                    series.remove(&sig);
                    return;
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Series>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The shell code that sends `sig` to group `pgid` on a remote host and prints the
/// host's boot-time clock in ticks (`/proc/uptime` in hundredths, which is what
/// `/proc/PID/stat` counts start times in).
fn remote_send(pgid: i32, sig: i32) -> String {
    // No `--`: dash's kill does not take it; `-N -PGID` means the same to both.
    format!(
        "kill -{sig} -{pgid} 2>/dev/null; read -r u _ < /proc/uptime 2>/dev/null && echo \"${{u%.*}}${{u#*.}}\""
    )
}

/// The shell code that sends `sig` again to the members of group `pgid` on a remote host
/// that started no later than tick `sent` and still have it at its default action.
fn remote_resend(pgid: i32, sig: i32, sent: u64) -> String {
    // The low 32 bits of each mask (its last 8 hex digits) hold every signal we send, and
    // keep the arithmetic inside a signed 64-bit shell integer.
    format!(
        "for d in /proc/[0-9]*; do read -r l 2>/dev/null < $d/stat || continue; l=${{l##*) }}; set -- $l; \
[ \"$3\" = {pgid} ] && [ \"$1\" != Z ] || continue; shift 19; [ \"$1\" -le {sent} ] || continue; m=0; \
while read -r k v; do case $k in SigCgt:|SigIgn:|SigBlk:|SigPnd:|ShdPnd:) m=$(( m | 0x${{v#????????}} ));; esac; done 2>/dev/null < $d/status; \
[ $(( (m >> {shift}) & 1 )) = 0 ] && kill -{sig} ${{d#/proc/}} 2>/dev/null; done; true",
        shift = sig - 1,
    )
}

/// Sends `sig` to group `pgid` through a remote control channel, then sends it again to
/// the members that missed it (in the background).
pub(crate) async fn deliver_remote(
    looks: &Looks,
    control: &Control,
    pgid: i32,
    sig: ProcessSignal,
) {
    let number = sig.number();
    let out = control.run(&remote_send(pgid, number)).await;
    if !ends_by_default(sig) {
        return;
    }
    let Some(sent) = out.and_then(|(_, text)| text.trim().parse::<u64>().ok()) else {
        return;
    };
    let control = control.clone();
    looks.schedule(number, sent, move |sent| {
        let control = control.clone();
        async move {
            let _ = control.run(&remote_resend(pgid, number, sent)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stop_and_cont_are_left_alone() {
        let left: Vec<_> = ProcessSignal::ALL
            .into_iter()
            .filter(|s| !ends_by_default(*s))
            .collect();
        assert_eq!(left, [ProcessSignal::Stop, ProcessSignal::Cont]);
    }

    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command};

    /// A 30 s sleep in group `pgid` (0: a new group of its own); with `catch_int` it
    /// catches SIGINT and exits 7 on it.
    fn sleeper(pgid: i32, catch_int: bool) -> Child {
        let script = if catch_int {
            "exec python3 -c 'import signal,time; signal.signal(signal.SIGINT, lambda *a: exit(7)); time.sleep(30)'"
        } else {
            "exec sleep 30"
        };
        Command::new("sh")
            .args(["-c", script])
            .process_group(pgid)
            .spawn()
            .unwrap()
    }

    /// Waits up to 5 s for `child` to end; its signal, or `None` while it still runs.
    fn ended_by(child: &mut Child) -> Option<i32> {
        for _ in 0..500 {
            if let Some(status) = child.try_wait().unwrap() {
                return status.signal();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// A group in which SIGINT was "sent" at tick `sent` but reached nobody: a member
    /// with INT at its default (it missed it), one that catches it (it would have handled
    /// it: it must not get a second one), and one started after; and a process outside the
    /// group. `resend` looks again; only the first may be ended, by INT.
    fn only_the_member_that_missed_it_is_ended(resend: impl Fn(i32, u64)) {
        let mut missed = sleeper(0, false);
        let pgid = missed.id() as i32;
        let mut catching = sleeper(pgid, true);
        // Outside the group, INT at its default, started before the send: never touched.
        let mut outsider = sleeper(0, false);
        std::thread::sleep(Duration::from_millis(300));
        let sent = crate::procs::boot_ticks_now().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let mut later = sleeper(pgid, false);
        std::thread::sleep(Duration::from_millis(100));
        resend(pgid, sent);
        assert_eq!(ended_by(&mut missed), Some(libc::SIGINT));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            catching.try_wait().unwrap().is_none(),
            "the catching member ended"
        );
        assert!(
            later.try_wait().unwrap().is_none(),
            "the later member ended"
        );
        assert!(
            outsider.try_wait().unwrap().is_none(),
            "a process outside the group ended"
        );
        crate::procs::signal_group(pgid, libc::SIGKILL);
        let _ = outsider.kill();
        let _ = (catching.wait(), later.wait(), outsider.wait());
    }

    #[test]
    fn here_only_the_member_that_missed_it_is_signalled_again() {
        only_the_member_that_missed_it_is_ended(|pgid, sent| {
            for pid in missed_here(pgid, libc::SIGINT, sent) {
                crate::procs::signal(pid, libc::SIGINT);
            }
        });
    }

    /// The remote code under a real POSIX shell (dash), as a control channel runs it.
    #[test]
    fn remotely_only_the_member_that_missed_it_is_signalled_again() {
        only_the_member_that_missed_it_is_ended(|pgid, sent| {
            let out = Command::new("sh")
                .args(["-c", &remote_resend(pgid, libc::SIGINT, sent)])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        });
    }

    /// The scans `looks` made for sends of SIGINT at the ticks in `bursts` (each `(first,
    /// end)` sent at once, the next `gap` later), with time paused: the ticks each scan read.
    async fn scans_for(bursts: &[(u64, u64)], gap: Duration) -> Vec<u64> {
        let looks = Looks::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for &(first, end) in bursts {
            for sent in first..end {
                let seen = Arc::clone(&seen);
                looks.schedule(libc::SIGINT, sent, move |tick| {
                    let seen = Arc::clone(&seen);
                    async move { seen.lock().unwrap().push(tick) }
                });
            }
            tokio::time::sleep(gap).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(looks.lock().is_empty(), "a series outlived its looks");
        let seen = seen.lock().unwrap().clone();
        seen
    }

    /// A flood of sends is looked at as one send: three scans, each with the newest tick
    /// (three looks per send would make 200 sends 600 scans of every process).
    #[tokio::test(start_paused = true)]
    async fn a_flood_of_sends_is_scanned_as_one_send() {
        assert_eq!(
            scans_for(&[(0, 200)], Duration::ZERO).await,
            [199, 199, 199]
        );
    }

    /// Sends after a series' first look get a series of their own after it, so the last
    /// send of a burst is still looked at 90 and 370 ms after it, with its tick.
    #[tokio::test(start_paused = true)]
    async fn sends_after_the_first_look_get_looks_of_their_own() {
        let seen = scans_for(&[(0, 10), (10, 20)], Duration::from_millis(50)).await;
        assert_eq!(seen, [9, 19, 19, 19, 19, 19]);
        // A burst before the first look is covered by the series it joined.
        let seen = scans_for(&[(0, 10), (10, 20)], Duration::from_millis(20)).await;
        assert_eq!(seen, [19, 19, 19]);
    }

    #[test]
    fn the_remote_send_signals_the_group_and_says_when() {
        let mut child = sleeper(0, false);
        let pgid = child.id() as i32;
        std::thread::sleep(Duration::from_millis(50));
        let out = Command::new("sh")
            .args(["-c", &remote_send(pgid, libc::SIGTERM)])
            .output()
            .unwrap();
        let now = crate::procs::boot_ticks_now().unwrap();
        let said: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(said <= now && now - said < 100, "{said} vs {now}");
        assert_eq!(ended_by(&mut child), Some(libc::SIGTERM));
    }
}
