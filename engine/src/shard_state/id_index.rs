//! `IdIndex`: a shard's reservation ids in id order, for the operator's listing.
//!
//! Ids are kept 64 to a word: an id's group is its second, shard and sequence number
//! without the low six bits, and its bit in the group's word is those six bits. The
//! groups sit in an ordered map; since the id order is (second, shard, sequence), the
//! groups in key order and the bits of each word from the lowest are exactly the ids in
//! order. A shard numbers its headers in sequence, so consecutive headers share a word:
//! adding one is usually a bit set in the last group (no search), and the map holds
//! about one entry per 64 ids instead of one per id.

use crate::reservation_id::ReservationId;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Ordered set of reservation ids; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdIndex {
    /// Group key (second, shard, sequence >> 6, packed in order) → bits of its ids.
    groups: BTreeMap<u128, u64>,
    len: usize,
}

fn split(id: ReservationId) -> (u128, u64) {
    let (secs, shard, seq) = id.parts();
    let key = (u128::from(secs) << 80) | (u128::from(shard) << 64) | u128::from(seq >> 6);
    (key, 1u64 << (seq & 63))
}

fn join(key: u128, bit: u32) -> ReservationId {
    let secs = (key >> 80) as u32;
    let shard = (key >> 64) as u16;
    let seq = ((key as u64) << 6) | u64::from(bit);
    ReservationId::from_parts(secs, shard, seq)
}

impl IdIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds `id`; false if it was there already.
    pub fn insert(&mut self, id: ReservationId) -> bool {
        let (key, bit) = split(id);
        // The common case: the newest group (a shard's ids come in sequence).
        let word = match self.groups.last_entry() {
            Some(last) if *last.key() == key => last.into_mut(),
            _ => self.groups.entry(key).or_insert(0),
        };
        let added = *word & bit == 0;
        *word |= bit;
        self.len += usize::from(added);
        debug_assert!(self.contains(id));
        added
    }

    /// Removes `id`; false if it was not there.
    pub fn remove(&mut self, id: ReservationId) -> bool {
        let (key, bit) = split(id);
        let Some(word) = self.groups.get_mut(&key) else { return false };
        let removed = *word & bit != 0;
        *word &= !bit;
        if *word == 0 {
            self.groups.remove(&key);
        }
        self.len -= usize::from(removed);
        removed
    }

    pub fn contains(&self, id: ReservationId) -> bool {
        let (key, bit) = split(id);
        self.groups.get(&key).is_some_and(|word| word & bit != 0)
    }

    /// The ids after `after` (all of them for `None`), in order.
    pub fn after(&self, after: Option<ReservationId>) -> impl Iterator<Item = ReservationId> + '_ {
        let (start, skip) = match after {
            // Within `after`'s own group, only the bits above its own.
            Some(id) => {
                let (key, bit) = split(id);
                (Bound::Included(key), Some((key, !(bit | (bit - 1)))))
            }
            None => (Bound::Unbounded, None),
        };
        self.groups.range((start, Bound::Unbounded)).flat_map(move |(&key, &word)| {
            let mut word = match skip {
                Some((k, mask)) if k == key => word & mask,
                _ => word,
            };
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros();
                word &= word - 1;
                Some(join(key, bit))
            })
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = ReservationId> + '_ {
        self.after(None)
    }
}

impl FromIterator<ReservationId> for IdIndex {
    fn from_iter<I: IntoIterator<Item = ReservationId>>(ids: I) -> IdIndex {
        let mut index = IdIndex::default();
        for id in ids {
            index.insert(id);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn id(now: u64, shard: usize, seq: u64) -> ReservationId {
        ReservationId::new(now, shard, seq)
    }

    #[test]
    fn lists_ids_in_id_order_across_groups_seconds_and_shards() {
        let ids = [
            id(2_000, 0, 5),
            id(1_000, 0, 64),
            id(1_000, 0, 63),
            id(1_000, 1, 0),
            id(1_000, 0, u64::MAX),
            id(1_000, 0, 0),
        ];
        let index: IdIndex = ids.iter().copied().collect();
        let mut sorted = ids.to_vec();
        sorted.sort();
        assert_eq!(index.iter().collect::<Vec<_>>(), sorted);
        assert_eq!(index.len(), 6);
        // After an id: strictly greater ones, whether or not the id is present.
        assert_eq!(index.after(Some(id(1_000, 0, 63))).collect::<Vec<_>>(), sorted[2..].to_vec());
        assert_eq!(index.after(Some(id(1_000, 0, 62))).collect::<Vec<_>>(), sorted[1..].to_vec());
        assert_eq!(index.after(Some(id(1_000, 0, u64::MAX))).collect::<Vec<_>>(), sorted[4..].to_vec());
        assert_eq!(index.after(Some(id(9_000, 0, 0))).count(), 0);
    }

    #[test]
    fn removal_clears_the_bit_and_drops_an_empty_group() {
        let mut index: IdIndex = (0..130).map(|seq| id(1_000, 3, seq)).collect();
        assert_eq!(index.groups.len(), 3);
        assert!(!index.insert(id(1_000, 3, 7)), "an id is in the set once");
        assert!(index.remove(id(1_000, 3, 7)));
        assert!(!index.remove(id(1_000, 3, 7)));
        assert!(!index.contains(id(1_000, 3, 7)));
        for seq in 128..130 {
            assert!(index.remove(id(1_000, 3, seq)));
        }
        assert_eq!(index.groups.len(), 2);
        assert_eq!(index.len(), 127);
    }

    proptest! {
        /// Against the ordered set it replaces.
        #[test]
        fn behaves_like_an_ordered_set(
            ops in prop::collection::vec((any::<bool>(), 0u64..3_000, 0usize..3, 0u64..300), 0..300),
            after in (0u64..3_000, 0usize..3, 0u64..300),
        ) {
            let mut index = IdIndex::default();
            let mut model = BTreeSet::new();
            for (insert, now, shard, seq) in ops {
                let i = id(now, shard, seq);
                if insert {
                    prop_assert_eq!(index.insert(i), model.insert(i));
                } else {
                    prop_assert_eq!(index.remove(i), model.remove(&i));
                }
                prop_assert_eq!(index.len(), model.len());
            }
            prop_assert_eq!(index.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            let a = id(after.0, after.1, after.2);
            let expected: Vec<_> = model.range((Bound::Excluded(a), Bound::Unbounded)).copied().collect();
            prop_assert_eq!(index.after(Some(a)).collect::<Vec<_>>(), expected);
            prop_assert_eq!(index == model.iter().copied().collect::<IdIndex>(), true);
        }
    }
}
