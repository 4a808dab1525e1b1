//! Writing new blobs as one git pack with its version-2 index.
//!
//! The first checkpoint of a large workspace creates thousands of objects. As loose
//! objects that is one new file each (most of the time, on ext4, goes to allocating
//! inodes); through libgit2's pack indexer every object is compressed, then inflated and
//! hashed again. Here each blob is compressed once, its id and CRC taken as it is framed,
//! and the pack and its index are written directly in git's documented formats
//! (`gitformat-pack`): the store reads them back through libgit2 like any other pack, and
//! the tests check them with `git verify-pack`.

use flate2::{write::ZlibEncoder, Compression};
use git2::Oid;
use sha1::{Digest, Sha1};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

/// The pack object type of a blob.
const OBJ_BLOB: u8 = 3;
/// The index's magic number and version.
const IDX_MAGIC: [u8; 4] = [0xff, b't', b'O', b'c'];
/// Offsets at or past this go to the index's 64-bit table.
const LARGE_OFFSET: u64 = 0x8000_0000;

/// The git id of a blob with this content, hashed by libgit2 itself (SHA-1 with collision
/// detection, as git does); `None` when libgit2 refuses the content (it carries a SHA-1
/// collision attack).
pub(crate) fn blob_id(content: &[u8]) -> Option<Oid> {
    Oid::hash_object(git2::ObjectType::Blob, content).ok()
}

/// One object ready for the pack: header and deflated content, with its CRC-32.
struct Packed {
    id: Oid,
    bytes: Vec<u8>,
    crc: u32,
}

/// Blobs on their way into one pack.
#[derive(Default)]
pub(crate) struct PackBatch {
    objects: Vec<Packed>,
    ids: HashSet<Oid>,
    bytes: usize,
}

impl PackBatch {
    /// Compressed bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a blob (once per id).
    pub fn add(&mut self, id: Oid, content: &[u8]) -> io::Result<()> {
        if !self.ids.insert(id) {
            return Ok(());
        }
        let mut z = ZlibEncoder::new(
            object_header(OBJ_BLOB, content.len() as u64),
            Compression::fast(),
        );
        z.write_all(content)?;
        let bytes = z.finish()?;
        self.bytes += bytes.len();
        self.objects.push(Packed {
            id,
            crc: crc32fast::hash(&bytes),
            bytes,
        });
        Ok(())
    }

    /// Writes the batch as `pack-<checksum>.pack` and `.idx` in `pack_dir` (the pack
    /// first, its index last, so a reader never finds an index without its pack) and
    /// empties it.
    pub fn write(&mut self, pack_dir: &Path) -> io::Result<()> {
        if self.objects.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(self);
        let tmp_pack = temp_path(pack_dir, "pack")?;
        let mut sum = Sha1::new();
        let mut offsets = Vec::with_capacity(batch.objects.len());
        {
            let mut f = io::BufWriter::with_capacity(1 << 20, create_new(&tmp_pack)?);
            let mut header = Vec::with_capacity(12);
            header.extend_from_slice(b"PACK");
            header.extend_from_slice(&2u32.to_be_bytes());
            header.extend_from_slice(
                &u32::try_from(batch.objects.len())
                    .map_err(io::Error::other)?
                    .to_be_bytes(),
            );
            sum.update(&header);
            f.write_all(&header)?;
            let mut at = header.len() as u64;
            for o in &batch.objects {
                offsets.push(at);
                sum.update(&o.bytes);
                f.write_all(&o.bytes)?;
                at += o.bytes.len() as u64;
            }
            let checksum = sum.clone().finalize();
            f.write_all(&checksum)?;
            f.flush()?;
        }
        let checksum = sum.finalize();
        let idx = index_bytes(&batch.objects, &offsets, &checksum);
        let tmp_idx = temp_path(pack_dir, "idx")?;
        create_new(&tmp_idx)?.write_all(&idx)?;
        let name = format!("pack-{}", hex::encode(checksum));
        std::fs::rename(&tmp_pack, pack_dir.join(format!("{name}.pack")))?;
        std::fs::rename(&tmp_idx, pack_dir.join(format!("{name}.idx")))?;
        Ok(())
    }
}

