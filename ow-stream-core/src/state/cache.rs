//! The record cache of the stores of aggregations (Kafka Streams' `statestore.cache.max.bytes`).
//!
//! An aggregation with caching on does not write each update to its store, its changelog and
//! its children at once: it keeps the newest value of each key it touched since the last flush
//! in the store's cache. A **flush** writes every cached key to the store and the changelog,
//! then forwards one record per key downstream (the newest value, with the timestamp and
//! headers of the update that made it). A task flushes its caches before every commit (so a
//! commit marker always follows the changes it covers) and a store's cache as soon as the
//! cache budget of its stream thread is exceeded.
//!
//! Reads of the store (the aggregation's own, a join's, interactive queries) look in the cache
//! first, so they see every update at once.
//!
//! # Guarantees
//! A crash loses only the cache, i.e. updates whose input offsets were not committed either:
//! they are processed again from the last commit. Counting into a store stays exact. Records a
//! flush forwards carry no provenance header, so a repartition topic written downstream of a
//! cached aggregation is at-least-once (a crash may repeat its records), as with punctuation.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::record::Headers;

/// Bytes counted for an entry beyond its key and value (map node, timestamp, headers), so
/// that a budget also bounds caches of tiny records.
const ENTRY_OVERHEAD: usize = 64;

/// The newest update of one key since the last flush.
#[derive(Clone, Debug)]
pub(crate) struct CacheEntry {
    /// The new value (`None`: deleted).
    pub(crate) value: Option<Vec<u8>>,
    /// Timestamp of the update.
    pub(crate) timestamp: i64,
    /// Headers of the record that made the update.
    pub(crate) headers: Headers,
}

impl CacheEntry {
    fn size(key: &[u8], value: Option<&[u8]>) -> usize {
        key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
    }
}

/// The cached updates of one store shard, in key order.
pub(crate) type CacheMap = BTreeMap<Vec<u8>, CacheEntry>;

/// A shard's cache, shared with the interactive queries of the shard.
pub(crate) type SharedCache = Arc<RwLock<CacheMap>>;

/// The byte budget of the caches of one stream thread (or of a test driver).
#[derive(Debug)]
pub(crate) struct CacheBudget {
    max: usize,
    used: AtomicUsize,
}

impl CacheBudget {
    /// A budget of `max` bytes (`0`: caching off).
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(CacheBudget {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// Whether caches may be used at all.
    pub(crate) fn enabled(&self) -> bool {
        self.max > 0
    }

    /// Whether the caches hold more than the budget.
    pub(crate) fn exceeded(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.max
    }

    /// Bytes the caches hold.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    fn release(&self, bytes: usize) {
        // Never below zero, even if a cache were released twice.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }
}

/// Puts an update into `cache`, charging `budget` the difference in size.
pub(crate) fn insert(
    cache: &SharedCache,
    budget: &CacheBudget,
    key: &[u8],
    value: Option<&[u8]>,
    timestamp: i64,
    headers: &Headers,
) {
    let mut map = cache.write();
    let size = CacheEntry::size(key, value);
    match map.get_mut(key) {
        Some(entry) => {
            let old = CacheEntry::size(key, entry.value.as_deref());
            match &mut entry.value {
                // Reuse the allocation: the common case is a value of about the same size.
                Some(buf) if value.is_some() => {
                    buf.clear();
                    buf.extend_from_slice(value.unwrap_or_default());
                }
                slot => *slot = value.map(<[u8]>::to_vec),
            }
            entry.timestamp = timestamp;
            entry.headers.clone_from(headers);
            budget.add(size);
            budget.release(old);
        }
        None => {
            map.insert(
                key.to_vec(),
                CacheEntry {
                    value: value.map(<[u8]>::to_vec),
                    timestamp,
                    headers: headers.clone(),
                },
            );
            budget.add(size);
        }
    }
}

/// Drops the cached update of `key`, if any (a direct write replaces it).
pub(crate) fn remove(cache: &SharedCache, budget: &CacheBudget, key: &[u8]) {
    let removed = cache.write().remove(key);
    if let Some(entry) = removed {
        budget.release(CacheEntry::size(key, entry.value.as_deref()));
    }
}

/// Empties a locked cache, returning its entries in key order and releasing their bytes.
pub(crate) fn take_locked(map: &mut CacheMap, budget: &CacheBudget) -> CacheMap {
    let map = std::mem::take(map);
    budget.release(
        map.iter()
            .map(|(k, e)| CacheEntry::size(k, e.value.as_deref()))
            .sum(),
    );
    map
}

type Pair = (Vec<u8>, Vec<u8>);

/// Key-value pairs of `base` (in key order) with the changes of an overlay (in key order,
/// `None` = deleted) applied on top: the view of a store through its pending writes or cache.
pub(crate) struct Overlay<'a, B, O, E>
where
    B: Iterator<Item = Result<Pair, E>>,
    O: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    base: Peekable<B>,
    over: Peekable<O>,
}

impl<'a, B, O, E> Overlay<'a, B, O, E>
where
    B: Iterator<Item = Result<Pair, E>>,
    O: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    /// `base` seen through `over`.
    pub(crate) fn new(base: B, over: O) -> Self {
        Overlay {
            base: base.peekable(),
            over: over.peekable(),
        }
    }
}

