//! Test and benchmark support (not part of the tool): writes a stockd data directory
//! the way the engine does — the same commands, applied with `ShardState::apply` and
//! logged (when they changed state) with `encode_record` through a `WalWriter` —
//! while keeping the expected state of every shard after every record. With
//! `with_locations`, the workload also stocks, transfers and receives at several
//! warehouses and reserves with placements (see `locations`).

mod locations;
pub use locations::warehouses;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use stockd_engine::location::LocationId;
use stockd_engine::offline::encode_record;
use stockd_engine::shard_of_sku;
use stockd_engine::{Adjust, ReserveLocal, SetItem};
use stockd_engine::{
    AdjustReason, Applied, Command, Millis, OrderId, Outcome, ReservationId, ReservationKey, ShardState, Sku,
};
use stockd_wal::{Durability, WalConfig, WalWriter};

/// Figures of one item: (onHand, available, reserved, sold).
pub type Figures = (u64, u64, u64, u64);

/// One item's `incoming` and, per location (by id), `[onHand, available, reserved,
/// sold, incoming]`.
pub type LocationFigures = (u64, Vec<(String, [u64; 5])>);

/// What the generator logged, in order.
#[derive(Debug, Clone)]
pub struct Logged {
    pub shard: usize,
    pub lsn: u64,
    pub now: Millis,
    pub command: Command,
    /// The shard's items right after this record (only if `track` was set).
    pub items_after: Option<BTreeMap<String, Figures>>,
    /// The shard's items' locations right after this record (only if `track` was set).
    pub locations_after: Option<BTreeMap<String, LocationFigures>>,
}

pub struct Gen {
    pub dir: PathBuf,
    pub states: Vec<ShardState>,
    writers: Vec<WalWriter>,
    lsns: Vec<u64>,
    pub now: Millis,
    rng: u64,
    pub skus: Vec<Sku>,
    active: Vec<(ReservationId, OrderId)>,
    next_order: u64,
    pub log: Vec<Logged>,
    /// Keep `log` (with item figures after each record when `track`).
    pub keep_log: bool,
    pub track: bool,
    pub syncs_every: u64,
    /// How each reservation whose holds were settled finished (from its header).
    pub finished_as: std::collections::HashMap<ReservationId, stockd_engine::ReservationStatus>,
    /// The warehouses location steps use (see `with_locations`); empty: none.
    pub locations: Vec<LocationId>,
}

pub fn figures(state: &ShardState) -> BTreeMap<String, Figures> {
    state.items().map(|i| (i.sku.to_string(), (i.on_hand, i.available(), i.reserved, i.sold))).collect()
}

pub fn location_figures(state: &ShardState) -> BTreeMap<String, LocationFigures> {
    let one = |l: &stockd_engine::location::LocationStock| {
        (l.location.to_string(), [l.on_hand, l.available(), l.reserved, l.sold, l.incoming])
    };
    state.items().map(|i| (i.sku.to_string(), (i.incoming, i.locations().iter().map(one).collect()))).collect()
}

impl Gen {
    /// A new data directory with `shards` shards.
    pub fn create(dir: &Path, shards: usize, segment_size: u64, seed: u64, t0: Millis) -> Gen {
        std::fs::create_dir_all(dir).unwrap();
        let layout = stockd_engine::DataDir::new(dir);
        std::fs::write(layout.manifest(), stockd_engine::DataDir::manifest_text(shards)).unwrap();
        let mut writers = Vec::new();
        for s in 0..shards {
            std::fs::create_dir_all(layout.shard_snapshots(s)).unwrap();
            let cfg = WalConfig { segment_size, durability: Durability::None, ..WalConfig::default() };
            writers.push(WalWriter::open(&layout.shard_wal(s), cfg).unwrap().0);
        }
        Gen {
            dir: dir.to_path_buf(),
            states: (0..shards).map(ShardState::new).collect(),
            writers,
            lsns: vec![0; shards],
            now: t0,
            rng: seed | 1,
            skus: Vec::new(),
            active: Vec::new(),
            next_order: 0,
            log: Vec::new(),
            keep_log: true,
            track: true,
            syncs_every: 1,
            finished_as: Default::default(),
            locations: Vec::new(),
        }
    }

