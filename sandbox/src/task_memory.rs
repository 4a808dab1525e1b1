//! Reading a stopped task's memory: the strings, pointers and structures a system call
//! names, through `/proc/PID/mem`, a page at a time.

use std::io;

/// Limit on one string read from a stopped task.
const MAX_STRING: usize = 128 * 1024;

/// The page size the task's memory is read in.
const PAGE: u64 = 4096;
/// Pages kept while one call is read (argv, its strings and the path usually lie on a
/// handful; past this the oldest is dropped and read again if needed).
const CACHED_PAGES: usize = 16;

/// Reads a stopped task's memory through `/proc/PID/mem` a page at a time, keeping the
/// pages it read: a call's argument array and strings mostly share a few pages, so a
/// compiler start with dozens of arguments costs a few reads instead of two per argument.
/// A page is read only where something is asked of it, so a string that ends just before
/// an unmapped page never fails.
pub(crate) struct TaskMemory {
    file: std::fs::File,
    pages: Vec<(u64, Vec<u8>)>,
}

impl TaskMemory {
    pub(crate) fn open(pid: i32) -> io::Result<TaskMemory> {
        Ok(TaskMemory {
            file: std::fs::File::open(format!("/proc/{pid}/mem"))?,
            pages: Vec::new(),
        })
    }

    /// The readable bytes of the page holding `at`, from `at` to the page's end.
    fn from(&mut self, at: u64) -> io::Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        let base = at - at % PAGE;
        let i = match self.pages.iter().position(|(b, _)| *b == base) {
            Some(i) => i,
            None => {
                let mut buf = vec![0u8; PAGE as usize];
                let n = self.file.read_at(&mut buf, base)?;
                if n == 0 {
                    return Err(io::Error::other("the address is past its mapping"));
                }
                buf.truncate(n);
                if self.pages.len() == CACHED_PAGES {
                    self.pages.remove(0);
                }
                self.pages.push((base, buf));
                self.pages.len() - 1
            }
        };
        let page = &self.pages[i].1;
        let off = (at - base) as usize;
        if off >= page.len() {
            return Err(io::Error::other("the address is past its mapping"));
        }
        Ok(&page[off..])
    }

    pub(crate) fn u64_at(&mut self, at: u64) -> io::Result<u64> {
        let mut b = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            let chunk = self.from(at + got as u64)?;
            let n = chunk.len().min(8 - got);
            b[got..got + n].copy_from_slice(&chunk[..n]);
            got += n;
        }
        Ok(u64::from_ne_bytes(b))
    }

    /// A NUL-terminated string at `at`.
    pub(crate) fn string_at(&mut self, at: u64) -> io::Result<Vec<u8>> {
        if at == 0 {
            return Err(io::Error::other("a null string pointer"));
        }
        let mut out = Vec::new();
        let mut pos = at;
        loop {
            let chunk = self.from(pos)?;
            if let Some(end) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok(out);
            }
            let n = chunk.len();
            out.extend_from_slice(chunk);
            if out.len() > MAX_STRING {
                return Err(io::Error::other("a string over 128 KiB"));
            }
            pos += n as u64;
        }
    }

    /// `len` bytes at `at` (a structure the call points to).
    pub(crate) fn bytes_at(&mut self, at: u64, len: usize) -> io::Result<Vec<u8>> {
        if at == 0 {
            return Err(io::Error::other("a null pointer"));
        }
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let chunk = self.from(at + out.len() as u64)?;
            let n = chunk.len().min(len - out.len());
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(out)
    }
}