impl<'a, B, O, E> Iterator for Overlay<'a, B, O, E>
where
    B: Iterator<Item = Result<Pair, E>>,
    O: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    type Item = Result<Pair, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let from_overlay = match (self.base.peek(), self.over.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(Ok(_)), None) => false,
                (None, Some(_)) => true,
                (Some(Ok((base_key, _))), Some((over_key, _))) => {
                    match (*over_key).cmp(base_key.as_slice()) {
                        CmpOrdering::Less => true,
                        CmpOrdering::Equal => {
                            // The overlay's change replaces the base's pair.
                            self.base.next();
                            true
                        }
                        CmpOrdering::Greater => false,
                    }
                }
            };
            if !from_overlay {
                return self.base.next();
            }
            match self.over.next() {
                Some((key, Some(value))) => return Some(Ok((key.to_vec(), value.to_vec()))),
                // A deletion hides the base's pair (already skipped) and yields nothing.
                Some((_, None)) => continue,
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<Result<Pair, ()>> {
        items
            .iter()
            .map(|(k, v)| Ok((k.as_bytes().to_vec(), v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn overlay_replaces_inserts_and_deletes() {
        let base = pairs(&[("a", "1"), ("c", "3"), ("e", "5")]);
        let over: Vec<(&[u8], Option<&[u8]>)> = vec![
            (b"b", Some(b"2")),
            (b"c", Some(b"30")),
            (b"e", None),
            (b"f", Some(b"6")),
        ];
        let got: Vec<(String, String)> = Overlay::new(base.into_iter(), over.into_iter())
            .map(|r| {
                let (k, v) = r.unwrap();
                (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
            })
            .collect();
        let want = [("a", "1"), ("b", "2"), ("c", "30"), ("f", "6")];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
    }

    #[test]
    fn overlay_passes_base_errors_on() {
        let base: Vec<Result<Pair, &str>> = vec![Ok((b"a".to_vec(), b"1".to_vec())), Err("bad")];
        let over: Vec<(&[u8], Option<&[u8]>)> = vec![(b"z", Some(b"9"))];
        let got: Vec<_> = Overlay::new(base.into_iter(), over.into_iter()).collect();
        assert_eq!(got.len(), 3);
        assert!(got[1].is_err());
    }

    #[test]
    fn budget_counts_inserts_updates_and_takes() {
        let budget = CacheBudget::new(200);
        let cache = SharedCache::default();
        let h = Headers::new();
        insert(&cache, &budget, b"k", Some(b"12345"), 1, &h);
        assert_eq!(budget.used(), 1 + 5 + ENTRY_OVERHEAD);
        insert(&cache, &budget, b"k", Some(b"1"), 2, &h);
        assert_eq!(budget.used(), 1 + 1 + ENTRY_OVERHEAD);
        assert!(!budget.exceeded());
        insert(&cache, &budget, b"other", Some(&[0; 100]), 3, &h);
        assert!(budget.exceeded());
        let taken = take_locked(&mut cache.write(), &budget);
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[b"k".as_slice()].timestamp, 2);
        assert_eq!(budget.used(), 0);
        assert!(cache.read().is_empty());
        insert(&cache, &budget, b"k", None, 4, &h);
        remove(&cache, &budget, b"k");
        assert_eq!(budget.used(), 0);
    }
}
