//! `Deadlines`: the expiry timer of a shard's ACTIVE reservations, a set of
//! `(deadline, id)` pairs read in `(deadline, id)` order.
//!
//! Per-second buckets: the entries whose deadline falls in one second of the clock
//! are kept together, found through a hash map by that second; an ordered set holds
//! only the seconds that have entries. Adding or removing an entry is a hash lookup of
//! its second and a hash (or, for a small bucket, a short list) update: its cost does
//! not grow with the number of entries or with the TTL, and its memory is the entry's
//! own plus a bucket's share (a bucket is a few words, and exists only while it holds an
//! entry), so a 90-day TTL costs what a 1-minute TTL does. The order is made only when
//! it is read: `due` sorts the entries of the buckets it takes (each entry is sorted
//! once, when it falls due), and the ordered walks (`sorted`, snapshots) sort
//! everything.
//!
//! With serde it is the sorted sequence of `(deadline, id)` pairs, exactly as the
//! `BTreeSet<(Millis, ReservationId)>` it replaces, so snapshots are byte-identical.

use super::FastMap;
use crate::reservation_id::ReservationId;
use crate::Millis;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;

/// Entries a bucket keeps in a plain list before it moves them to a hash map.
const SMALL_BUCKET: usize = 16;

/// One second's entries: few in a list, many in a hash map (id → deadline).
#[derive(Debug, Clone)]
enum Bucket {
    Few(Vec<(Millis, ReservationId)>),
    Many(FastMap<ReservationId, Millis>),
}

impl Bucket {
    fn len(&self) -> usize {
        match self {
            Bucket::Few(v) => v.len(),
            Bucket::Many(m) => m.len(),
        }
    }

    fn contains(&self, deadline: Millis, id: ReservationId) -> bool {
        match self {
            Bucket::Few(v) => v.contains(&(deadline, id)),
            Bucket::Many(m) => m.get(&id) == Some(&deadline),
        }
    }

    /// Adds the entry; false if it was there already.
    fn insert(&mut self, deadline: Millis, id: ReservationId) -> bool {
        match self {
            Bucket::Few(v) => {
                if v.contains(&(deadline, id)) {
                    return false;
                }
                if v.len() < SMALL_BUCKET {
                    v.push((deadline, id));
                    return true;
                }
                let mut m = FastMap::with_capacity_and_hasher(2 * SMALL_BUCKET, Default::default());
                m.extend(v.iter().map(|&(d, i)| (i, d)));
                m.insert(id, deadline);
                *self = Bucket::Many(m);
                true
            }
            Bucket::Many(m) => match m.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    // One deadline per id: a second deadline for the same id in the
                    // same second would be a bug of the caller (the header knows one).
                    debug_assert!(*e.get() == deadline, "{id} already has another deadline in this second");
                    false
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(deadline);
                    true
                }
            },
        }
    }

    /// Removes the entry; false if it was not there.
    fn remove(&mut self, deadline: Millis, id: ReservationId) -> bool {
        match self {
            Bucket::Few(v) => match v.iter().position(|e| *e == (deadline, id)) {
                Some(i) => {
                    v.swap_remove(i);
                    true
                }
                None => false,
            },
            Bucket::Many(m) => {
                if m.get(&id) == Some(&deadline) {
                    m.remove(&id);
                    true
                } else {
                    false
                }
            }
        }
    }

    fn extend_into(&self, out: &mut Vec<(Millis, ReservationId)>) {
        self.extend_due_into(Millis::MAX, out);
    }

    /// Appends the entries due by `now` (unordered).
    fn extend_due_into(&self, now: Millis, out: &mut Vec<(Millis, ReservationId)>) {
        match self {
            Bucket::Few(v) => out.extend(v.iter().filter(|(d, _)| *d <= now)),
            Bucket::Many(m) => out.extend(m.iter().filter(|(_, &d)| d <= now).map(|(&i, &d)| (d, i))),
        }
    }
}

