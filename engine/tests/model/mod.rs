//! A plain reference model of the engine: one map of items (each a map of locations),
//! one map of reservations by orderId, every operation applied whole. The sharded
//! engine must agree with it, allocation included (`allocate` here is written from
//! the rules in the docs of `stockd_engine::location`, not from its code).

use std::collections::{BTreeMap, HashMap};
use stockd_engine::limits::{MAX_LINES, MAX_QUANTITY};

/// The engine under test runs with `EngineConfig::max_ttl_secs` = this (a day, so the
/// generated TTLs reach both sides of the bound).
pub const MAX_TTL_SECS: u64 = 86_400;
use stockd_engine::{EngineError, Shortfall};

/// One location's stock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MLoc {
    pub on_hand: u64,
    pub reserved: u64,
    pub sold: u64,
    pub incoming: u64,
}

impl MLoc {
    fn available(&self) -> u64 {
        self.on_hand - self.reserved
    }
}

/// A warehouse of the table the engine runs with: (id, region, priority).
pub type MWarehouse = (&'static str, &'static str, u32);

/// Allocation strategy, as `AllocationStrategy`: 0 priority, 1 most-available,
/// 2 single-location-only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MPlacement {
    pub strategy: u8,
    pub region: Option<String>,
    pub named: Vec<(String, String)>,
}

