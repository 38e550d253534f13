//! Consumer-group offsets: an append-only, fsynced file of commit frames
//! (like Kafka's `__consumer_offsets`), replayed on open and rewritten as a
//! snapshot when it grows.
//!
//! ```text
//! frame:   u32 payload_len, u32 crc32c(payload), payload
//! payload: u8 kind
//!          kind 1 (commit): u16 group_len + group,
//!                           u32 count, count × (u16 topic_len + topic,
//!                                               i32 partition, i64 offset)
//!          kind 2 (delete group): u16 group_len + group
//! ```
//!
//! One `commit` call is one frame written with one `write` and made durable
//! with `fdatasync` before returning, so a commit of several partitions is
//! atomic: after a crash it is there whole or (if it was not acknowledged)
//! not at all; a torn last frame is cut off on open.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::batch::u32_at;
use crate::error::{IoContext, LogError};
use crate::partition::sync_dir;

const KIND_COMMIT: u8 = 1;
const KIND_DELETE: u8 = 2;
/// Rewrite the file once it is this big and 4× its snapshot.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

type Offsets = BTreeMap<(String, i32), i64>;

#[derive(Debug)]
pub(crate) struct GroupStore {
    dir: PathBuf,
    path: PathBuf,
    /// Size from which the file is rewritten as a snapshot.
    compact_min_bytes: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    len: u64,
    groups: BTreeMap<String, Offsets>,
}

impl GroupStore {
    pub(crate) fn open(dir: &Path) -> Result<GroupStore, LogError> {
        Self::open_with(dir, COMPACT_MIN_BYTES)
    }

    fn open_with(dir: &Path, compact_min_bytes: u64) -> Result<GroupStore, LogError> {
        let path = dir.join("consumer-offsets.log");
        let tmp = dir.join("consumer-offsets.log.tmp");
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
        let mut groups = BTreeMap::new();
        let mut pos = 0usize;
        while let Some((payload, next)) = frame_at(&bytes, pos) {
            match apply(&mut groups, payload) {
                Ok(()) => pos = next,
                Err(reason) => {
                    return Err(LogError::corrupt(&path, pos as u64, reason));
                }
            }
        }
        if pos < bytes.len() {
            tracing::warn!(
                path = %path.display(), position = pos, bytes = bytes.len() - pos,
                "cutting off a torn consumer-offsets frame"
            );
            file.set_len(pos as u64).at(&path)?;
            file.sync_all().at(&path)?;
        }
        Ok(GroupStore {
            dir: dir.to_path_buf(),
            path,
            compact_min_bytes,
            state: Mutex::new(State {
                file,
                len: pos as u64,
                groups,
            }),
        })
    }

    pub(crate) fn commit(&self, group: &str, offsets: &[(&str, i32, i64)]) -> Result<(), LogError> {
        let mut payload = vec![KIND_COMMIT];
        put_str(&mut payload, group);
        payload.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        for (topic, partition, offset) in offsets {
            put_str(&mut payload, topic);
            payload.extend_from_slice(&partition.to_le_bytes());
            payload.extend_from_slice(&offset.to_le_bytes());
        }
        let mut st = self.state.lock();
        self.write_frame(&mut st, &payload)?;
        let g = st.groups.entry(group.to_owned()).or_default();
        for (topic, partition, offset) in offsets {
            g.insert(((*topic).to_owned(), *partition), *offset);
        }
        self.maybe_rewrite(&mut st)
    }

    pub(crate) fn delete(&self, group: &str) -> Result<bool, LogError> {
        let mut st = self.state.lock();
        if !st.groups.contains_key(group) {
            return Ok(false);
        }
        let mut payload = vec![KIND_DELETE];
        put_str(&mut payload, group);
        self.write_frame(&mut st, &payload)?;
        st.groups.remove(group);
        Ok(true)
    }

    pub(crate) fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.state
            .lock()
            .groups
            .get(group)?
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    pub(crate) fn groups(&self) -> Vec<String> {
        self.state.lock().groups.keys().cloned().collect()
    }

    pub(crate) fn offsets(&self, group: &str) -> Option<Vec<(String, i32, i64)>> {
        let st = self.state.lock();
        let g = st.groups.get(group)?;
        Some(g.iter().map(|((t, p), o)| (t.clone(), *p, *o)).collect())
    }

    /// Appends one frame and fdatasyncs it; on failure the file is cut back.
    fn write_frame(&self, st: &mut State, payload: &[u8]) -> Result<(), LogError> {
        let frame = encode_frame(payload);
        let at = st.len;
        let res = st
            .file
            .write_all_at(&frame, at)
            .and_then(|()| st.file.sync_data());
        if let Err(e) = res {
            // Best effort: leave no half frame behind a later good one.
            let _ = st.file.set_len(at);
            return Err(LogError::io(&self.path, e));
        }
        st.len += frame.len() as u64;
        Ok(())
    }

