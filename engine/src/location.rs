//! Locations (warehouses) and allocation: where a SKU's units are, and which of them a
//! reservation takes.
//!
//! Every item keeps its stock per location ([`LocationStock`]); the item-level figures
//! are the sums. An item nobody placed anywhere has one location, [`LocationId::DEFAULT`]
//! (`"default"`), so single-warehouse users never see the difference. All locations of
//! a SKU live on the SKU's shard, so allocation is part of the shard's pure transition
//! function: [`allocate`] reads only the item, the request's [`Placement`] and the
//! shard's warehouse table (itself logged state), so replay makes the same choice.

use crate::error::EngineError;
use crate::sku::Sku;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// Longest location (warehouse) id, in bytes: `[A-Za-z0-9._:/-]{1,64}`.
pub const MAX_LOCATION_LEN: usize = 64;
/// Most locations one item may stock.
pub const MAX_LOCATIONS_PER_ITEM: usize = 64;
/// Most warehouses a warehouses file may list.
pub const MAX_WAREHOUSES: usize = 1_024;
/// Longest region name and warehouse name, bytes.
pub const MAX_REGION_LEN: usize = 64;
pub const MAX_WAREHOUSE_NAME_LEN: usize = 256;

/// A location (warehouse) id. The default location is stored as `None` (no heap
/// allocation for the common one-location item; it sorts first) and shown as
/// `"default"`. Shared text (`Arc<str>`, 16 bytes): every allocation and hold that
/// names a location shares the item's copy.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LocationId(Option<Arc<str>>);

impl LocationId {
    /// The location of stock nobody placed anywhere.
    pub const DEFAULT: LocationId = LocationId(None);
    pub const DEFAULT_NAME: &'static str = "default";

    /// Checks the id rules; `field` names the input in the error. `"default"` is the
    /// default location.
    pub fn parse(s: &str, field: &str) -> Result<LocationId, EngineError> {
        if s.is_empty() || s.len() > MAX_LOCATION_LEN {
            return Err(EngineError::validation(
                field,
                format!("location must be 1 to {MAX_LOCATION_LEN} bytes, got {}", s.len()),
            ));
        }
        if let Some(c) = s.chars().find(|c| !crate::sku::is_id_char(*c)) {
            return Err(EngineError::validation(
                field,
                format!("location may hold only [A-Za-z0-9._:/-], found {c:?}"),
            ));
        }
        if s == Self::DEFAULT_NAME {
            return Ok(Self::DEFAULT);
        }
        Ok(LocationId(Some(Arc::from(s))))
    }

    pub fn is_default(&self) -> bool {
        self.0.is_none()
    }

    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or(Self::DEFAULT_NAME)
    }
}

impl fmt::Debug for LocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for LocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LocationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The raw form (empty = default) keeps WAL records and snapshots small.
        s.serialize_str(self.0.as_deref().unwrap_or(""))
    }
}

impl<'de> Deserialize<'de> for LocationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LocationId, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s == Self::DEFAULT_NAME {
            return Ok(Self::DEFAULT);
        }
        LocationId::parse(&s, "location").map_err(serde::de::Error::custom)
    }
}

/// One location's share of an item. `available = on_hand - reserved`;
/// `reserved <= on_hand` always. `incoming` is in transit: counted nowhere else and
/// never sellable until received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationStock {
    pub location: LocationId,
    pub on_hand: u64,
    pub reserved: u64,
    pub sold: u64,
    pub incoming: u64,
}

impl LocationStock {
    pub fn new(location: LocationId) -> LocationStock {
        LocationStock { location, on_hand: 0, reserved: 0, sold: 0, incoming: 0 }
    }

    pub fn available(&self) -> u64 {
        self.on_hand - self.reserved
    }
}

/// A warehouse from the warehouses file. A lower `priority` is tried first (as in
/// seed 004: priority 1 before 2); ties go by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: LocationId,
    pub name: String,
    pub region: Option<String>,
    pub priority: u32,
}

