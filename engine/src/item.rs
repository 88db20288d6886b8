//! An item's stock figures and the alerts a change of them can raise.

use crate::location::{LocationId, LocationStock, MAX_LOCATIONS_PER_ITEM};
use crate::sku::Sku;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// Stock of one SKU. `available` is derived: `on_hand - reserved`, never stored, so
/// `onHand = available + reserved` holds by construction; `reserved <= on_hand` is the
/// invariant every mutation keeps, per location and in total.
///
/// `on_hand`, `reserved`, `sold` and `incoming` are the sums over `locations` (kept
/// in step by the `*_at` methods, the only writers of stock figures; `check` proves
/// it). `locations` is sorted by id, never empty, one entry per location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: Sku,
    pub on_hand: u64,
    pub reserved: u64,
    /// Total units ever committed (sold) from this item.
    pub sold: u64,
    /// Units in transit to some location: not sellable until received.
    pub incoming: u64,
    pub locations: Vec<LocationStock>,
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

impl Item {
    /// A new item with no stock, at one location.
    pub(crate) fn new(sku: Sku, location: LocationId, now: Millis) -> Item {
        Item {
            sku,
            on_hand: 0,
            reserved: 0,
            sold: 0,
            incoming: 0,
            locations: vec![LocationStock::new(location)],
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

    pub fn location(&self, id: &LocationId) -> Option<&LocationStock> {
        self.index_of(id).ok().map(|i| &self.locations[i])
    }

    pub(crate) fn index_of(&self, id: &LocationId) -> Result<usize, usize> {
        self.locations.binary_search_by(|l| l.location.cmp(id))
    }

    /// The index of location `id`, added (empty) if the item does not stock it yet.
    pub(crate) fn location_index(&mut self, id: &LocationId) -> Result<usize, crate::error::EngineError> {
        match self.index_of(id) {
            Ok(i) => Ok(i),
            Err(_) if self.locations.len() >= MAX_LOCATIONS_PER_ITEM => Err(crate::error::EngineError::LimitExceeded {
                what: format!("locations of {}", self.sku),
                limit: MAX_LOCATIONS_PER_ITEM as u64,
            }),
            Err(i) => {
                self.locations.insert(i, LocationStock::new(id.clone()));
                Ok(i)
            }
        }
    }

    /// Sets location `i`'s onHand (callers check it stays >= its reserved).
    pub(crate) fn set_on_hand_at(&mut self, i: usize, on_hand: u64) {
        let l = &mut self.locations[i];
        debug_assert!(on_hand >= l.reserved);
        self.on_hand = self.on_hand - l.on_hand + on_hand;
        l.on_hand = on_hand;
    }

    pub(crate) fn set_incoming_at(&mut self, i: usize, incoming: u64) {
        let l = &mut self.locations[i];
        self.incoming = self.incoming - l.incoming + incoming;
        l.incoming = incoming;
    }

    /// Holds `q` units at location `i` (callers check they are available).
    pub(crate) fn reserve_at(&mut self, i: usize, q: u64) {
        let l = &mut self.locations[i];
        debug_assert!(l.available() >= q);
        l.reserved += q;
        self.reserved += q;
    }

    /// Gives back `q` held units at location `i`.
    pub(crate) fn unreserve_at(&mut self, i: usize, q: u64) {
        let l = &mut self.locations[i];
        debug_assert!(l.reserved >= q);
        l.reserved -= q;
        self.reserved -= q;
    }

    /// Of `held` units held at location `i`, sells `sold` and gives back the rest.
    pub(crate) fn sell_at(&mut self, i: usize, held: u64, sold: u64) {
        debug_assert!(sold <= held);
        self.unreserve_at(i, held);
        let l = &mut self.locations[i];
        l.on_hand -= sold;
        l.sold += sold;
        self.on_hand -= sold;
        self.sold += sold;
    }

    pub fn is_low_stock(&self) -> bool {
        self.available() <= self.low_stock_threshold
    }

    /// The per-item invariant; checked after every mutation in debug builds and by
    /// recovery and `verify` in all builds.
    pub fn check(&self) -> Result<(), String> {
        if self.reserved > self.on_hand {
            return Err(format!("{}: reserved {} exceeds onHand {}", self.sku, self.reserved, self.on_hand));
        }
        if self.on_hand > crate::limits::MAX_ON_HAND || self.incoming > crate::limits::MAX_ON_HAND {
            return Err(format!("{}: onHand {} or incoming {} over the limit", self.sku, self.on_hand, self.incoming));
        }
        if self.locations.is_empty() {
            return Err(format!("{}: no location", self.sku));
        }
        let (mut on_hand, mut reserved, mut sold, mut incoming) = (0u64, 0u64, 0u64, 0u64);
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
            on_hand += l.on_hand;
            reserved += l.reserved;
            sold += l.sold;
            incoming += l.incoming;
        }
        if (on_hand, reserved, sold, incoming) != (self.on_hand, self.reserved, self.sold, self.incoming) {
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
