//! An item's stock figures and the alerts a change of them can raise.

use crate::limits::{MAX_ON_HAND, MAX_SOLD};
use crate::location::{LocationId, LocationStock, MAX_LOCATIONS_PER_ITEM};
use crate::sku::Sku;
use crate::Millis;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Stock of one SKU. `available` is derived: `on_hand - reserved`, never stored, so
/// `onHand = available + reserved` holds by construction; `reserved <= on_hand` is the
/// invariant every mutation keeps, per location and in total.
///
/// `on_hand`, `reserved`, `sold` and `incoming` are the sums over the item's locations
/// (kept in step by the `*_at` methods, the only writers of stock figures; `check`
/// proves it). Storage is compact for the common case: while every unit is at the
/// default location, `locations` is empty and the item figures are that location's
/// (no allocation per item); the first named location materializes the list, sorted by
/// id, one entry per location, never emptied again. Read it through
/// [`Item::locations`], which always lists at least one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: Sku,
    pub on_hand: u64,
    pub reserved: u64,
    /// Total units ever committed (sold) from this item.
    pub sold: u64,
    /// Units in transit to some location: not sellable until received.
    pub incoming: u64,
    /// Empty: everything is at the default location. See the type's docs.
    pub(crate) locations: LocationList,
    pub low_stock_threshold: u64,
    /// Flash-sale guard: most units one reservation may take; `None` = no limit.
    pub max_per_order: Option<u64>,
    /// Operator switch: while set, new reservations of this SKU are refused with
    /// SALES_BLOCKED; existing ones can still commit or release.
    pub sales_blocked: bool,
    /// Bumped by every mutation of this item.
    pub version: u64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An item's location list: one pointer while empty (the common one-location item),
/// a boxed vector once a named location exists. Reads as a slice.
// The box is the point: 8 bytes in every item instead of a 24-byte Vec header, for a
// list most items never have.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct LocationList(Option<Box<Vec<LocationStock>>>);

impl LocationList {
    fn one(l: LocationStock) -> LocationList {
        LocationList(Some(Box::new(vec![l])))
    }

    fn push(&mut self, l: LocationStock) {
        self.0.get_or_insert_with(Default::default).push(l);
    }

    fn insert(&mut self, i: usize, l: LocationStock) {
        self.0.get_or_insert_with(Default::default).insert(i, l);
    }
}

impl std::ops::Deref for LocationList {
    type Target = [LocationStock];
    fn deref(&self) -> &[LocationStock] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl std::ops::DerefMut for LocationList {
    fn deref_mut(&mut self) -> &mut [LocationStock] {
        match self.0.as_deref_mut() {
            Some(v) => v.as_mut_slice(),
            None => &mut [],
        }
    }
}

/// One location's figures, by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub on_hand: u64,
    pub reserved: u64,
    pub incoming: u64,
}