/// Checks a warehouse table: ids unique and not `default`, bounded sizes.
pub fn validate_warehouses(warehouses: &[Warehouse]) -> Result<(), EngineError> {
    if warehouses.len() > MAX_WAREHOUSES {
        return Err(EngineError::validation("warehouses", format!("at most {MAX_WAREHOUSES} warehouses")));
    }
    for (i, w) in warehouses.iter().enumerate() {
        let field = format!("warehouses[{i}]");
        if w.id.is_default() {
            return Err(EngineError::validation(&format!("{field}.id"), "\"default\" is reserved"));
        }
        if warehouses[..i].iter().any(|o| o.id == w.id) {
            return Err(EngineError::validation(&format!("{field}.id"), format!("{} appears twice", w.id)));
        }
        if w.name.len() > MAX_WAREHOUSE_NAME_LEN {
            return Err(EngineError::validation(&format!("{field}.name"), "too long"));
        }
        if w.region.as_ref().is_some_and(|r| r.is_empty() || r.len() > MAX_REGION_LEN) {
            return Err(EngineError::validation(&format!("{field}.region"), format!("1 to {MAX_REGION_LEN} bytes")));
        }
    }
    Ok(())
}

/// How the engine picks locations for a reservation line that names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum AllocationStrategy {
    /// The highest-priority location that can fill the whole line, else split across
    /// locations in priority order.
    #[default]
    Priority,
    /// The location with the most available units if it fills the line, else split
    /// across locations from the most available down.
    MostAvailable,
    /// One location that fills the whole line (in priority order), or insufficient.
    SingleLocationOnly,
}

impl AllocationStrategy {
    pub const ALL: [AllocationStrategy; 3] = [Self::Priority, Self::MostAvailable, Self::SingleLocationOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::MostAvailable => "most-available",
            Self::SingleLocationOnly => "single-location-only",
        }
    }

    pub fn parse(s: &str) -> Option<AllocationStrategy> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Where a reservation's units should come from: part of the logged command, so the
/// choice replays identically.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    pub strategy: AllocationStrategy,
    /// Delivery region: locations in it are tried first.
    pub region: Option<String>,
    /// Lines that name their location (`sku` → the only location they may use).
    pub locations: Vec<(Sku, LocationId)>,
}

impl Placement {
    pub fn location_of(&self, sku: &Sku) -> Option<&LocationId> {
        self.locations.iter().find(|(s, _)| s == sku).map(|(_, l)| l)
    }

    /// Only the parts of this placement that concern `lines` (what one shard needs).
    pub fn for_lines(&self, lines: &[(Sku, u64)]) -> Placement {
        Placement {
            strategy: self.strategy,
            region: self.region.clone(),
            locations: self.locations.iter().filter(|(s, _)| lines.iter().any(|(k, _)| k == s)).cloned().collect(),
        }
    }
}

/// Checks a request's placement against its lines: every named location belongs to
/// a line, at most once; the region is bounded.
pub fn validate_placement(placement: &Placement, lines: &[(Sku, u64)]) -> Result<(), EngineError> {
    if placement.region.as_ref().is_some_and(|r| r.is_empty() || r.len() > MAX_REGION_LEN) {
        return Err(EngineError::validation("region", format!("must be 1 to {MAX_REGION_LEN} bytes")));
    }
    for (i, (sku, _)) in placement.locations.iter().enumerate() {
        if placement.locations[..i].iter().any(|(s, _)| s == sku) {
            return Err(EngineError::validation("location", format!("{sku} names two locations")));
        }
        if !lines.iter().any(|(s, _)| s == sku) {
            return Err(EngineError::validation("location", format!("{sku} is not a line of this request")));
        }
    }
    Ok(())
}

/// Units of one SKU a reservation holds at one location; `committed` of them sold
/// once the reservation is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub sku: Sku,
    pub location: LocationId,
    pub quantity: u64,
    pub committed: u64,
}

/// Splits `committed` units of a line over its allocations, first allocation first:
/// the deterministic rule both the header and the holds use for a partial commit.
pub fn committed_per_allocation<'a, I>(allocations: I, committed: u64) -> impl Iterator<Item = u64> + 'a
where
    I: Iterator<Item = &'a Allocation> + 'a,
{
    let mut left = committed;
    allocations.map(move |a| {
        let c = left.min(a.quantity);
        left -= c;
        c
    })
}