/// The version-2 index of `objects` at `offsets` in the pack with `checksum`.
fn index_bytes(objects: &[Packed], offsets: &[u64], checksum: &[u8]) -> Vec<u8> {
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by(|&a, &b| objects[a].id.cmp(&objects[b].id));
    let mut out = Vec::with_capacity(8 + 256 * 4 + objects.len() * 28 + 40);
    out.extend_from_slice(&IDX_MAGIC);
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for o in objects {
        fanout[usize::from(o.id.as_bytes()[0])] += 1;
    }
    let mut running = 0u32;
    for n in fanout {
        running += n;
        out.extend_from_slice(&running.to_be_bytes());
    }
    for &i in &order {
        out.extend_from_slice(objects[i].id.as_bytes());
    }
    for &i in &order {
        out.extend_from_slice(&objects[i].crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for &i in &order {
        let off = offsets[i];
        let small = if off < LARGE_OFFSET {
            off as u32
        } else {
            large.push(off);
            0x8000_0000 | (large.len() as u32 - 1)
        };
        out.extend_from_slice(&small.to_be_bytes());
    }
    for off in large {
        out.extend_from_slice(&off.to_be_bytes());
    }
    out.extend_from_slice(checksum);
    let own = Sha1::digest(&out);
    out.extend_from_slice(&own);
    out
}

/// A pack object's header: type and size, 4 bits of size in the first byte and 7 in each
/// following one, low bits first, the high bit saying another byte follows.
fn object_header(kind: u8, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

fn temp_path(dir: &Path, ext: &str) -> io::Result<std::path::PathBuf> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).map_err(io::Error::other)?;
    Ok(dir.join(format!("tmp_execkit_{}.{ext}", hex::encode(r))))
}

fn create_new(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_headers_carry_type_and_size_as_git_frames_them() {
        assert_eq!(object_header(3, 0), vec![0x30]);
        assert_eq!(object_header(3, 15), vec![0x3f]);
        // 16 = 0b1_0000: low nibble 0 with the continuation bit, then 1.
        assert_eq!(object_header(3, 16), vec![0xb0, 0x01]);
        // 20,480 = 0x5000: nibble 0, then 0x500 in 7-bit groups: 0x00 | 0x80, 0x0a.
        assert_eq!(object_header(3, 20_480), vec![0xb0, 0x80, 0x0a]);
    }

    #[test]
    fn blob_ids_match_libgit2() {
        for content in [&b""[..], b"hello\n", &[0u8, 255, 10, 13][..]] {
            assert_eq!(
                blob_id(content),
                Some(Oid::hash_object(git2::ObjectType::Blob, content).unwrap())
            );
        }
    }

    #[test]
    fn a_written_pack_is_read_back_by_libgit2_object_for_object() {
        let dir = std::env::temp_dir().join(format!("execkit-pack-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = git2::Repository::init_bare(&dir).unwrap();
        let mut batch = PackBatch::default();
        let contents: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("file {i}\n").repeat(i as usize).into_bytes())
            .collect();
        for c in &contents {
            batch.add(blob_id(c).unwrap(), c).unwrap();
        }
        // The same content twice is packed once.
        batch
            .add(blob_id(&contents[5]).unwrap(), &contents[5])
            .unwrap();
        batch.write(&dir.join("objects/pack")).unwrap();
        let odb = repo.odb().unwrap();
        odb.refresh().unwrap();
        for c in &contents {
            let blob = repo.find_blob(blob_id(c).unwrap()).unwrap();
            assert_eq!(blob.content(), &c[..]);
        }
        let st = std::process::Command::new("git")
            .arg("verify-pack")
            .arg(
                std::fs::read_dir(dir.join("objects/pack"))
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|e| e == "idx"))
                    .unwrap(),
            )
            .status()
            .unwrap();
        assert!(st.success(), "git verify-pack refused the pack");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
