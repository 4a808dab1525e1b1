//! Following a growing audit log: complete lines only (a record being appended is held
//! until its newline arrives), and a file that shrinks (rotated or replaced) is read again
//! from the start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a poll found.
#[derive(Debug, Default)]
pub struct Polled {
    /// The file was replaced or truncated: everything read before is void.
    pub restarted: bool,
    /// New complete lines.
    pub lines: Vec<String>,
}

/// A follower of one file.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// Device and inode of the file read so far (a replaced file restarts).
    identity: Option<(u64, u64)>,
}

/// The most read per poll, so a huge log does not freeze the screen.
const CHUNK: u64 = 4 << 20;

impl Tail {
    /// Follows `path` from its start (it need not exist yet).
    pub fn new(path: &Path) -> Tail {
        Tail {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            identity: None,
        }
    }

    /// Whether the file exists now.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Reads what was appended since the last poll.
    pub fn poll(&mut self) -> std::io::Result<Polled> {
        let mut out = Polled::default();
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        let len = meta.len();
        let identity = Some((meta.dev(), meta.ino()));
        if len < self.offset || (self.identity.is_some() && identity != self.identity) {
            self.offset = 0;
            self.partial.clear();
            out.restarted = true;
        }
        self.identity = identity;
        if len == self.offset {
            return Ok(out);
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.take(CHUNK).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        if let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') {
            let rest = self.partial.split_off(last + 1);
            let complete = std::mem::replace(&mut self.partial, rest);
            out.lines = complete
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn partial_lines_wait_and_a_truncated_file_restarts() {
        let dir = std::env::temp_dir().join(format!("execkit-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("log");
        let mut t = Tail::new(&p);
        assert!(t.poll().unwrap().lines.is_empty(), "no file yet");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"one\ntw").unwrap();
        assert_eq!(t.poll().unwrap().lines, vec!["one"]);
        f.write_all(b"o\nthree\n").unwrap();
        assert_eq!(t.poll().unwrap().lines, vec!["two", "three"]);
        std::fs::write(&p, b"new\n").unwrap();
        let r = t.poll().unwrap();
        assert!(r.restarted);
        assert_eq!(r.lines, vec!["new"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