/// The set of `(deadline, id)` pairs; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Deadlines {
    buckets: FastMap<u64, Bucket>,
    /// The seconds that have a bucket, in order.
    seconds: BTreeSet<u64>,
    len: usize,
}

fn second_of(deadline: Millis) -> u64 {
    deadline / 1000
}

impl Deadlines {
    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, deadline: Millis, id: ReservationId) -> bool {
        self.buckets.get(&second_of(deadline)).is_some_and(|b| b.contains(deadline, id))
    }

    /// Adds `(deadline, id)`; false if it was there already.
    pub fn insert(&mut self, deadline: Millis, id: ReservationId) -> bool {
        let second = second_of(deadline);
        let added = match self.buckets.get_mut(&second) {
            Some(bucket) => bucket.insert(deadline, id),
            None => {
                self.buckets.insert(second, Bucket::Few(vec![(deadline, id)]));
                self.seconds.insert(second);
                true
            }
        };
        self.len += usize::from(added);
        debug_assert!(self.contains(deadline, id));
        added
    }

    /// Removes `(deadline, id)`; false if it was not there.
    pub fn remove(&mut self, deadline: Millis, id: ReservationId) -> bool {
        let second = second_of(deadline);
        let Some(bucket) = self.buckets.get_mut(&second) else { return false };
        let removed = bucket.remove(deadline, id);
        if bucket.len() == 0 {
            self.buckets.remove(&second);
            self.seconds.remove(&second);
        }
        self.len -= usize::from(removed);
        debug_assert!(!self.contains(deadline, id));
        removed
    }

    /// Every entry with `deadline <= now`, in `(deadline, id)` order. Changes nothing.
    pub fn due(&self, now: Millis) -> Vec<(Millis, ReservationId)> {
        let mut due = Vec::new();
        for second in self.seconds.range(..=second_of(now)) {
            // Every entry of an earlier second is due; of the current one, those due
            // by `now`.
            self.buckets[second].extend_due_into(now, &mut due);
        }
        due.sort_unstable();
        due
    }

    /// The earliest entry.
    pub fn first(&self) -> Option<(Millis, ReservationId)> {
        let second = self.seconds.first()?;
        let mut entries = Vec::new();
        self.buckets[second].extend_into(&mut entries);
        entries.into_iter().min()
    }

    /// Every entry, in `(deadline, id)` order.
    pub fn sorted(&self) -> Vec<(Millis, ReservationId)> {
        let mut all = Vec::with_capacity(self.len);
        for second in &self.seconds {
            self.buckets[second].extend_into(&mut all);
        }
        all.sort_unstable();
        all
    }
}

impl PartialEq for Deadlines {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.seconds == other.seconds && self.sorted() == other.sorted()
    }
}

impl Eq for Deadlines {}

impl Serialize for Deadlines {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.sorted())
    }
}

