//! The allocation cases shared by the `allocation` criterion bench and the
//! `allocation_cost` instruction-count example: one hot SKU whose stock sits at one
//! location (the default, as before locations existed) or over four warehouses,
//! reserved by each strategy, with and without a region, or at a named location.

use crate::{must, sku, T0};
use stockd_engine::SetItem;
use stockd_engine::{AllocationStrategy, Command, LocationId, Placement, ShardState, Warehouse};

fn loc(s: &str) -> LocationId {
    LocationId::parse(s, "location").expect("valid location")
}

/// (id, region, priority): the table every case runs under.
pub const WAREHOUSES: [(&str, &str, u32); 4] =
    [("wh-a", "north", 3), ("wh-b", "south", 1), ("wh-c", "north", 2), ("wh-d", "south", 4)];

/// A case: its name, where the hot SKU's stock is (`None`: the default location) and
/// the placement every reservation carries.
pub struct AllocationCase {
    pub name: &'static str,
    pub locations: Vec<Option<&'static str>>,
    pub placement: Placement,
}

pub fn allocation_cases() -> Vec<AllocationCase> {
    let four: Vec<Option<&'static str>> = WAREHOUSES.iter().map(|w| Some(w.0)).collect();
    let placement = |strategy, region: Option<&str>, named: Option<&str>| Placement {
        strategy,
        region: region.map(str::to_owned),
        locations: named.map(|n| (sku(0), loc(n))).into_iter().collect(),
    };
    let case = |name, locations, placement| AllocationCase { name, locations, placement };
    vec![
        case("one_location", vec![None], Placement::default()),
        case("four_priority", four.clone(), placement(AllocationStrategy::Priority, None, None)),
        case("four_priority_region", four.clone(), placement(AllocationStrategy::Priority, Some("north"), None)),
        case("four_most_available", four.clone(), placement(AllocationStrategy::MostAvailable, None, None)),
        case("four_single_location", four.clone(), placement(AllocationStrategy::SingleLocationOnly, None, None)),
        case("four_named", four, placement(AllocationStrategy::Priority, None, Some("wh-c"))),
    ]
}

/// A shard with the hot SKU `sku(0)` holding `on_hand` units at each of `locations`,
/// under the four-warehouse table.
pub fn hot_sku(locations: &[Option<&str>], on_hand: u64) -> ShardState {
    let mut state = ShardState::new(0);
    let table = WAREHOUSES
        .iter()
        .map(|(id, region, priority)| Warehouse {
            id: loc(id),
            name: id.to_uppercase(),
            region: Some((*region).into()),
            priority: *priority,
        })
        .collect();
    must(&mut state, &Command::SetWarehouses { warehouses: table }, T0);
    for l in locations {
        let cmd = Command::SetItem(SetItem { location: l.map(loc), ..SetItem::on_hand(sku(0), on_hand) });
        must(&mut state, &cmd, T0);
    }
    state
}
