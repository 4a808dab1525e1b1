//! Per-process resource limits set between fork and exec: the limits a cgroup cannot give
//! (open files, file size), and the fallbacks where there is no cgroup (processes for a
//! run-as user, memory per process).

use super::cgroup::SessionCgroup;
use super::ResourceReport;
use crate::config::Resources;

/// The rlimits to set, computed before fork.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rlimits {
    nofile: Option<u64>,
    fsize: Option<u64>,
    nproc: Option<u64>,
    address_space: Option<u64>,
}

/// Splits `wanted` between the cgroup (if any) and rlimits; returns the rlimits, what is
/// enforced, and a note for each limit that is not.
pub(crate) fn plan(
    wanted: &Resources,
    cgroup: Option<&SessionCgroup>,
    run_as: bool,
) -> (Rlimits, ResourceReport, Vec<String>) {
    let applied = cgroup.map(|g| g.applied).unwrap_or_default();
    let mut notes = Vec::new();
    let mut r = Rlimits {
        nofile: wanted.open_files.map(|v| clamp(libc::RLIMIT_NOFILE, v)),
        fsize: wanted.file_bytes.map(|v| clamp(libc::RLIMIT_FSIZE, v)),
        ..Rlimits::default()
    };
    let mut report = ResourceReport {
        cgroup: cgroup.map(|g| g.version),
        processes: applied.processes,
        memory_bytes: applied.memory_bytes,
        memory_per_process: false,
        cpu_percent: applied.cpu_percent,
        open_files: r.nofile,
        file_bytes: r.fsize,
    };
    if let (Some(n), None) = (wanted.processes, applied.processes) {
        if run_as {
            r.nproc = Some(clamp(libc::RLIMIT_NPROC, n));
            report.processes = r.nproc;
        } else {
            notes.push(format!(
                "process limit {n} not enforced: no pids cgroup here, and RLIMIT_NPROC does not bind root (set run_as)"
            ));
        }
    }
    if let (Some(b), None) = (wanted.memory_bytes, applied.memory_bytes) {
        r.address_space = Some(clamp(libc::RLIMIT_AS, b));
        report.memory_bytes = r.address_space;
        report.memory_per_process = true;
        notes.push(format!(
            "memory limit {} applies per process (RLIMIT_AS): no memory cgroup here",
            crate::result::human_bytes(b)
        ));
    }
    if let (Some(p), None) = (wanted.cpu_percent, applied.cpu_percent) {
        notes.push(format!("CPU limit {p}% not enforced: no cpu cgroup here"));
    }
    (r, report, notes)
}

/// `v`, or the process's current hard limit if that is lower (raising it needs privilege).
fn clamp(resource: libc::__rlimit_resource_t, v: u64) -> u64 {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(resource, &mut cur) } != 0 || cur.rlim_max == libc::RLIM_INFINITY {
        return v;
    }
    v.min(cur.rlim_max)
}

impl Rlimits {
    /// Sets the limits on the calling process.
    ///
    /// # Safety
    /// Call only in a forked child before `exec`: only `setrlimit(2)`.
    pub(crate) unsafe fn apply_in_child(&self) -> std::io::Result<()> {
        for (resource, value) in [
            (libc::RLIMIT_NOFILE, self.nofile),
            (libc::RLIMIT_FSIZE, self.fsize),
            (libc::RLIMIT_NPROC, self.nproc),
            (libc::RLIMIT_AS, self.address_space),
        ] {
            let Some(v) = value else { continue };
            let lim = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            // SAFETY: setrlimit with a valid pointer to a local struct.
            if unsafe { libc::setrlimit(resource, &lim) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