/// A set-item request, as `SetItem` (`stale`: with an expected version that is not
/// the item's).
#[derive(Debug, Clone, Copy)]
pub struct MSet<'a> {
    pub sku: &'a str,
    pub loc: Option<&'a str>,
    pub on_hand: u64,
    pub incoming: Option<u64>,
    pub threshold: Option<u64>,
    pub mpo: Option<u64>,
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MItem {
    /// By location name ("default" for the default location).
    pub locs: BTreeMap<String, MLoc>,
    pub threshold: u64,
    pub max_per_order: Option<u64>,
    pub blocked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MStatus {
    Active,
    Committed,
    Released,
    Expired,
}

impl MItem {
    pub fn sums(&self) -> (u64, u64, u64) {
        let f = |g: fn(&MLoc) -> u64| self.locs.values().map(g).sum::<u64>();
        (f(|l| l.on_hand), f(|l| l.reserved), f(|l| l.sold))
    }
}

/// Per location: (name, onHand, reserved, sold, incoming).
pub type LocObs = Vec<(String, u64, u64, u64, u64)>;

pub fn loc_obs(i: &MItem) -> LocObs {
    i.locs.iter().map(|(n, l)| (n.clone(), l.on_hand, l.reserved, l.sold, l.incoming)).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MRes {
    pub lines: Vec<(String, u64, u64)>,               // sku, quantity, committed
    pub allocations: Vec<(String, String, u64, u64)>, // sku, location, quantity, committed
    pub status: MStatus,
    pub created_at: u64,
    pub expires_at: u64,
    pub finished_at: Option<u64>,
}

/// What an operation answered, reduced to what both sides must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obs {
    Item {
        on_hand: u64,
        reserved: u64,
        sold: u64,
        locs: LocObs,
    },
    Res {
        status: MStatus,
        lines: Vec<(String, u64, u64)>,
        allocations: Vec<(String, String, u64, u64)>,
        expires_at: u64,
    },
    Unit,
    Err(String, String),
}

/// Errors compared by code plus the detail that does not depend on ids or versions.
pub fn obs_err(e: &EngineError) -> Obs {
    let detail = match e {
        EngineError::ItemNotFound { sku } | EngineError::SalesBlocked { sku } => sku.clone(),
        EngineError::InsufficientInventory { items } => format!("{items:?}"),
        EngineError::MaxPerOrderExceeded { sku, requested, max_per_order } => {
            format!("{sku} {requested} {max_per_order}")
        }
        EngineError::NegativeInventory { sku, delta, available } => format!("{sku} {delta} {available}"),
        EngineError::ItemHasReservations { sku, reserved } => format!("{sku} {reserved}"),
        _ => String::new(),
    };
    Obs::Err(e.code().to_owned(), detail)
}

fn err(code: &str, detail: impl Into<String>) -> Obs {
    Obs::Err(code.to_owned(), detail.into())
}

/// The sort key of a location id: the engine stores the default location as "".
fn raw(name: &str) -> &str {
    if name == "default" {
        ""
    } else {
        name
    }
}

/// Where `q` units come from, or the most the strategy could take.
fn allocate(
    locs: &BTreeMap<String, MLoc>,
    q: u64,
    named: Option<&str>,
    p: &MPlacement,
    table: &[MWarehouse],
) -> Result<Vec<(String, u64)>, u64> {
    if let Some(n) = named {
        let a = locs.get(n).map_or(0, MLoc::available);
        return if a >= q { Ok(vec![(n.to_owned(), q)]) } else { Err(a) };
    }
    let wh = |n: &str| table.iter().find(|w| w.0 == n);
    let mut order: Vec<(&String, &MLoc)> = locs.iter().collect();
    order.sort_by_key(|(n, l)| {
        let outside = match (&p.region, wh(n)) {
            (None, _) => false,
            (Some(r), Some(w)) => w.1 != r,
            (Some(_), None) => true,
        };
        let most = if p.strategy == 1 { u64::MAX - l.available() } else { 0 };
        (outside, most, wh(n).map_or(u32::MAX, |w| w.2), raw(n).to_owned())
    });
    if let Some((n, _)) = order.iter().find(|(_, l)| l.available() >= q) {
        return Ok(vec![((*n).clone(), q)]);
    }
    if p.strategy == 2 {
        return Err(order.iter().map(|(_, l)| l.available()).max().unwrap_or(0));
    }
    let total: u64 = order.iter().map(|(_, l)| l.available()).sum();
    if total < q {
        return Err(total);
    }
    let mut left = q;
    let mut out = Vec::new();
    for (n, l) in order {
        let take = l.available().min(left);
        if take > 0 {
            out.push((n.clone(), take));
            left -= take;
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
pub struct Model {
    pub items: BTreeMap<String, MItem>,
    pub warehouses: Vec<MWarehouse>,
    pub res: HashMap<String, MRes>,
    /// Idempotency keys of adjustments, transfers and receipts, one space per SKU:
    /// what the key was first used for, when, and the answer.
    pub keys: HashMap<(String, String), (String, u64, Obs)>,
    pub retention_ms: u64,
}

impl Model {
    /// The answer to a keyed request that repeats one (`Some`): the first answer for
    /// the same request, IDEMPOTENCY_KEY_REUSED for another.
    fn repeat(&self, sku: &str, key: Option<&str>, what: &str) -> Option<Obs> {
        let (first, _, answer) = self.keys.get(&(sku.to_owned(), key?.to_owned()))?;
        Some(if first == what { answer.clone() } else { err("IDEMPOTENCY_KEY_REUSED", "") })
    }

    fn remember(&mut self, sku: &str, key: Option<&str>, what: String, now: u64, answer: &Obs) {
        if let Some(k) = key {
            self.keys.insert((sku.to_owned(), k.to_owned()), (what, now, answer.clone()));
        }
    }

    fn item_obs(i: &MItem) -> Obs {
        let (on_hand, reserved, sold) = i.sums();
        Obs::Item { on_hand, reserved, sold, locs: loc_obs(i) }
    }

    fn res_obs(r: &MRes) -> Obs {
        Obs::Res {
            status: r.status,
            lines: r.lines.clone(),
            allocations: r.allocations.clone(),
            expires_at: r.expires_at,
        }
    }

    /// The location a command names, or "default"; Err when the item has no default
    /// location to fall back on.
    fn resolve(item: Option<&MItem>, loc: Option<&str>) -> Result<String, Obs> {
        match (loc, item) {
            (Some(l), _) => Ok(l.to_owned()),
            (None, Some(i)) if !i.locs.contains_key("default") => Err(err("VALIDATION_ERROR", "")),
            (None, _) => Ok("default".to_owned()),
        }
    }

    /// A location not stocked yet must be the default one or a configured warehouse.
    fn may_open(&self, item: Option<&MItem>, loc: &str) -> bool {
        item.is_some_and(|i| i.locs.contains_key(loc))
            || loc == "default"
            || self.warehouses.is_empty()
            || self.warehouses.iter().any(|w| w.0 == loc)
    }

    pub fn set(&mut self, req: MSet) -> Obs {
        let MSet { sku, loc, on_hand, incoming, threshold, mpo, stale } = req;
        if stale {
            return err("VERSION_CONFLICT", "");
        }
        let loc = match Self::resolve(self.items.get(sku), loc) {
            Ok(l) => l,
            Err(o) => return o,
        };
        if !self.may_open(self.items.get(sku), &loc) {
            return err("VALIDATION_ERROR", "");
        }
        if let Some(i) = self.items.get(sku) {
            let reserved = i.locs.get(&loc).map_or(0, |l| l.reserved);
            if on_hand < reserved {
                return err("ITEM_HAS_RESERVATIONS", format!("{sku} {reserved}"));
            }
        }
        let i = self.items.entry(sku.to_owned()).or_insert_with(|| MItem {
            locs: BTreeMap::new(),
            threshold: 0,
            max_per_order: None,
            blocked: false,
        });
        let l = i.locs.entry(loc).or_default();
        l.on_hand = on_hand;
        if let Some(inc) = incoming {
            l.incoming = inc;
        }
        if let Some(t) = threshold {
            i.threshold = t;
        }
        i.max_per_order = match mpo {
            Some(0) => None,
            Some(m) => Some(m),
            None => i.max_per_order,
        };
        Self::item_obs(i)
    }

    pub fn adjust(
        &mut self,
        sku: &str,
        loc: Option<&str>,
        delta: i64,
        key: Option<&str>,
        stale: bool,
        now: u64,
    ) -> Obs {
        if delta == 0 || delta.unsigned_abs() > 1_000_000_000 {
            return err("VALIDATION_ERROR", "");
        }
        let what = format!("adjust {delta}");
        if let Some(answer) = self.repeat(sku, key, &what) {
            return answer;
        }
        let Some(i) = self.items.get(sku) else { return err("ITEM_NOT_FOUND", sku) };
        if stale {
            return err("VERSION_CONFLICT", "");
        }
        let loc = match Self::resolve(Some(i), loc) {
            Ok(l) => l,
            Err(o) => return o,
        };
        match i.locs.get(&loc) {
            None if delta < 0 => return err("NEGATIVE_INVENTORY", format!("{sku} {delta} 0")),
            None if !self.may_open(Some(i), &loc) => return err("VALIDATION_ERROR", ""),
            Some(l) if (l.on_hand as i128 + delta as i128) < l.reserved as i128 => {
                return err("NEGATIVE_INVENTORY", format!("{sku} {delta} {}", l.available()));
            }
            _ => {}
        }
        let i = self.items.get_mut(sku).unwrap();
        let l = i.locs.entry(loc).or_default();
        l.on_hand = (l.on_hand as i128 + delta as i128) as u64;
        let o = Self::item_obs(i);
        self.remember(sku, key, what, now, &o);
        o
    }

    #[allow(clippy::too_many_arguments)]
    pub fn transfer(
        &mut self,
        sku: &str,
        from: &str,
        to: &str,
        q: u64,
        in_transit: bool,
        key: Option<&str>,
        now: u64,
    ) -> Obs {
        if q == 0 || q > MAX_QUANTITY || from == to {
            return err("VALIDATION_ERROR", "");
        }
        let what = format!("transfer {from} {to} {q} {in_transit}");
        if let Some(answer) = self.repeat(sku, key, &what) {
            return answer;
        }
        let Some(i) = self.items.get(sku) else { return err("ITEM_NOT_FOUND", sku) };
        let Some(f) = i.locs.get(from) else { return err("VALIDATION_ERROR", "") };
        if f.available() < q {
            let short = vec![Shortfall { sku: sku.to_owned(), requested: q, available: f.available() }];
            return err("INSUFFICIENT_INVENTORY", format!("{short:?}"));
        }
        if !self.may_open(Some(i), to) {
            return err("VALIDATION_ERROR", "");
        }
        let i = self.items.get_mut(sku).unwrap();
        i.locs.get_mut(from).unwrap().on_hand -= q;
        let t = i.locs.entry(to.to_owned()).or_default();
        if in_transit {
            t.incoming += q;
        } else {
            t.on_hand += q;
        }
        let o = Self::item_obs(i);
        self.remember(sku, key, what, now, &o);
        o
    }

    pub fn receive(&mut self, sku: &str, loc: &str, q: u64, key: Option<&str>, now: u64) -> Obs {
        if q == 0 || q > MAX_QUANTITY {
            return err("VALIDATION_ERROR", "");
        }
        let what = format!("receive {loc} {q}");
        if let Some(answer) = self.repeat(sku, key, &what) {
            return answer;
        }
        let Some(i) = self.items.get_mut(sku) else { return err("ITEM_NOT_FOUND", sku) };
        let Some(l) = i.locs.get_mut(loc) else { return err("VALIDATION_ERROR", "") };
        if q > l.incoming {
            return err("VALIDATION_ERROR", "");
        }
        l.incoming -= q;
        l.on_hand += q;
        let o = Self::item_obs(i);
        self.remember(sku, key, what, now, &o);
        o
    }

    pub fn block(&mut self, sku: &str, blocked: bool) -> Obs {
        match self.items.get_mut(sku) {
            None => err("ITEM_NOT_FOUND", sku),
            Some(i) => {
                i.blocked = blocked;
                Self::item_obs(i)
            }
        }
    }

    pub fn delete(&mut self, sku: &str) -> Obs {
        match self.items.get(sku) {
            None => err("ITEM_NOT_FOUND", sku),
            Some(i) if i.sums().1 > 0 => err("ITEM_HAS_RESERVATIONS", format!("{sku} {}", i.sums().1)),
            Some(_) => {
                self.items.remove(sku);
                Obs::Unit
            }
        }
    }

    pub fn reserve(&mut self, order: &str, lines: &[(String, u64)], ttl: u64, p: &MPlacement, now: u64) -> Obs {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return err("VALIDATION_ERROR", "");
        }
        let mut seen = std::collections::HashSet::new();
        for (s, q) in lines {
            if *q == 0 || *q > MAX_QUANTITY || !seen.insert(s) {
                return err("VALIDATION_ERROR", "");
            }
        }
        let mut named = std::collections::HashSet::new();
        for (s, _) in &p.named {
            if !named.insert(s) || !lines.iter().any(|(l, _)| l == s) {
                return err("VALIDATION_ERROR", "");
            }
        }
        if !(1..=MAX_TTL_SECS).contains(&ttl) {
            return err("VALIDATION_ERROR", "");
        }
        if let Some(r) = self.res.get(order) {
            let mut a: Vec<(String, u64)> = r.lines.iter().map(|(s, q, _)| (s.clone(), *q)).collect();
            let mut b = lines.to_vec();
            a.sort();
            b.sort();
            return if a == b { Self::res_obs(r) } else { err("IDEMPOTENCY_KEY_REUSED", "") };
        }
        let named_of = |s: &str| p.named.iter().find(|(n, _)| n == s).map(|(_, l)| l.as_str());
        for (s, l) in &p.named {
            if !self.may_open(self.items.get(s), l) {
                return err("VALIDATION_ERROR", "");
            }
        }
        if let Some((s, _)) = lines.iter().find(|(s, _)| !self.items.contains_key(s)) {
            return err("ITEM_NOT_FOUND", s.clone());
        }
        if let Some((s, _)) = lines.iter().find(|(s, _)| self.items[s].blocked) {
            return err("SALES_BLOCKED", s.clone());
        }
        for (s, q) in lines {
            if let Some(m) = self.items[s].max_per_order {
                if *q > m {
                    return err("MAX_PER_ORDER_EXCEEDED", format!("{s} {q} {m}"));
                }
            }
        }
        let mut short = Vec::new();
        let mut allocations = Vec::new();
        for (s, q) in lines {
            match allocate(&self.items[s].locs, *q, named_of(s), p, &self.warehouses) {
                Ok(a) => allocations.extend(a.into_iter().map(|(l, n)| (s.clone(), l, n, 0))),
                Err(available) => short.push(Shortfall { sku: s.clone(), requested: *q, available }),
            }
        }
        if !short.is_empty() {
            return err("INSUFFICIENT_INVENTORY", format!("{short:?}"));
        }
        for (s, l, n, _) in &allocations {
            self.items.get_mut(s).unwrap().locs.get_mut(l).unwrap().reserved += n;
        }
        let r = MRes {
            lines: lines.iter().map(|(s, q)| (s.clone(), *q, 0)).collect(),
            allocations,
            status: MStatus::Active,
            created_at: now,
            expires_at: now + ttl * 1000,
            finished_at: None,
        };
        let o = Self::res_obs(&r);
        self.res.insert(order.to_owned(), r);
        o
    }

    fn finish(&mut self, order: &str, status: MStatus, now: u64) {
        let r = self.res.get_mut(order).unwrap();
        assert_eq!(r.status, MStatus::Active);
        r.status = status;
        r.finished_at = Some(now);
        if status == MStatus::Committed {
            // A line's committed units come from its first allocations first.
            for (s, _, c) in r.lines.clone() {
                let mut left = c;
                for a in r.allocations.iter_mut().filter(|a| a.0 == s) {
                    a.3 = left.min(a.2);
                    left -= a.3;
                }
            }
        }
        for (s, l, q, c) in r.allocations.clone() {
            let loc = self.items.get_mut(&s).unwrap().locs.get_mut(&l).unwrap();
            loc.reserved -= q;
            loc.on_hand -= c;
            loc.sold += c;
        }
    }

    fn status_err(s: MStatus) -> Obs {
        match s {
            MStatus::Committed => err("RESERVATION_COMMITTED", ""),
            MStatus::Released => err("RESERVATION_RELEASED", ""),
            MStatus::Expired | MStatus::Active => err("RESERVATION_EXPIRED", ""),
        }
    }

    /// Expires `order` if it is ACTIVE and due; true if it did.
    fn lazy_expire(&mut self, order: &str, now: u64) -> bool {
        let r = &self.res[order];
        if r.status == MStatus::Active && now >= r.expires_at {
            self.finish(order, MStatus::Expired, now);
            return true;
        }
        false
    }

    pub fn commit(&mut self, order: &str, qty: Option<&[(String, u64)]>, now: u64) -> Obs {
        if let Some(q) = qty {
            let mut seen = std::collections::HashSet::new();
            if q.is_empty() || q.iter().any(|(s, n)| *n > MAX_QUANTITY || !seen.insert(s)) {
                return err("VALIDATION_ERROR", "");
            }
        }
        if !self.res.contains_key(order) {
            return err("RESERVATION_NOT_FOUND", "");
        }
        if self.lazy_expire(order, now) {
            return err("RESERVATION_EXPIRED", "");
        }
        let r = &self.res[order];
        match r.status {
            MStatus::Active => {}
            MStatus::Committed => return Self::res_obs(r),
            s => return Self::status_err(s),
        }
        let mut committed: Vec<u64> = r.lines.iter().map(|l| l.1).collect();
        if let Some(q) = qty {
            for (s, n) in q {
                let Some(pos) = r.lines.iter().position(|l| &l.0 == s) else { return err("VALIDATION_ERROR", "") };
                if *n > r.lines[pos].1 {
                    return err("VALIDATION_ERROR", "");
                }
                committed[pos] = *n;
            }
        }
        let r = self.res.get_mut(order).unwrap();
        for (l, c) in r.lines.iter_mut().zip(committed) {
            l.2 = c;
        }
        self.finish(order, MStatus::Committed, now);
        Self::res_obs(&self.res[order])
    }

    pub fn release(&mut self, order: &str, now: u64) -> Obs {
        if !self.res.contains_key(order) {
            return err("RESERVATION_NOT_FOUND", "");
        }
        if self.lazy_expire(order, now) {
            return Self::res_obs(&self.res[order]);
        }
        match self.res[order].status {
            MStatus::Active => {
                self.finish(order, MStatus::Released, now);
                Self::res_obs(&self.res[order])
            }
            MStatus::Released | MStatus::Expired => Self::res_obs(&self.res[order]),
            s => Self::status_err(s),
        }
    }

    pub fn extend(&mut self, order: &str, ttl: u64, now: u64) -> Obs {
        if !(1..=MAX_TTL_SECS).contains(&ttl) {
            return err("VALIDATION_ERROR", "");
        }
        if !self.res.contains_key(order) {
            return err("RESERVATION_NOT_FOUND", "");
        }
        if self.lazy_expire(order, now) {
            return err("RESERVATION_EXPIRED", "");
        }
        let r = self.res.get_mut(order).unwrap();
        if r.status != MStatus::Active {
            return Self::status_err(r.status);
        }
        let new = now + ttl * 1000;
        if new > r.created_at + MAX_TTL_SECS * 1000 {
            return err("VALIDATION_ERROR", "");
        }
        r.expires_at = new;
        Self::res_obs(r)
    }

    pub fn expire(&mut self, order: &str, now: u64) -> Obs {
        let Some(r) = self.res.get(order) else { return err("RESERVATION_NOT_FOUND", "") };
        match r.status {
            MStatus::Active => {
                self.finish(order, MStatus::Expired, now);
                Self::res_obs(&self.res[order])
            }
            MStatus::Expired => Self::res_obs(r),
            s => Self::status_err(s),
        }
    }

    pub fn get(&self, order: &str) -> Obs {
        self.res.get(order).map_or_else(|| err("RESERVATION_NOT_FOUND", ""), Self::res_obs)
    }

    pub fn expire_due(&mut self, now: u64) -> usize {
        let due: Vec<String> = self
            .res
            .iter()
            .filter(|(_, r)| r.status == MStatus::Active && r.expires_at <= now)
            .map(|(o, _)| o.clone())
            .collect();
        for o in &due {
            self.finish(o, MStatus::Expired, now);
        }
        let cutoff = now.saturating_sub(self.retention_ms);
        self.res.retain(|_, r| r.finished_at.is_none_or(|f| f > cutoff));
        self.keys.retain(|_, (_, at, _)| *at > cutoff);
        due.len()
    }
}
