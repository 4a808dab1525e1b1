//! Resource limits for a remote shell: no cgroup of ours exists on an SSH host or inside
//! somebody else's container, so the operator's limits become hard rlimits set by the
//! shell on itself before the first command (`ulimit` without `-S` lowers soft and hard
//! limits, which a non-root account cannot raise again), and the limits the remote kernel
//! then reports for the shell are what the session says is enforced.
//!
//! `RLIMIT_NPROC` counts every process of the remote user, not only the session's, and the
//! note says so. Memory is not limited this way: `RLIMIT_AS` per process breaks runtimes
//! that reserve large address ranges (JVMs, V8, Go), and locally it is only the fallback
//! where no memory cgroup exists; a Docker target has the container's memory limit.

use crate::config::Resources;
use crate::frame::Dialect;
use crate::sandbox::ResourceReport;

/// The shell code that applies `wanted` (one `ulimit` per limit; a limit the account cannot
/// lower to is left alone, and the read-back shows it).
pub(crate) fn ulimit_line(wanted: &Resources, dialect: Dialect) -> String {
    // bash counts -f in 1024-byte blocks and names processes -u; dash counts 512-byte
    // blocks and names them -p.
    let (block, procs) = match dialect {
        Dialect::Bash => (1024, "-u"),
        Dialect::Posix => (512, "-p"),
    };
    let mut parts = Vec::new();
    if let Some(n) = wanted.open_files {
        parts.push(format!("ulimit -n {n}"));
    }
    if let Some(b) = wanted.file_bytes {
        parts.push(format!("ulimit -f {}", b.div_ceil(block)));
    }
    if let Some(n) = wanted.processes {
        parts.push(format!("ulimit {procs} {n}"));
    }
    parts
        .iter()
        .map(|p| format!("{p} 2>/dev/null;"))
        .collect::<Vec<_>>()
        .join(" ")
        + "\n"
}

/// What `/proc/PID/limits` says is enforced (hard limits), with notes for what is not.
pub(crate) fn report(limits: &str, wanted: &Resources) -> (ResourceReport, Vec<String>) {
    let hard = |name: &str| -> Option<u64> {
        let line = limits.lines().find(|l| l.starts_with(name))?;
        let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
        // Soft, hard, unit.
        fields.get(1)?.parse().ok()
    };
    let mut r = ResourceReport {
        open_files: hard("Max open files"),
        file_bytes: hard("Max file size"),
        processes: hard("Max processes"),
        ..ResourceReport::default()
    };
    let mut notes = Vec::new();
    let pairs = [
        ("open files", wanted.open_files, &mut r.open_files),
        ("file size", wanted.file_bytes, &mut r.file_bytes),
        ("processes", wanted.processes, &mut r.processes),
    ];
    for (what, want, got) in pairs {
        match (want, *got) {
            (Some(w), Some(g)) if g <= w => {}
            (Some(w), g) => notes.push(format!(
                "remote {what} limit {w} not enforced (the shell's hard limit is {})",
                g.map_or("unlimited".into(), |g| g.to_string())
            )),
            // Not asked for: the remote default stands; report only what was asked.
            (None, _) => *got = None,
        }
    }
    if wanted.processes.is_some() && r.processes.is_some() {
        notes.push(
            "the remote process limit (RLIMIT_NPROC) counts every process of the remote user"
                .into(),
        );
    }
    if wanted.cpu_percent.is_some() {
        notes.push("no CPU quota on a remote target (no cgroup of ours there)".into());
    }
    if let Some(b) = wanted.memory_bytes {
        notes.push(format!(
            "memory limit {} not enforced by execkit on a remote target (a Docker container has its own)",
            crate::ByteSize(b)
        ));
    }
    (r, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             4294967296           4294967296           bytes     \n\
Max processes             1024                 1024                 processes \n\
Max open files            unlimited            unlimited            files     \n";

    #[test]
    fn the_line_sets_each_asked_limit() {
        let line = ulimit_line(&Resources::default(), Dialect::Bash);
        assert_eq!(
            line,
            "ulimit -n 4096 2>/dev/null; ulimit -f 4194304 2>/dev/null; ulimit -u 1024 2>/dev/null;\n"
        );
        let line = ulimit_line(&Resources::default(), Dialect::Posix);
        assert_eq!(
            line,
            "ulimit -n 4096 2>/dev/null; ulimit -f 8388608 2>/dev/null; ulimit -p 1024 2>/dev/null;\n"
        );
    }

    #[test]
    fn the_report_is_what_the_kernel_enforces() {
        let (r, notes) = report(LIMITS, &Resources::default());
        assert_eq!(r.file_bytes, Some(4 << 30));
        assert_eq!(r.processes, Some(1024));
        // Asked for 4096 open files, the kernel says unlimited: not enforced, and said.
        assert_eq!(r.open_files, None);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("open files limit 4096 not enforced")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("memory limit")),
            "{notes:?}"
        );
    }
}