impl<'de> Deserialize<'de> for Deadlines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Deadlines, D::Error> {
        let entries = Vec::<(Millis, ReservationId)>::deserialize(deserializer)?;
        let mut deadlines = Deadlines::default();
        for (deadline, id) in entries {
            deadlines.insert(deadline, id);
        }
        Ok(deadlines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(seq: u64) -> ReservationId {
        ReservationId::new(1_700_000_000_000, 0, seq)
    }

    #[test]
    fn due_lists_entries_in_deadline_then_id_order_up_to_now() {
        let mut d = Deadlines::default();
        // Same second, out of order; an earlier second; ties broken by id.
        assert!(d.insert(5_700, id(1)));
        assert!(d.insert(5_200, id(2)));
        assert!(d.insert(4_999, id(3)));
        assert!(d.insert(5_200, id(0)));
        assert!(!d.insert(5_200, id(0)), "an entry is in the set once");
        assert_eq!(d.len(), 4);
        assert_eq!(d.due(4_998), vec![]);
        assert_eq!(d.due(5_200), vec![(4_999, id(3)), (5_200, id(0)), (5_200, id(2))]);
        assert_eq!(d.due(9_000), vec![(4_999, id(3)), (5_200, id(0)), (5_200, id(2)), (5_700, id(1))]);
        assert_eq!(d.first(), Some((4_999, id(3))));
        assert_eq!(d.len(), 4, "due changes nothing");
    }

    #[test]
    fn far_deadlines_cost_one_bucket_each_and_come_due_in_order() {
        let mut d = Deadlines::default();
        let now = 1_700_000_000_000u64;
        let day = 86_400_000u64;
        // 90 days, 1 second and 30 days: one bucket per distinct second, no more.
        d.insert(now + 90 * day, id(1));
        d.insert(now + 1_000, id(2));
        d.insert(now + 30 * day, id(3));
        assert_eq!(d.buckets.len(), 3);
        assert_eq!(d.seconds.len(), 3);
        assert_eq!(d.due(now + 29 * day), vec![(now + 1_000, id(2))]);
        assert_eq!(d.due(now + 90 * day).len(), 3);
        assert_eq!(d.first(), Some((now + 1_000, id(2))));
    }

    #[test]
    fn removal_takes_exactly_the_named_entry_and_drops_empty_buckets() {
        let mut d = Deadlines::default();
        for seq in 0..100 {
            // 100 entries in one second: the bucket turns into a hash map.
            d.insert(7_000 + seq % 1000, id(seq));
        }
        assert!(matches!(d.buckets[&7], Bucket::Many(_)));
        assert!(!d.remove(7_001, id(0)), "the right id with the wrong deadline is not there");
        assert!(d.remove(7_000, id(0)));
        assert!(!d.remove(7_000, id(0)));
        assert!(!d.contains(7_000, id(0)));
        assert_eq!(d.len(), 99);
        for seq in 1..100 {
            assert!(d.remove(7_000 + seq % 1000, id(seq)));
        }
        assert!(d.is_empty());
        assert!(d.buckets.is_empty() && d.seconds.is_empty());
        assert_eq!(d.first(), None);
    }

    #[test]
    fn serializes_as_the_sorted_set_it_replaces() {
        let mut d = Deadlines::default();
        let mut set = BTreeSet::new();
        for (deadline, seq) in [(9_000, 3), (1_500, 7), (1_500, 2), (70_000_000, 1)] {
            d.insert(deadline, id(seq));
            set.insert((deadline, id(seq)));
        }
        let config = bincode::config::standard();
        let ours = bincode::serde::encode_to_vec(&d, config).unwrap();
        assert_eq!(ours, bincode::serde::encode_to_vec(&set, config).unwrap());
        let (back, _): (Deadlines, usize) = bincode::serde::decode_from_slice(&ours, config).unwrap();
        assert_eq!(back, d);
    }

    proptest! {
        /// Against the ordered set it replaces: the same answers after any sequence of
        /// inserts and removals.
        #[test]
        fn behaves_like_an_ordered_set(ops in prop::collection::vec((any::<bool>(), 0u64..40_000, 0u64..50), 0..300), now in 0u64..45_000) {
            let mut d = Deadlines::default();
            let mut model = BTreeSet::new();
            for (insert, deadline, seq) in ops {
                if insert {
                    // One deadline per id, as the shard keeps it.
                    if model.iter().any(|(_, i)| *i == id(seq)) { continue; }
                    prop_assert_eq!(d.insert(deadline, id(seq)), model.insert((deadline, id(seq))));
                } else {
                    prop_assert_eq!(d.remove(deadline, id(seq)), model.remove(&(deadline, id(seq))));
                }
                prop_assert_eq!(d.len(), model.len());
            }
            prop_assert_eq!(d.sorted(), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(d.due(now), model.iter().copied().take_while(|(t, _)| *t <= now).collect::<Vec<_>>());
            prop_assert_eq!(d.first(), model.first().copied());
        }
    }
}