impl Item {
    /// A new item with no stock, at one location.
    pub(crate) fn new(sku: Sku, location: LocationId, now: Millis) -> Item {
        Item {
            sku,
            on_hand: 0,
            reserved: 0,
            sold: 0,
            incoming: 0,
            locations: if location.is_default() {
                LocationList::default()
            } else {
                LocationList::one(LocationStock::new(location))
            },
            low_stock_threshold: 0,
            max_per_order: None,
            sales_blocked: false,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn available(&self) -> u64 {
        self.on_hand - self.reserved
    }

    /// The default location's stock while it is the only one: the item figures.
    fn default_stock(&self) -> LocationStock {
        LocationStock {
            location: LocationId::DEFAULT,
            on_hand: self.on_hand,
            reserved: self.reserved,
            sold: self.sold,
            incoming: self.incoming,
        }
    }

    /// Every location of the item, sorted by id (the default location's id sorts
    /// first); never empty.
    pub fn locations(&self) -> Cow<'_, [LocationStock]> {
        if self.locations.is_empty() {
            Cow::Owned(vec![self.default_stock()])
        } else {
            Cow::Borrowed(&self.locations[..])
        }
    }

    /// How many locations the item stocks.
    pub fn location_count(&self) -> usize {
        self.locations.len().max(1)
    }

    /// Runs `f` on the item's locations without allocating (the hot path's view).
    pub(crate) fn with_locations<R>(&self, f: impl FnOnce(&[LocationStock]) -> R) -> R {
        if self.locations.is_empty() {
            f(&[self.default_stock()])
        } else {
            f(&self.locations)
        }
    }

    /// Location `id`'s stock, if the item stocks it.
    pub fn location(&self, id: &LocationId) -> Option<LocationStock> {
        match self.index_of(id) {
            Some(_) if self.locations.is_empty() => Some(self.default_stock()),
            Some(i) => Some(self.locations[i].clone()),
            None => None,
        }
    }

    pub fn stocks(&self, id: &LocationId) -> bool {
        self.index_of(id).is_some()
    }

    /// The index of location `id` for the `*_at` methods.
    pub(crate) fn index_of(&self, id: &LocationId) -> Option<usize> {
        if self.locations.is_empty() {
            return id.is_default().then_some(0);
        }
        self.locations.binary_search_by(|l| l.location.cmp(id)).ok()
    }

    /// Location `i`'s figures.
    pub(crate) fn at(&self, i: usize) -> Figures {
        if self.locations.is_empty() {
            debug_assert_eq!(i, 0);
            return Figures { on_hand: self.on_hand, reserved: self.reserved, incoming: self.incoming };
        }
        let l = &self.locations[i];
        Figures { on_hand: l.on_hand, reserved: l.reserved, incoming: l.incoming }
    }

    /// The index of location `id`, added (empty) if the item does not stock it yet.
    /// The first named location materializes the list (default entry included).
    pub(crate) fn location_index(&mut self, id: &LocationId) -> Result<usize, crate::error::EngineError> {
        if let Some(i) = self.index_of(id) {
            return Ok(i);
        }
        if self.location_count() >= MAX_LOCATIONS_PER_ITEM {
            return Err(crate::error::EngineError::LimitExceeded {
                what: format!("locations of {}", self.sku),
                limit: MAX_LOCATIONS_PER_ITEM as u64,
            });
        }
        if self.locations.is_empty() {
            self.locations.push(self.default_stock());
        }
        let i = self.locations.binary_search_by(|l| l.location.cmp(id)).expect_err("not stocked yet");
        self.locations.insert(i, LocationStock::new(id.clone()));
        Ok(i)
    }

    /// Applies `f` to location `i` (nothing to do while the item figures are the
    /// default location's: the caller updates those).
    fn update_at(&mut self, i: usize, f: impl FnOnce(&mut LocationStock)) {
        if self.locations.is_empty() {
            debug_assert_eq!(i, 0);
        } else {
            f(&mut self.locations[i]);
        }
    }

    /// Sets location `i`'s onHand (callers check it stays >= its reserved).
    pub(crate) fn set_on_hand_at(&mut self, i: usize, on_hand: u64) {
        let old = self.at(i);
        debug_assert!(on_hand >= old.reserved);
        self.on_hand = self.on_hand - old.on_hand + on_hand;
        self.update_at(i, |l| l.on_hand = on_hand);
    }

    pub(crate) fn set_incoming_at(&mut self, i: usize, incoming: u64) {
        let old = self.at(i);
        self.incoming = self.incoming - old.incoming + incoming;
        self.update_at(i, |l| l.incoming = incoming);
    }

    /// Holds `q` units at location `i` (callers check they are available).
    pub(crate) fn reserve_at(&mut self, i: usize, q: u64) {
        debug_assert!(self.at(i).on_hand - self.at(i).reserved >= q);
        self.reserved += q;
        self.update_at(i, |l| l.reserved += q);
    }

    /// Gives back `q` held units at location `i`.
    pub(crate) fn unreserve_at(&mut self, i: usize, q: u64) {
        debug_assert!(self.at(i).reserved >= q);
        self.reserved -= q;
        self.update_at(i, |l| l.reserved -= q);
    }

    /// Of `held` units held at location `i`, sells `sold` and gives back the rest.
    pub(crate) fn sell_at(&mut self, i: usize, held: u64, sold: u64) {
        debug_assert!(sold <= held);
        self.unreserve_at(i, held);
        self.on_hand -= sold;
        self.sold += sold;
        self.update_at(i, |l| {
            l.on_hand -= sold;
            l.sold += sold;
        });
    }

    pub fn is_low_stock(&self) -> bool {
        self.available() <= self.low_stock_threshold
    }

    /// Refuses to hold `q` more units when `sold + reserved` would pass `MAX_SOLD`
    /// (the one bound on `sold`; see `limits::MAX_SOLD`). Checked before any change.
    pub(crate) fn check_sold_room(&self, q: u64) -> Result<(), crate::error::EngineError> {
        let after = self.sold as u128 + self.reserved as u128 + q as u128;
        if after > MAX_SOLD as u128 {
            return Err(crate::error::EngineError::validation(
                "sold",
                format!("{}: sold + reserved would be {after}, over the limit of {MAX_SOLD}", self.sku),
            ));
        }
        Ok(())
    }

    /// The per-item invariant; checked after every mutation in debug builds and by
    /// recovery and `verify` in all builds. Exactly the bounds the write paths keep:
    /// `reserved <= onHand` (per location too), `onHand <= MAX_ON_HAND`,
    /// `incoming <= MAX_ON_HAND` (item sums, so every location's too) and
    /// `sold + reserved <= MAX_SOLD`.
    pub fn check(&self) -> Result<(), String> {
        if self.reserved > self.on_hand {
            return Err(format!("{}: reserved {} exceeds onHand {}", self.sku, self.reserved, self.on_hand));
        }
        if self.on_hand > MAX_ON_HAND || self.incoming > MAX_ON_HAND {
            return Err(format!("{}: onHand {} or incoming {} over the limit", self.sku, self.on_hand, self.incoming));
        }
        if self.sold as u128 + self.reserved as u128 > MAX_SOLD as u128 {
            return Err(format!("{}: sold {} + reserved {} over the limit", self.sku, self.sold, self.reserved));
        }
        if self.locations.is_empty() {
            return Ok(()); // the item figures are the default location's
        }
        if let [only] = &self.locations[..] {
            if only.location.is_default() {
                return Err(format!("{}: a lone default location must be stored compactly", self.sku));
            }
        }
        // u128 sums: a corrupt snapshot is reported, never an overflow.
        let (mut on_hand, mut reserved, mut sold, mut incoming) = (0u128, 0u128, 0u128, 0u128);
        for (i, l) in self.locations.iter().enumerate() {
            if i > 0 && self.locations[i - 1].location >= l.location {
                return Err(format!("{}: locations out of order at {}", self.sku, l.location));
            }
            if l.reserved > l.on_hand {
                return Err(format!(
                    "{} at {}: reserved {} exceeds onHand {}",
                    self.sku, l.location, l.reserved, l.on_hand
                ));
            }
            on_hand += l.on_hand as u128;
            reserved += l.reserved as u128;
            sold += l.sold as u128;
            incoming += l.incoming as u128;
        }
        let item = (self.on_hand as u128, self.reserved as u128, self.sold as u128, self.incoming as u128);
        if (on_hand, reserved, sold, incoming) != item {
            return Err(format!(
                "{}: location sums (onHand {on_hand}, reserved {reserved}, sold {sold}, incoming {incoming}) differ \
                 from the item's ({}, {}, {}, {})",
                self.sku, self.on_hand, self.reserved, self.sold, self.incoming
            ));
        }
        Ok(())
    }

    /// Marks a mutation at `now`: bumps the version and checks the invariant.
    pub(crate) fn touch(&mut self, now: Millis) {
        self.version += 1;
        self.updated_at = self.updated_at.max(now);
        debug_assert!(self.check().is_ok(), "{:?}", self.check());
        // The oversell detector: cheap enough for release builds, and must never fire.
        if self.reserved > self.on_hand {
            crate::invariants::report_oversell();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertKind {
    LowStock,
    OutOfStock,
}

/// Raised by the operation whose change made available cross a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockAlert {
    pub sku: Sku,
    pub kind: AlertKind,
    pub available: u64,
    pub threshold: u64,
}

/// The alerts raised by a change of `item`'s available from `before`.
pub(crate) fn alerts_for(item: &Item, before: u64, out: &mut Vec<StockAlert>) {
    let after = item.available();
    let threshold = item.low_stock_threshold;
    if after == 0 && before > 0 {
        out.push(StockAlert { sku: item.sku.clone(), kind: AlertKind::OutOfStock, available: 0, threshold });
    } else if after <= threshold && before > threshold {
        out.push(StockAlert { sku: item.sku.clone(), kind: AlertKind::LowStock, available: after, threshold });
    }
}
