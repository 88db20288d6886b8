//! An item's stock figures and the alerts a change of them can raise.

use crate::sku::Sku;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// Stock of one SKU. `available` is derived: `on_hand - reserved`, never stored, so
/// `onHand = available + reserved` holds by construction; `reserved <= on_hand` is the
/// invariant every mutation keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: Sku,
    pub on_hand: u64,
    pub reserved: u64,
    /// Total units ever committed (sold) from this item.
    pub sold: u64,
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
    pub fn available(&self) -> u64 {
        self.on_hand - self.reserved
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
        if self.on_hand > crate::limits::MAX_ON_HAND {
            return Err(format!("{}: onHand {} over the limit", self.sku, self.on_hand));
        }
        Ok(())
    }

    /// Marks a mutation at `now`: bumps the version and checks the invariant.
    pub(crate) fn touch(&mut self, now: Millis) {
        self.version += 1;
        self.updated_at = self.updated_at.max(now);
        debug_assert!(self.check().is_ok(), "{:?}", self.check());
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
