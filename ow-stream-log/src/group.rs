//! Consumer-group offsets: an append-only, fsynced file of commit frames
//! (like Kafka's `__consumer_offsets`), replayed on open and rewritten as a
//! snapshot when it grows.
//!
//! ```text
//! payload (of a frame, see `frames`): u8 kind
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
use std::path::Path;

use parking_lot::Mutex;

use crate::error::LogError;
use crate::frames::{FrameFile, Reader, encode_frame, put_str};

const KIND_COMMIT: u8 = 1;
const KIND_DELETE: u8 = 2;
/// Rewrite the file once it is this big and 4× its snapshot.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

type Offsets = BTreeMap<(String, i32), i64>;

#[derive(Debug)]
pub(crate) struct GroupStore {
    /// Size from which the file is rewritten as a snapshot.
    compact_min_bytes: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: FrameFile,
    groups: BTreeMap<String, Offsets>,
}

impl GroupStore {
    pub(crate) fn open(dir: &Path) -> Result<GroupStore, LogError> {
        Self::open_with(dir, COMPACT_MIN_BYTES)
    }

    fn open_with(dir: &Path, compact_min_bytes: u64) -> Result<GroupStore, LogError> {
        let mut groups = BTreeMap::new();
        let file = FrameFile::open(dir, "consumer-offsets.log", "consumer-offsets", |payload| {
            apply(&mut groups, payload)
        })?;
        Ok(GroupStore {
            compact_min_bytes,
            state: Mutex::new(State { file, groups }),
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

    /// Appends one frame and fdatasyncs it.
    fn write_frame(&self, st: &mut State, payload: &[u8]) -> Result<(), LogError> {
        st.file.append(payload, true)
    }

    /// Replaces the file by a snapshot (one frame per group) when most of it
    /// is superseded commits: write temp, fsync, rename, fsync directory.
    fn maybe_rewrite(&self, st: &mut State) -> Result<(), LogError> {
        if st.file.len < self.compact_min_bytes {
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
        if (snapshot.len() as u64) * 4 > st.file.len {
            return Ok(());
        }
        st.file.replace(&snapshot)
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
    r.finish()
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

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
