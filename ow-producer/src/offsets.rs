//! Which request offsets may be committed: the answers finish in any order, a partition's
//! commit point only moves past offsets that are done.

use std::collections::{BTreeMap, BTreeSet};

/// Offsets read from one topic, by partition.
#[derive(Debug, Default)]
pub(crate) struct Offsets {
    partitions: BTreeMap<i32, Partition>,
}

#[derive(Debug)]
struct Partition {
    /// Read and not done yet.
    pending: BTreeSet<i64>,
    /// One past the highest offset read.
    next: i64,
    /// The last commit point handed out (the next offset to read); at first, where reading
    /// started, which the group had committed already (or is the partition's start).
    committed: i64,
}

impl Offsets {
    /// A record was read at `offset`.
    pub(crate) fn read(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_insert(Partition {
            pending: BTreeSet::new(),
            next: offset,
            committed: offset,
        });
        p.pending.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// The record at `offset` is done with.
    pub(crate) fn done(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.pending.remove(&offset);
        }
    }

    /// Records read and not done with.
    pub(crate) fn pending(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// The partitions whose commit point moved since the last call, with the new point: the
    /// offset of the first record not done (or one past the last read, when all are done).
    pub(crate) fn advance(&mut self) -> Vec<(i32, i64)> {
        let mut moved = Vec::new();
        for (&partition, p) in &mut self.partitions {
            let point = p.pending.first().copied().unwrap_or(p.next);
            if point > p.committed {
                p.committed = point;
                moved.push((partition, point));
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_points_wait_for_the_oldest_pending_offset() {
        let mut o = Offsets::default();
        for offset in 10..15 {
            o.read(0, offset);
        }
        o.read(1, 3);
        assert_eq!(o.pending(), 6);
        // Nothing done: the points are where reading started.
        assert_eq!(o.advance(), vec![]);
        o.done(0, 12);
        o.done(0, 13);
        assert_eq!(o.advance(), vec![]);
        o.done(0, 10);
        assert_eq!(o.advance(), vec![(0, 11)]);
        o.done(0, 11);
        o.done(0, 14);
        o.done(1, 3);
        assert_eq!(o.advance(), vec![(0, 15), (1, 4)]);
        assert_eq!(o.advance(), vec![]);
        assert_eq!(o.pending(), 0);
    }

    #[test]
    fn a_partition_read_again_from_an_older_offset_never_commits_backwards() {
        let mut o = Offsets::default();
        o.read(0, 5);
        o.done(0, 5);
        assert_eq!(o.advance(), vec![(0, 6)]);
        // After a rebalance the partition comes back from its committed offset.
        o.read(0, 6);
        o.read(0, 5);
        assert_eq!(o.advance(), vec![]);
        o.done(0, 5);
        o.done(0, 6);
        assert_eq!(o.advance(), vec![(0, 7)]);
    }
}
