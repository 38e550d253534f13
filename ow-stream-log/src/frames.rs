//! The CRC-framed record files of the log's metadata (consumer-group
//! offsets, the transaction coordinator): the frame, and a reader of the
//! little-endian fields inside one.
//!
//! ```text
//! frame: u32 payload_len, u32 crc32c(payload), payload
//! ```
//!
//! A file is a sequence of frames; on open it is replayed up to the first
//! frame that is torn or fails its CRC, and cut there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::batch::u32_at;
use crate::error::{IoContext, LogError};
use crate::partition::sync_dir;

/// One frame around `payload`.
pub(crate) fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The payload of the valid frame at `pos` and the position after it.
pub(crate) fn frame_at(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(pos..pos + 8)?;
    let len = u32_at(head, 0) as usize;
    let crc = u32_at(head, 4);
    let payload = bytes.get(pos + 8..(pos + 8).checked_add(len)?)?;
    (crc32c::crc32c(payload) == crc).then_some((payload, pos + 8 + len))
}

/// Appends a `u16` length and the bytes of `s`.
pub(crate) fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// Reads the fields of one payload in order.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        if self.0.len() < n {
            return Err("record too short");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A string written by [`put_str`].
    pub(crate) fn str(&mut self) -> Result<String, &'static str> {
        let n = u16::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(n)?)
            .map(str::to_owned)
            .map_err(|_| "name in record is not UTF-8")
    }

    pub(crate) fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes in record")
        }
    }
}

/// An append-only file of frames, replayed on open, appended one frame at a
/// time and replaced by a snapshot when it has grown.
#[derive(Debug)]
pub(crate) struct FrameFile {
    dir: PathBuf,
    pub(crate) path: PathBuf,
    tmp: PathBuf,
    file: File,
    /// Bytes of valid frames.
    pub(crate) len: u64,
}

impl FrameFile {
    /// Opens (creating) `dir/name`, calling `apply` on every valid frame in
    /// order, and cuts off a torn or corrupt tail. An error of `apply` is a
    /// corrupt file.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        what: &str,
        mut apply: impl FnMut(&[u8]) -> Result<(), &'static str>,
    ) -> Result<FrameFile, LogError> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_file(&tmp).at(&tmp)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let bytes = fs::read(&path).at(&path)?;
        let mut pos = 0usize;
        while let Some((payload, next)) = frame_at(&bytes, pos) {
            apply(payload).map_err(|reason| LogError::corrupt(&path, pos as u64, reason))?;
            pos = next;
        }
        if pos < bytes.len() {
            tracing::warn!(
                path = %path.display(), position = pos, bytes = bytes.len() - pos,
                "cutting off a torn {what} record"
            );
            file.set_len(pos as u64).at(&path)?;
            file.sync_all().at(&path)?;
        }
        Ok(FrameFile {
            dir: dir.to_path_buf(),
            path,
            tmp,
            file,
            len: pos as u64,
        })
    }

    /// Appends one frame (fdatasynced when `sync`); on failure the file is
    /// cut back, so no half frame stays in front of a later good one.
    pub(crate) fn append(&mut self, payload: &[u8], sync: bool) -> Result<(), LogError> {
        let frame = encode_frame(payload);
        let at = self.len;
        let mut res = self.file.write_all_at(&frame, at);
        if res.is_ok() && sync {
            res = self.file.sync_data();
        }
        if let Err(e) = res {
            let _ = self.file.set_len(at);
            return Err(LogError::io(&self.path, e));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Replaces the file by `snapshot` (frames): write a temporary file,
    /// fsync, rename, fsync the directory.
    pub(crate) fn replace(&mut self, snapshot: &[u8]) -> Result<(), LogError> {
        let mut f = File::create(&self.tmp).at(&self.tmp)?;
        f.write_all(snapshot).at(&self.tmp)?;
        f.sync_all().at(&self.tmp)?;
        fs::rename(&self.tmp, &self.path).at(&self.path)?;
        sync_dir(&self.dir)?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .at(&self.path)?;
        self.len = snapshot.len() as u64;
        Ok(())
    }
}
