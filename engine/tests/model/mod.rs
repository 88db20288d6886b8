//! A plain reference model of the engine: one map of items, one map of reservations
//! by orderId, every operation applied whole. The sharded engine must agree with it.

use std::collections::{BTreeMap, HashMap};
use stockd_engine::limits::{MAX_LINES, MAX_QUANTITY, MAX_TTL_SECS};
use stockd_engine::{EngineError, Shortfall};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MItem {
    pub on_hand: u64,
    pub reserved: u64,
    pub sold: u64,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MRes {
    pub lines: Vec<(String, u64, u64)>, // sku, quantity, committed
    pub status: MStatus,
    pub created_at: u64,
    pub expires_at: u64,
    pub finished_at: Option<u64>,
}

/// What an operation answered, reduced to what both sides must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obs {
    Item { on_hand: u64, reserved: u64, sold: u64 },
    Res { status: MStatus, lines: Vec<(String, u64, u64)>, expires_at: u64 },
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

#[derive(Debug, Default)]
pub struct Model {
    pub items: BTreeMap<String, MItem>,
    pub res: HashMap<String, MRes>,
    pub adjust_keys: HashMap<(String, String), (i64, u64, Obs)>, // delta, at, answer
    pub retention_ms: u64,
}

impl Model {
    fn item_obs(i: &MItem) -> Obs {
        Obs::Item { on_hand: i.on_hand, reserved: i.reserved, sold: i.sold }
    }

    fn res_obs(r: &MRes) -> Obs {
        Obs::Res { status: r.status, lines: r.lines.clone(), expires_at: r.expires_at }
    }

    pub fn set(&mut self, sku: &str, on_hand: u64, threshold: Option<u64>, mpo: Option<u64>, stale: bool) -> Obs {
        if stale {
            return err("VERSION_CONFLICT", "");
        }
        let mpo_new = |old: Option<u64>| match mpo {
            Some(0) => None,
            Some(m) => Some(m),
            None => old,
        };
        match self.items.get_mut(sku) {
            Some(i) => {
                if on_hand < i.reserved {
                    return err("ITEM_HAS_RESERVATIONS", format!("{sku} {}", i.reserved));
                }
                i.on_hand = on_hand;
                if let Some(t) = threshold {
                    i.threshold = t;
                }
                i.max_per_order = mpo_new(i.max_per_order);
                Self::item_obs(i)
            }
            None => {
                let i = MItem {
                    on_hand,
                    reserved: 0,
                    sold: 0,
                    threshold: threshold.unwrap_or(0),
                    max_per_order: mpo_new(None),
                    blocked: false,
                };
                let o = Self::item_obs(&i);
                self.items.insert(sku.to_owned(), i);
                o
            }
        }
    }

    pub fn adjust(&mut self, sku: &str, delta: i64, key: Option<&str>, stale: bool, now: u64) -> Obs {
        if delta == 0 || delta.unsigned_abs() > 1_000_000_000 {
            return err("VALIDATION_ERROR", "");
        }
        if let Some(k) = key {
            if let Some((d, _, answer)) = self.adjust_keys.get(&(sku.to_owned(), k.to_owned())) {
                return if *d == delta { answer.clone() } else { err("IDEMPOTENCY_KEY_REUSED", "") };
            }
        }
        let Some(i) = self.items.get_mut(sku) else { return err("ITEM_NOT_FOUND", sku) };
        if stale {
            return err("VERSION_CONFLICT", "");
        }
        let new = i.on_hand as i128 + delta as i128;
        if new < i.reserved as i128 {
            return err("NEGATIVE_INVENTORY", format!("{sku} {delta} {}", i.on_hand - i.reserved));
        }
        i.on_hand = new as u64;
        let o = Self::item_obs(i);
        if let Some(k) = key {
            self.adjust_keys.insert((sku.to_owned(), k.to_owned()), (delta, now, o.clone()));
        }
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
            Some(i) if i.reserved > 0 => err("ITEM_HAS_RESERVATIONS", format!("{sku} {}", i.reserved)),
            Some(_) => {
                self.items.remove(sku);
                Obs::Unit
            }
        }
    }

    pub fn reserve(&mut self, order: &str, lines: &[(String, u64)], ttl: u64, now: u64) -> Obs {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return err("VALIDATION_ERROR", "");
        }
        let mut seen = std::collections::HashSet::new();
        for (s, q) in lines {
            if *q == 0 || *q > MAX_QUANTITY || !seen.insert(s) {
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
        let short: Vec<Shortfall> = lines
            .iter()
            .filter(|(s, q)| self.items[s].on_hand - self.items[s].reserved < *q)
            .map(|(s, q)| Shortfall {
                sku: s.clone(),
                requested: *q,
                available: self.items[s].on_hand - self.items[s].reserved,
            })
            .collect();
        if !short.is_empty() {
            return err("INSUFFICIENT_INVENTORY", format!("{short:?}"));
        }
        for (s, q) in lines {
            self.items.get_mut(s).unwrap().reserved += q;
        }
        let r = MRes {
            lines: lines.iter().map(|(s, q)| (s.clone(), *q, 0)).collect(),
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
        for (s, q, c) in r.lines.clone() {
            let i = self.items.get_mut(&s).unwrap();
            i.reserved -= q;
            if status == MStatus::Committed {
                i.on_hand -= c;
                i.sold += c;
            }
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
        self.adjust_keys.retain(|_, (_, at, _)| *at > cutoff);
        due.len()
    }
}
