//! Per-process resource limits set between `fork` and `exec` (soft and hard alike, so the
//! shell cannot raise them again): the limits a cgroup cannot give (open files, file size)
//! and the fallbacks where there is no cgroup (processes, memory per process).

/// The rlimits to set, computed before `fork` (`None`: left as inherited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimits {
    /// `RLIMIT_NOFILE`: open descriptors per process.
    pub nofile: Option<u64>,
    /// `RLIMIT_FSIZE`: bytes per written file.
    pub fsize: Option<u64>,
    /// `RLIMIT_NPROC`: processes of the user (binds only a non-root user).
    pub nproc: Option<u64>,
    /// `RLIMIT_AS`: address space per process.
    pub address_space: Option<u64>,
}

/// The resources [`Rlimits`] can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Open descriptors.
    OpenFiles,
    /// File size.
    FileSize,
    /// Processes of the user.
    Processes,
    /// Address space.
    AddressSpace,
}

impl Resource {
    fn raw(self) -> libc::__rlimit_resource_t {
        match self {
            Resource::OpenFiles => libc::RLIMIT_NOFILE,
            Resource::FileSize => libc::RLIMIT_FSIZE,
            Resource::Processes => libc::RLIMIT_NPROC,
            Resource::AddressSpace => libc::RLIMIT_AS,
        }
    }
}

/// `v`, or the process's current hard limit for `resource` if that is lower (raising it
/// needs privilege).
pub fn clamp(resource: Resource, v: u64) -> u64 {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(resource.raw(), &mut cur) } != 0
        || cur.rlim_max == libc::RLIM_INFINITY
    {
        return v;
    }
    v.min(cur.rlim_max)
}

/// The calling process's hard limit for `resource` (`None`: unlimited or unreadable).
pub fn hard_limit(resource: Resource) -> Option<u64> {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(resource.raw(), &mut cur) } != 0
        || cur.rlim_max == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(cur.rlim_max)
}

impl Rlimits {
    /// Sets the limits on the calling process.
    ///
    /// # Safety
    /// Async-signal-safe (only `setrlimit(2)`): may be called in a forked child before
    /// `exec`.
    pub unsafe fn apply_in_child(&self) -> std::io::Result<()> {
        for (resource, value) in [
            (Resource::OpenFiles, self.nofile),
            (Resource::FileSize, self.fsize),
            (Resource::Processes, self.nproc),
            (Resource::AddressSpace, self.address_space),
        ] {
            let Some(v) = value else { continue };
            let lim = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            // SAFETY: setrlimit with a valid pointer to a local struct.
            if unsafe { libc::setrlimit(resource.raw(), &lim) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
