//! Reservations: the header a home shard keeps, and the holds item shards keep.
//!
//! A reservation's *header* lives on its home shard (chosen by orderId) and is the
//! source of truth for its status. The stock it holds lives as *holds* on the shards
//! of its SKUs. ARCHITECTURE.md describes the protocol that keeps the two in step.

use crate::error::EngineError;
use crate::limits::MAX_RESERVATION_ID_LEN;
use crate::location::{Allocation, LocationId};
use crate::one_or_many::OneOrMany;
use crate::reservation_id::ReservationId;
use crate::sku::{OrderId, Sku};
use crate::Millis;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Header written, holds being placed. Never visible as a success to a client.
    Pending,
    Active,
    Committed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub const ALL: [ReservationStatus; 5] =
        [Self::Pending, Self::Active, Self::Committed, Self::Released, Self::Expired];

    /// The status named by its text (`as_str`), if any.
    pub fn parse(s: &str) -> Option<ReservationStatus> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Committed | Self::Released | Self::Expired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    pub sku: Sku,
    pub quantity: u64,
    /// Units committed (sold); set when the reservation is committed.
    pub committed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: ReservationId,
    pub order_id: OrderId,
    pub status: ReservationStatus,
    /// Lists here and below never grow once made: no `Vec` capacity word, and the
    /// usual single line is kept inline (see [`OneOrMany`]).
    pub lines: OneOrMany<ReservationLine>,
    /// Where the units come from; read it with [`Reservation::allocations`]. Stored
    /// compactly: empty when every line is wholly at the default location (and while
    /// PENDING, before anything is held).
    pub(crate) allocations: Box<[Allocation]>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub finished_at: Option<Millis>,
    pub release_reason: Option<Box<str>>,
    /// Opaque client metadata (the server stores JSON text).
    pub metadata: Option<Box<str>>,
}

impl Reservation {
    /// Where the units come from: per SKU, the locations chosen when the stock was
    /// held, in the order they were chosen (empty while PENDING). Per SKU the
    /// quantities sum to its line's; once committed, so do the `committed` figures.
    pub fn allocations(&self) -> Cow<'_, [Allocation]> {
        if self.allocations.is_empty() && self.status != ReservationStatus::Pending {
            let all_default = self.lines.iter().map(|l| Allocation {
                sku: l.sku.clone(),
                location: LocationId::DEFAULT,
                quantity: l.quantity,
                committed: l.committed,
            });
            Cow::Owned(all_default.collect())
        } else {
            Cow::Borrowed(&self.allocations)
        }
    }

    /// Same request as another, for idempotency: same SKUs with the same quantities.
    pub fn same_lines(&self, lines: &[(Sku, u64)]) -> bool {
        let mut mine: Vec<(&Sku, u64)> = self.lines.iter().map(|l| (&l.sku, l.quantity)).collect();
        let mut theirs: Vec<(&Sku, u64)> = lines.iter().map(|(s, q)| (s, *q)).collect();
        mine.sort();
        theirs.sort();
        mine == theirs
    }
}

/// How a client names a reservation. `Id` keeps the client's text: a text that is no
/// [`ReservationId`] names no reservation, and the RESERVATION_NOT_FOUND answer quotes
/// it as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationKey {
    Order(OrderId),
    Id(String),
}

impl ReservationKey {
    /// A client's reservationId text, checked for length only (1 to
    /// [`MAX_RESERVATION_ID_LEN`] bytes; a text that is no [`ReservationId`] names no
    /// reservation). `field` names the request field in the error.
    pub fn id(text: &str, field: &str) -> Result<ReservationKey, EngineError> {
        if text.is_empty() || text.len() > MAX_RESERVATION_ID_LEN {
            return Err(EngineError::validation(field, format!("must be 1 to {MAX_RESERVATION_ID_LEN} bytes")));
        }
        Ok(ReservationKey::Id(text.to_owned()))
    }
}

impl std::fmt::Display for ReservationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReservationKey::Order(o) => write!(f, "orderId {o}"),
            ReservationKey::Id(id) => write!(f, "reservationId {id}"),
        }
    }
}

/// Stock an item shard holds for one reservation: per SKU, the units held at each
/// location (`committed` is unused here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub order_id: OrderId,
    /// Usually one allocation, kept inline (see [`OneOrMany`]).
    pub allocations: OneOrMany<Allocation>,
}

impl Hold {
    /// Units of `sku` this hold keeps, over all locations.
    pub fn quantity_of(&self, sku: &Sku) -> u64 {
        self.allocations.iter().filter(|a| &a.sku == sku).map(|a| a.quantity).sum()
    }
}

/// The home shard named in a reservation id's text as a client gave it, if it is
/// well formed enough to route. Lax on purpose (it only routes): the home shard then
/// looks the text up with the strict [`ReservationId::parse`].
pub fn shard_of_reservation_id(id: &str) -> Option<usize> {
    let mut parts = id.split('-');
    let first = parts.next()?;
    let shard = parts.next()?;
    if first.len() != 8 || shard.len() != 4 || parts.count() != 3 || id.len() != 36 {
        return None;
    }
    usize::from_str_radix(shard, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_id_key_is_1_to_64_bytes() {
        assert_eq!(ReservationKey::id("abc", "reservationId"), Ok(ReservationKey::Id("abc".into())));
        assert!(ReservationKey::id(&"r".repeat(MAX_RESERVATION_ID_LEN), "reservationId").is_ok());
        for bad in [String::new(), "r".repeat(MAX_RESERVATION_ID_LEN + 1)] {
            let e = ReservationKey::id(&bad, "reservationId").unwrap_err();
            assert!(matches!(&e, EngineError::Validation { field, .. } if field == "reservationId"), "{e:?}");
        }
    }

    #[test]
    fn shard_of_reservation_id_routes_text() {
        let id = ReservationId::new(1_700_000_000_123, 7, 0x1234_5678_9abc).to_string();
        assert_eq!(shard_of_reservation_id(&id), Some(7));
        assert_eq!(shard_of_reservation_id("nope"), None);
        assert_eq!(shard_of_reservation_id("zzzzzzzz-zzzz-0000-0000-000000000000"), None);
    }
}