    /// Replaces the file by a snapshot (one frame per group) when most of it
    /// is superseded commits: write temp, fsync, rename, fsync directory.
    fn maybe_rewrite(&self, st: &mut State) -> Result<(), LogError> {
        if st.len < self.compact_min_bytes {
            return Ok(());
        }
        let mut snapshot = Vec::new();
        for (group, offsets) in &st.groups {
            let mut payload = vec![KIND_COMMIT];
            put_str(&mut payload, group);
            payload.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
            for ((topic, partition), offset) in offsets {
                put_str(&mut payload, topic);
                payload.extend_from_slice(&partition.to_le_bytes());
                payload.extend_from_slice(&offset.to_le_bytes());
            }
            snapshot.extend_from_slice(&encode_frame(&payload));
        }
        if (snapshot.len() as u64) * 4 > st.len {
            return Ok(());
        }
        let tmp = self.dir.join("consumer-offsets.log.tmp");
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(&snapshot).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        fs::rename(&tmp, &self.path).at(&self.path)?;
        sync_dir(&self.dir)?;
        st.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .at(&self.path)?;
        st.len = snapshot.len() as u64;
        Ok(())
    }
}

fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The payload of the valid frame at `pos` and the position after it.
fn frame_at(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(pos..pos + 8)?;
    let len = u32_at(head, 0) as usize;
    let crc = u32_at(head, 4);
    let payload = bytes.get(pos + 8..(pos + 8).checked_add(len)?)?;
    (crc32c::crc32c(payload) == crc).then_some((payload, pos + 8 + len))
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        if self.0.len() < n {
            return Err("consumer-offsets frame too short");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn str(&mut self) -> Result<String, &'static str> {
        let n = self.take(2)?;
        let n = u16::from_le_bytes([n[0], n[1]]) as usize;
        let s = self.take(n)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| "name in consumer-offsets frame is not UTF-8")
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

fn apply(groups: &mut BTreeMap<String, Offsets>, payload: &[u8]) -> Result<(), &'static str> {
    let mut r = Reader(payload);
    let kind = r.take(1)?[0];
    let group = r.str()?;
    match kind {
        KIND_COMMIT => {
            let n = u32::from_le_bytes(r.array()?);
            let g = groups.entry(group).or_default();
            for _ in 0..n {
                let topic = r.str()?;
                let partition = i32::from_le_bytes(r.array()?);
                let offset = i64::from_le_bytes(r.array()?);
                g.insert((topic, partition), offset);
            }
        }
        KIND_DELETE => {
            groups.remove(&group);
        }
        _ => return Err("unknown consumer-offsets frame kind"),
    }
    if !r.0.is_empty() {
        return Err("trailing bytes in consumer-offsets frame");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = GroupStore::open(dir.path()).unwrap();
            s.commit("g1", &[("t", 0, 5), ("t", 1, 7)]).unwrap();
            s.commit("g2", &[("t", 0, 1)]).unwrap();
            s.commit("g1", &[("t", 0, 6)]).unwrap();
        }
        let path = dir.path().join("consumer-offsets.log");
        let good = fs::metadata(&path).unwrap().len();
        // A torn frame at the end.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let s = GroupStore::open(dir.path()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        assert_eq!(s.committed("g1", "t", 0), Some(6));
        assert_eq!(s.committed("g1", "t", 1), Some(7));
        assert_eq!(s.committed("g2", "t", 0), Some(1));
        assert_eq!(s.committed("g2", "t", 1), None);
        assert_eq!(s.groups(), vec!["g1".to_owned(), "g2".to_owned()]);
        assert!(s.delete("g2").unwrap());
        assert!(!s.delete("g2").unwrap());
        drop(s);
        let s = GroupStore::open(dir.path()).unwrap();
        assert_eq!(s.groups(), vec!["g1".to_owned()]);
    }

    #[test]
    fn file_is_rewritten_when_mostly_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let s = GroupStore::open_with(dir.path(), 2048).unwrap();
        let path = dir.path().join("consumer-offsets.log");
        s.commit("other", &[("x", 3, 33)]).unwrap();
        for i in 0..200i64 {
            s.commit("g", &[("topic", 0, i), ("topic", 1, i * 2)])
                .unwrap();
        }
        // 201 frames of ~50 bytes would be ~10 KiB without rewrites.
        assert!(fs::metadata(&path).unwrap().len() < 2048);
        assert_eq!(s.committed("g", "topic", 1), Some(199 * 2));
        drop(s);
        let s = GroupStore::open(dir.path()).unwrap();
        assert_eq!(s.committed("g", "topic", 0), Some(199));
        assert_eq!(s.committed("g", "topic", 1), Some(199 * 2));
        assert_eq!(s.committed("other", "x", 3), Some(33));
    }
}