    pub fn rand(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    pub fn shards(&self) -> usize {
        self.states.len()
    }

    /// Applies `command` on `shard` at the current time; logs it if it changed state.
    pub fn exec(&mut self, shard: usize, command: Command) -> Option<Applied> {
        let applied = self.states[shard].apply(&command, self.now).ok()?;
        if applied.changed {
            let (t, payload) = encode_record(self.now, &command);
            self.writers[shard].append(t, &payload).unwrap();
            self.lsns[shard] += 1;
            if self.lsns[shard].checked_rem(self.syncs_every) == Some(0) {
                self.writers[shard].sync().unwrap();
            }
            if self.keep_log {
                let items_after = self.track.then(|| figures(&self.states[shard]));
                let locations_after = self.track.then(|| location_figures(&self.states[shard]));
                let lsn = self.lsns[shard];
                self.log.push(Logged { shard, lsn, now: self.now, command, items_after, locations_after });
            }
        }
        Some(applied)
    }

    /// Records logged so far, all shards.
    pub fn logged(&self) -> usize {
        self.lsns.iter().sum::<u64>() as usize
    }

    pub fn sync(&mut self) {
        for w in &mut self.writers {
            w.sync().unwrap();
        }
    }

    pub fn tick(&mut self, max_ms: u64) {
        self.now += self.rand(max_ms + 1);
    }

    pub fn set_item(&mut self, sku: &str, on_hand: u64) {
        let sku = Sku::parse(sku, "sku").unwrap();
        if !self.skus.contains(&sku) {
            self.skus.push(sku.clone());
        }
        let s = shard_of_sku(&sku, self.shards());
        let cmd = Command::SetItem(SetItem::on_hand(sku, on_hand));
        self.exec(s, cmd);
    }

    pub fn adjust(&mut self, sku: &Sku, delta: i64, reason: AdjustReason) {
        let s = shard_of_sku(sku, self.shards());
        let cmd = Command::AdjustItem(Adjust {
            sku: sku.clone(),
            delta,
            reason,
            note: None,
            idempotency_key: None,
            expected_version: None,
            location: None,
        });
        self.exec(s, cmd);
    }

    fn item_shards(&self, lines: &[(Sku, u64)]) -> BTreeMap<usize, Vec<(Sku, u64)>> {
        let mut by: BTreeMap<usize, Vec<(Sku, u64)>> = BTreeMap::new();
        for (sku, q) in lines {
            by.entry(shard_of_sku(sku, self.shards())).or_default().push((sku.clone(), *q));
        }
        by
    }

    /// The engine's reserve protocol: open (home), place holds (item shards),
    /// activate (home), or roll back. Returns the reservation id if it succeeded.
    pub fn reserve(&mut self, lines: Vec<(Sku, u64)>, ttl_secs: u64) -> Option<ReservationId> {
        self.next_order += 1;
        let order = OrderId::parse(&format!("order-{}", self.next_order), "o").unwrap();
        let placement = self.random_placement(&lines);
        let item_shards = self.item_shards(&lines);
        if !self.locations.is_empty() && item_shards.len() == 1 && self.rand(2) == 0 {
            // The engine's one-step path: header and holds on the SKUs' shard.
            let shard = *item_shards.keys().next().expect("one shard");
            let cmd = Command::ReserveLocal(ReserveLocal {
                order_id: order.clone(),
                lines,
                ttl_secs,
                metadata: None,
                placement,
            });
            let Outcome::Reserved(r) = self.exec(shard, cmd)?.outcome else { return None };
            self.active.push((r.reservation_id, order));
            return Some(r.reservation_id);
        }
        // The home shard (which keeps the header) is any shard; the id names it.
        let home = self.rand(self.shards() as u64) as usize;
        let open = Command::OpenReservation { order_id: order.clone(), lines: lines.clone(), ttl_secs, metadata: None };
        let id = match self.exec(home, open)?.outcome {
            Outcome::Opened(r) => r.reservation_id,
            _ => return None,
        };
        let mut placed = Vec::new();
        let mut allocations = Vec::new();
        for (shard, l) in item_shards {
            let placement = placement.for_lines(&l);
            let cmd = Command::PlaceHold { reservation_id: id, order_id: order.clone(), lines: l, placement };
            if let Some(applied) = self.exec(shard, cmd) {
                if let Outcome::Placed { allocations: a, .. } = applied.outcome {
                    allocations.extend(a);
                }
                placed.push(shard);
            } else {
                for s in placed {
                    self.exec(s, Command::ReleaseHold { reservation_id: id });
                }
                self.exec(home, Command::AbortReservation { reservation_id: id });
                return None;
            }
        }
        allocations.sort_by_key(|a| lines.iter().position(|(s, _)| s == &a.sku));
        self.exec(home, Command::ActivateReservation { reservation_id: id, allocations });
        self.active.push((id, order));
        Some(id)
    }

    fn holds_of(&self, id: ReservationId) -> Vec<usize> {
        (0..self.shards()).filter(|s| self.states[*s].hold(id).is_some()).collect()
    }

    /// Commits (`Some(true)`), releases (`Some(false)`) or expires (`None`) a random
    /// active reservation, as the engine does (header first, then the holds).
    pub fn finish_one(&mut self, how: Option<bool>) {
        if self.active.is_empty() {
            return;
        }
        let i = self.rand(self.active.len() as u64) as usize;
        let (id, _order) = self.active.swap_remove(i);
        let home = id.shard();
        let key = ReservationKey::Id(id.to_string());
        let cmd = match how {
            Some(true) => {
                let lines: Vec<(Sku, u64)> = self.states[home]
                    .reservation(&key)
                    .map(|r| r.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect())
                    .unwrap_or_default();
                let quantities = self.random_commit(&lines);
                Command::CommitReservation { key, quantities }
            }
            Some(false) => Command::ReleaseReservation { key, reason: "customer cancelled".into() },
            None => Command::ExpireReservation { key },
        };
        let Some(applied) = self.exec(home, cmd) else { return };
        let r = match applied.outcome {
            Outcome::Reservation { reservation, .. } | Outcome::ExpiredOnAccess(reservation) => reservation,
            _ => return,
        };
        self.settle(&r);
    }

    fn settle(&mut self, r: &stockd_engine::Reservation) {
        if self.keep_log {
            self.finished_as.insert(r.reservation_id, r.status);
        }
        for s in self.holds_of(r.reservation_id) {
            let cmd = if r.status == stockd_engine::ReservationStatus::Committed {
                let committed = r
                    .lines
                    .iter()
                    .filter(|l| shard_of_sku(&l.sku, self.shards()) == s)
                    .map(|l| (l.sku.clone(), l.committed))
                    .collect();
                Command::CommitHold { reservation_id: r.reservation_id, committed }
            } else {
                Command::ReleaseHold { reservation_id: r.reservation_id }
            };
            self.exec(s, cmd);
        }
    }

    /// `ExpireDue` on every shard, then release the holds of what expired.
    pub fn expire_due(&mut self) {
        for s in 0..self.shards() {
            let Some(applied) = self.exec(s, Command::ExpireDue { retention_ms: 3_600_000 }) else { continue };
            if let Outcome::Expired { expired, .. } = applied.outcome {
                for r in expired {
                    self.active.retain(|(id, _)| *id != r.reservation_id);
                    self.settle(&r);
                }
            }
        }
    }

    /// A random workload step over `self.skus`; with `locations`, a third of the steps
    /// are location steps.
    pub fn step(&mut self) {
        self.tick(40);
        if !self.locations.is_empty() && self.rand(3) == 0 {
            self.location_step();
            return;
        }
        let roll = self.rand(100);
        let pick = |g: &mut Gen| {
            let i = g.rand(g.skus.len() as u64) as usize;
            g.skus[i].clone()
        };
        match roll {
            0..=44 => {
                let n = 1 + self.rand(3);
                let mut lines: Vec<(Sku, u64)> = Vec::new();
                for _ in 0..n {
                    let sku = pick(self);
                    if !lines.iter().any(|(s, _)| s == &sku) {
                        lines.push((sku, 1 + self.rand(4)));
                    }
                }
                let ttl = 1 + self.rand(30);
                self.reserve(lines, ttl);
            }
            45..=69 => self.finish_one(Some(true)),
            70..=81 => self.finish_one(Some(false)),
            82..=84 => self.finish_one(None),
            85..=92 => {
                let sku = pick(self);
                let delta = self.rand(40) as i64 - 10;
                let reason = if delta > 0 { AdjustReason::Restock } else { AdjustReason::Damaged };
                if delta != 0 {
                    self.adjust(&sku, delta, reason);
                }
            }
            93..=95 => {
                self.tick(5000);
                self.expire_due();
            }
            _ => {
                let sku = pick(self);
                let on_hand = 20 + self.rand(100);
                self.set_item(&sku.to_string(), on_hand);
            }
        }
    }
}
