//! Per-process resource limits set between fork and exec: the limits a cgroup cannot give
//! (open files, file size), and the fallbacks where there is no cgroup (processes for a
//! run-as user, memory per process).

use super::cgroup::SessionCgroup;
use super::ResourceReport;
use crate::config::Resources;

use execkit_sandbox::rlimits::{clamp, Resource};
pub(crate) use execkit_sandbox::Rlimits;

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
        nofile: wanted.open_files.map(|v| clamp(Resource::OpenFiles, v)),
        fsize: wanted.file_bytes.map(|v| clamp(Resource::FileSize, v)),
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
            r.nproc = Some(clamp(Resource::Processes, n));
            report.processes = r.nproc;
        } else {
            notes.push(format!(
                "process limit {n} not enforced: no pids cgroup here, and RLIMIT_NPROC does not bind root (set run_as)"
            ));
        }
    }
    if let (Some(b), None) = (wanted.memory_bytes, applied.memory_bytes) {
        r.address_space = Some(clamp(Resource::AddressSpace, b));
        report.memory_bytes = r.address_space;
        report.memory_per_process = true;
        notes.push(format!(
            "memory limit {} applies per process (RLIMIT_AS): no memory cgroup here",
            crate::ByteSize(b)
        ));
    }
    if let (Some(p), None) = (wanted.cpu_percent, applied.cpu_percent) {
        notes.push(format!("CPU limit {p}% not enforced: no cpu cgroup here"));
    }
    (r, report, notes)
}
