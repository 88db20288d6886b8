//! Location steps of the test generator: a warehouse table, stock set and adjusted at
//! named locations, transfers (some in transit), receipts of units in transit, the
//! random placement (strategy, delivery region, named locations) of reservations, and
//! partial commits, which split committed units over a line's allocations.

use super::Gen;
use stockd_engine::location::{AllocationStrategy, LocationId, Placement, Warehouse};
use stockd_engine::shard_of_sku;
use stockd_engine::{Adjust, SetItem, Transfer};
use stockd_engine::{AdjustReason, Command, Item, Sku};

/// Three warehouses: `wh-n1` (north, priority 1), `wh-n2` (north, 2), `wh-s1` (south, 1).
pub fn warehouses() -> Vec<Warehouse> {
    let wh = |id: &str, region: &str, priority| Warehouse {
        id: LocationId::parse(id, "id").expect("valid id"),
        name: id.to_uppercase(),
        region: Some(region.to_string()),
        priority,
    };
    vec![wh("wh-n1", "north", 1), wh("wh-n2", "north", 2), wh("wh-s1", "south", 1)]
}

const REGIONS: [&str; 3] = ["north", "south", "west"];

impl Gen {
    /// Makes location steps part of the workload (`step`): logs `warehouses` on every
    /// shard, as `Engine::set_warehouses` does, and uses their ids (and `default`).
    pub fn with_locations(&mut self, warehouses: Vec<Warehouse>) {
        for s in 0..self.shards() {
            self.exec(s, Command::SetWarehouses { warehouses: warehouses.clone() });
        }
        self.locations = warehouses.into_iter().map(|w| w.id).collect();
    }

    fn item_of(&self, sku: &Sku) -> Option<Item> {
        self.states[shard_of_sku(sku, self.shards())].item(sku).cloned()
    }

    /// One of the warehouses or the default location.
    fn any_location(&mut self) -> LocationId {
        let i = self.rand(self.locations.len() as u64 + 1) as usize;
        self.locations.get(i).cloned().unwrap_or(LocationId::DEFAULT)
    }

    /// A location of `item` whose figure `f` is positive, at random.
    fn location_with(
        &mut self,
        item: &Item,
        f: impl Fn(&stockd_engine::location::LocationStock) -> u64,
    ) -> Option<(LocationId, u64)> {
        let with: Vec<(LocationId, u64)> =
            item.locations().iter().filter(|l| f(l) > 0).map(|l| (l.location.clone(), f(l))).collect();
        if with.is_empty() {
            return None;
        }
        let i = self.rand(with.len() as u64) as usize;
        Some(with[i].clone())
    }

    pub fn set_item_at(&mut self, sku: &Sku, location: LocationId, on_hand: u64, incoming: Option<u64>) {
        let cmd = Command::SetItem(SetItem {
            sku: sku.clone(),
            on_hand,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(location),
            incoming,
        });
        self.exec(shard_of_sku(sku, self.shards()), cmd);
    }

    pub fn transfer(&mut self, sku: &Sku, from: LocationId, to: LocationId, quantity: u64, in_transit: bool) {
        let note = in_transit.then(|| "by truck".to_string());
        let cmd = Command::Transfer(Transfer {
            sku: sku.clone(),
            from,
            to,
            quantity,
            in_transit,
            note,
            idempotency_key: None,
        });
        self.exec(shard_of_sku(sku, self.shards()), cmd);
    }

    pub fn receive(&mut self, sku: &Sku, location: LocationId, quantity: u64) {
        let cmd = Command::ReceiveIncoming { sku: sku.clone(), location, quantity, idempotency_key: None };
        self.exec(shard_of_sku(sku, self.shards()), cmd);
    }

    /// Sets, adjusts, transfers or receives stock of a random SKU at its locations.
    pub(super) fn location_step(&mut self) {
        if self.skus.is_empty() {
            return;
        }
        let i = self.rand(self.skus.len() as u64) as usize;
        let sku = self.skus[i].clone();
        let Some(item) = self.item_of(&sku) else { return };
        match self.rand(100) {
            0..=24 => {
                let location = self.any_location();
                let on_hand = self.rand(13);
                let incoming = (self.rand(3) == 0).then(|| self.rand(5));
                self.set_item_at(&sku, location, on_hand, incoming);
            }
            25..=39 => {
                let delta = self.rand(12) as i64 - 3;
                let i = self.rand(item.location_count() as u64) as usize;
                let location = item.locations()[i].location.clone();
                if delta != 0 {
                    let reason = if delta > 0 { AdjustReason::Restock } else { AdjustReason::Lost };
                    let cmd = Command::AdjustItem(Adjust {
                        sku: sku.clone(),
                        delta,
                        reason,
                        note: None,
                        idempotency_key: None,
                        expected_version: None,
                        location: Some(location),
                    });
                    self.exec(shard_of_sku(&sku, self.shards()), cmd);
                }
            }
            40..=69 => {
                let Some((from, available)) = self.location_with(&item, |l| l.available()) else { return };
                let to = self.any_location();
                let quantity = 1 + self.rand(available.min(5));
                let in_transit = self.rand(3) == 0;
                if to != from {
                    self.transfer(&sku, from, to, quantity, in_transit);
                }
            }
            _ => {
                let Some((location, incoming)) = self.location_with(&item, |l| l.incoming) else { return };
                let quantity = 1 + self.rand(incoming);
                self.receive(&sku, location, quantity);
            }
        }
    }

    /// With locations: a random strategy, sometimes a delivery region, and sometimes a
    /// line that names one of its item's locations. Without: the default (no random
    /// draw, so workloads without locations stay as they were).
    pub(super) fn random_placement(&mut self, lines: &[(Sku, u64)]) -> Placement {
        if self.locations.is_empty() {
            return Placement::default();
        }
        let strategy = AllocationStrategy::ALL[self.rand(3) as usize];
        let region = match self.rand(4) as usize {
            i if i < REGIONS.len() => Some(REGIONS[i].to_string()),
            _ => None,
        };
        let mut locations = Vec::new();
        for (sku, _) in lines {
            if self.rand(4) == 0 {
                if let Some(item) = self.item_of(sku) {
                    let i = self.rand(item.location_count() as u64) as usize;
                    locations.push((sku.clone(), item.locations()[i].location.clone()));
                }
            }
        }
        Placement { strategy, region, locations }
    }

    /// With locations, half the commits take fewer units than reserved (per line, a
    /// random part); otherwise every commit is in full.
    pub(super) fn random_commit(&mut self, lines: &[(Sku, u64)]) -> Option<Vec<(Sku, u64)>> {
        if self.locations.is_empty() || self.rand(2) == 0 {
            return None;
        }
        Some(lines.iter().map(|(s, q)| (s.clone(), self.rand(q + 1))).collect())
    }
}