/// The order in which `strategy` tries an item's locations: in the delivery region
/// first (when one is given), then by warehouse priority (unknown locations, such as
/// `default` when a warehouses file exists, last), then by id; `most-available` sorts
/// by available units, most first, before priority.
fn candidate_order<'a>(
    stocks: &'a [LocationStock],
    placement: &Placement,
    warehouses: &[Warehouse],
) -> Vec<&'a LocationStock> {
    // Keys computed once per location (not per comparison): no clone, no allocation
    // beyond the one vector.
    let mut keyed: Vec<((bool, u64, u32), &LocationStock)> = stocks
        .iter()
        .map(|s| {
            let w = warehouses.iter().find(|w| w.id == s.location);
            let out_of_region = match (&placement.region, w.and_then(|w| w.region.as_ref())) {
                (Some(want), Some(have)) => want != have,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let most = match placement.strategy {
                AllocationStrategy::MostAvailable => u64::MAX - s.available(),
                _ => 0,
            };
            ((out_of_region, most, w.map_or(u32::MAX, |w| w.priority)), s)
        })
        .collect();
    // `stocks` is sorted by id, and the sort is stable: ties stay in id order.
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// Chooses where `quantity` units of the item whose locations are `stocks` come from.
/// `Err(available)` when it cannot: the most the strategy could have taken.
/// Pure: the same inputs always give the same answer.
pub fn allocate(
    stocks: &[LocationStock],
    quantity: u64,
    requested: Option<&LocationId>,
    placement: &Placement,
    warehouses: &[Warehouse],
) -> Result<Vec<(LocationId, u64)>, u64> {
    debug_assert!(quantity > 0);
    debug_assert!(stocks.windows(2).all(|w| w[0].location < w[1].location), "locations sorted by id");
    if let Some(loc) = requested {
        let available = stocks.iter().find(|s| &s.location == loc).map_or(0, LocationStock::available);
        return if available >= quantity { Ok(vec![(loc.clone(), quantity)]) } else { Err(available) };
    }
    if let [only] = stocks {
        // One location (every item nobody placed elsewhere): every strategy agrees.
        let available = only.available();
        return if available >= quantity { Ok(vec![(only.location.clone(), quantity)]) } else { Err(available) };
    }
    let order = candidate_order(stocks, placement, warehouses);
    if let Some(whole) = order.iter().find(|s| s.available() >= quantity) {
        return Ok(vec![(whole.location.clone(), quantity)]);
    }
    if placement.strategy == AllocationStrategy::SingleLocationOnly {
        return Err(order.iter().map(|s| s.available()).max().unwrap_or(0));
    }
    let total: u64 = order.iter().map(|s| s.available()).sum();
    if total < quantity {
        return Err(total);
    }
    let mut left = quantity;
    let mut out = Vec::new();
    for s in order {
        if left == 0 {
            break;
        }
        let take = s.available().min(left);
        if take > 0 {
            out.push((s.location.clone(), take));
            left -= take;
        }
    }
    debug_assert_eq!(left, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> LocationId {
        LocationId::parse(s, "location").unwrap()
    }

    fn stock(l: &str, on_hand: u64, reserved: u64) -> LocationStock {
        LocationStock { location: loc(l), on_hand, reserved, sold: 0, incoming: 0 }
    }

    fn wh(id: &str, region: &str, priority: u32) -> Warehouse {
        Warehouse { id: loc(id), name: id.to_uppercase(), region: Some(region.into()), priority }
    }

    fn seed_004() -> Vec<Warehouse> {
        vec![wh("wh-sp-001", "southeast", 1), wh("wh-rj-001", "southeast", 2), wh("wh-pr-001", "south", 1)]
    }

    fn placed(strategy: AllocationStrategy, region: Option<&str>) -> Placement {
        Placement { strategy, region: region.map(str::to_owned), locations: Vec::new() }
    }

    fn pairs(v: &[(&str, u64)]) -> Vec<(LocationId, u64)> {
        v.iter().map(|(l, q)| (loc(l), *q)).collect()
    }

    #[test]
    fn default_location_round_trips_as_default() {
        assert!(loc("default").is_default());
        assert_eq!(LocationId::DEFAULT.to_string(), "default");
        assert!(LocationId::parse("", "location").is_err());
        assert!(LocationId::parse("a b", "location").is_err());
    }

    #[test]
    fn priority_takes_the_first_location_that_fills_the_line() {
        let stocks = [stock("wh-pr-001", 10, 0), stock("wh-rj-001", 50, 0), stock("wh-sp-001", 5, 0)];
        let p = placed(AllocationStrategy::Priority, None);
        // Priority 1: wh-pr-001 and wh-sp-001 (tie broken by id), then wh-rj-001.
        assert_eq!(allocate(&stocks, 8, None, &p, &seed_004()), Ok(pairs(&[("wh-pr-001", 8)])));
        assert_eq!(allocate(&stocks, 20, None, &p, &seed_004()), Ok(pairs(&[("wh-rj-001", 20)])));
        // Nobody fills 60: split in priority order.
        assert_eq!(
            allocate(&stocks, 60, None, &p, &seed_004()),
            Ok(pairs(&[("wh-pr-001", 10), ("wh-sp-001", 5), ("wh-rj-001", 45)]))
        );
        assert_eq!(allocate(&stocks, 66, None, &p, &seed_004()), Err(65));
    }

    #[test]
    fn region_comes_first() {
        let stocks = [stock("wh-pr-001", 10, 0), stock("wh-rj-001", 50, 0), stock("wh-sp-001", 5, 0)];
        let p = placed(AllocationStrategy::Priority, Some("southeast"));
        assert_eq!(allocate(&stocks, 5, None, &p, &seed_004()), Ok(pairs(&[("wh-sp-001", 5)])));
        assert_eq!(allocate(&stocks, 8, None, &p, &seed_004()), Ok(pairs(&[("wh-rj-001", 8)])));
        let south = placed(AllocationStrategy::Priority, Some("south"));
        assert_eq!(
            allocate(&stocks, 12, None, &south, &seed_004()),
            Ok(pairs(&[("wh-rj-001", 12)])),
            "no south location fills 12; the first that does wins"
        );
    }

    #[test]
    fn most_available_and_single_location() {
        let stocks = [stock("wh-pr-001", 10, 2), stock("wh-rj-001", 30, 0), stock("wh-sp-001", 25, 0)];
        let most = placed(AllocationStrategy::MostAvailable, None);
        assert_eq!(allocate(&stocks, 3, None, &most, &seed_004()), Ok(pairs(&[("wh-rj-001", 3)])));
        assert_eq!(allocate(&stocks, 40, None, &most, &seed_004()), Ok(pairs(&[("wh-rj-001", 30), ("wh-sp-001", 10)])));
        let single = placed(AllocationStrategy::SingleLocationOnly, None);
        assert_eq!(allocate(&stocks, 26, None, &single, &seed_004()), Ok(pairs(&[("wh-rj-001", 26)])));
        assert_eq!(allocate(&stocks, 31, None, &single, &seed_004()), Err(30));
    }

    #[test]
    fn a_named_location_is_the_only_one_used() {
        let stocks = [stock("wh-pr-001", 10, 0), stock("wh-rj-001", 50, 0)];
        let p = Placement::default();
        assert_eq!(allocate(&stocks, 10, Some(&loc("wh-pr-001")), &p, &[]), Ok(pairs(&[("wh-pr-001", 10)])));
        assert_eq!(allocate(&stocks, 11, Some(&loc("wh-pr-001")), &p, &[]), Err(10));
        assert_eq!(allocate(&stocks, 1, Some(&loc("nowhere")), &p, &[]), Err(0));
    }

    #[test]
    fn without_warehouses_locations_go_by_id() {
        // As an item keeps them: sorted by id (the default location's raw id is "").
        let stocks = [stock("default", 5, 0), stock("a", 5, 0), stock("b", 5, 0)];
        let p = Placement::default();
        assert_eq!(allocate(&stocks, 12, None, &p, &[]), Ok(pairs(&[("default", 5), ("a", 5), ("b", 2)])));
    }

    #[test]
    fn partial_commit_splits_first_allocation_first() {
        let a = |l: &str, q| Allocation {
            sku: Sku::parse("S", "sku").unwrap(),
            location: loc(l),
            quantity: q,
            committed: 0,
        };
        let allocs = [a("x", 3), a("y", 4)];
        assert_eq!(committed_per_allocation(allocs.iter(), 5).collect::<Vec<_>>(), vec![3, 2]);
        assert_eq!(committed_per_allocation(allocs.iter(), 0).collect::<Vec<_>>(), vec![0, 0]);
        assert_eq!(committed_per_allocation(allocs.iter(), 7).collect::<Vec<_>>(), vec![3, 4]);
    }
}
