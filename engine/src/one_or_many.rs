//! `OneOrMany<T>`: a list that never grows after it is made, stored inline while it has
//! exactly one element (the common reservation: one line, held at one location) and
//! as a boxed slice otherwise. Reads as a slice.
//!
//! Saves a heap chunk per reservation line and per hold, and, for a one-element list,
//! costs no more than the boxed slice it replaces (the enum's tag lives in a niche of
//! `T`; the tests check the sizes). With serde it is a sequence, exactly like a `Vec`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// Build it with `collect`, `From<Vec<T>>` or `From<&[T]>`, which keep one element
/// inline; equality compares the elements, whichever variant holds them.
#[derive(Clone)]
pub enum OneOrMany<T> {
    One(T),
    /// Zero, or two and more, elements.
    Many(Box<[T]>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            OneOrMany::One(one) => std::slice::from_mut(one),
            OneOrMany::Many(many) => many,
        }
    }
}

impl<T: PartialEq> PartialEq for OneOrMany<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for OneOrMany<T> {}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Box::default())
    }
}

impl<T> Deref for OneOrMany<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> DerefMut for OneOrMany<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T> From<Vec<T>> for OneOrMany<T> {
    fn from(mut v: Vec<T>) -> Self {
        match v.len() {
            1 => OneOrMany::One(v.pop().expect("one element")),
            _ => OneOrMany::Many(v.into_boxed_slice()),
        }
    }
}

impl<T: Clone> From<&[T]> for OneOrMany<T> {
    fn from(s: &[T]) -> Self {
        match s {
            [one] => OneOrMany::One(one.clone()),
            _ => OneOrMany::Many(s.into()),
        }
    }
}

impl<T> FromIterator<T> for OneOrMany<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else { return OneOrMany::default() };
        match iter.next() {
            None => OneOrMany::One(first),
            Some(second) => {
                let mut v = Vec::with_capacity(2 + iter.size_hint().0);
                v.push(first);
                v.push(second);
                v.extend(iter);
                OneOrMany::Many(v.into_boxed_slice())
            }
        }
    }
}

impl<'a, T> IntoIterator for &'a OneOrMany<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut OneOrMany<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// As a list, like the `Vec` it replaces.
impl<T: fmt::Debug> fmt::Debug for OneOrMany<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(OneOrMany::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::{Allocation, LocationId};
    use crate::reservation::ReservationLine;
    use crate::sku::Sku;
    use std::mem::size_of;

    #[test]
    fn no_bigger_than_a_box_and_the_element() {
        // The tag lives in a niche: one element inline costs nothing extra.
        assert_eq!(size_of::<OneOrMany<ReservationLine>>(), size_of::<ReservationLine>());
        assert_eq!(size_of::<OneOrMany<Allocation>>(), size_of::<Allocation>());
    }

    #[test]
    fn reads_and_encodes_as_a_list() {
        let config = bincode::config::standard();
        for n in 0..4u64 {
            let v: Vec<u64> = (0..n).collect();
            let l: OneOrMany<u64> = v.iter().copied().collect();
            assert_eq!(&l[..], &v[..]);
            assert_eq!(matches!(l, OneOrMany::One(_)), n == 1);
            assert_eq!(OneOrMany::from(v.clone()), l);
            assert_eq!(OneOrMany::from(&v[..]), l);
            assert_eq!(format!("{l:?}"), format!("{v:?}"));
            let bytes = bincode::serde::encode_to_vec(&l, config).unwrap();
            assert_eq!(bytes, bincode::serde::encode_to_vec(&v, config).unwrap());
            let (back, _): (OneOrMany<u64>, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(back, l);
        }
        let line = ReservationLine { sku: Sku::parse("a", "sku").unwrap(), quantity: 2, committed: 0 };
        let mut one: OneOrMany<ReservationLine> = std::iter::once(line.clone()).collect();
        one[0].committed = 1;
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].committed, 1);
        let a = Allocation { sku: line.sku.clone(), location: LocationId::DEFAULT, quantity: 2, committed: 0 };
        assert_eq!(OneOrMany::from(vec![a.clone()]).as_slice(), [a]);
    }
}
