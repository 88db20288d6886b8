//! The blocking face of the engine: the same calls, run to completion on the calling
//! thread. For embedders without an async runtime (never call it from async code).

use super::{Adjust, Engine, ItemChange, ReserveOutcome, ReserveRequest, SetItem, Transfer};
use crate::block_on;
use crate::command::{LineAvailability, ReturnSold};
use crate::error::EngineError;
use crate::item::Item;
use crate::location::{LocationId, Warehouse};
use crate::reservation::{Reservation, ReservationKey};
use crate::sku::Sku;

pub struct BlockingEngine<'a> {
    engine: &'a Engine,
}

impl<'a> BlockingEngine<'a> {
    pub(super) fn new(engine: &'a Engine) -> Self {
        BlockingEngine { engine }
    }

    pub fn set_item(&self, req: SetItem) -> Result<ItemChange, EngineError> {
        block_on(self.engine.set_item(req))
    }

    pub fn adjust(&self, req: Adjust) -> Result<ItemChange, EngineError> {
        block_on(self.engine.adjust(req))
    }

    pub fn transfer(&self, req: Transfer) -> Result<ItemChange, EngineError> {
        block_on(self.engine.transfer(req))
    }

    pub fn return_sold(&self, req: ReturnSold) -> Result<(ItemChange, u64), EngineError> {
        block_on(self.engine.return_sold(req))
    }

    pub fn receive(
        &self,
        sku: Sku,
        location: LocationId,
        quantity: u64,
        idempotency_key: Option<String>,
    ) -> Result<ItemChange, EngineError> {
        block_on(self.engine.receive(sku, location, quantity, idempotency_key))
    }

    pub fn set_warehouses(&self, warehouses: Vec<Warehouse>) -> Result<(), EngineError> {
        block_on(self.engine.set_warehouses(warehouses))
    }

    pub fn warehouses(&self) -> Result<Vec<Warehouse>, EngineError> {
        block_on(self.engine.warehouses())
    }

    pub fn set_sales_blocked(&self, sku: Sku, blocked: bool) -> Result<ItemChange, EngineError> {
        block_on(self.engine.set_sales_blocked(sku, blocked))
    }

    pub fn delete_item(&self, sku: Sku, expected_version: Option<u64>) -> Result<(), EngineError> {
        block_on(self.engine.delete_item(sku, expected_version))
    }

    pub fn get_item(&self, sku: Sku) -> Result<Item, EngineError> {
        block_on(self.engine.get_item(sku))
    }

    pub fn list_items(&self, after: Option<Sku>, limit: usize) -> Result<Vec<Item>, EngineError> {
        block_on(self.engine.list_items(after, limit))
    }

    pub fn list_items_where(
        &self,
        after: Option<Sku>,
        limit: usize,
        filter: crate::command::StockFilter,
    ) -> Result<crate::engine::ItemPage, EngineError> {
        block_on(self.engine.list_items_where(after, limit, filter))
    }

    pub fn check_availability(&self, lines: Vec<(Sku, u64)>) -> Result<Vec<LineAvailability>, EngineError> {
        block_on(self.engine.check_availability(lines))
    }

    pub fn check_availability_with(
        &self,
        lines: Vec<(Sku, u64)>,
        placement: crate::location::Placement,
    ) -> Result<Vec<LineAvailability>, EngineError> {
        block_on(self.engine.check_availability_with(lines, placement))
    }

    pub fn reserve(&self, req: ReserveRequest) -> Result<ReserveOutcome, EngineError> {
        block_on(self.engine.reserve(req))
    }

    pub fn reserve_many(&self, requests: Vec<ReserveRequest>) -> Vec<Result<ReserveOutcome, EngineError>> {
        block_on(self.engine.reserve_many(requests))
    }

    pub fn commit(&self, key: ReservationKey, quantities: Option<Vec<(Sku, u64)>>) -> Result<Reservation, EngineError> {
        block_on(self.engine.commit(key, quantities))
    }

    pub fn release(&self, key: ReservationKey, reason: Option<String>) -> Result<Reservation, EngineError> {
        block_on(self.engine.release(key, reason))
    }

    pub fn extend(&self, key: ReservationKey, ttl_secs: u64) -> Result<Reservation, EngineError> {
        block_on(self.engine.extend(key, ttl_secs))
    }

    pub fn expire(&self, key: ReservationKey) -> Result<Reservation, EngineError> {
        block_on(self.engine.expire(key))
    }

    pub fn get_reservation(&self, key: ReservationKey) -> Result<Reservation, EngineError> {
        block_on(self.engine.get_reservation(key))
    }

    pub fn list_reservations(
        &self,
        req: crate::engine::ReservationListing,
    ) -> Result<crate::engine::ReservationPage, EngineError> {
        block_on(self.engine.list_reservations(req))
    }

    pub fn list_reservations_scanning(
        &self,
        req: crate::engine::ReservationListing,
        scan_budget: usize,
    ) -> Result<crate::engine::ReservationPage, EngineError> {
        block_on(self.engine.list_reservations_scanning(req, scan_budget))
    }

    pub fn expire_due(&self) -> Result<Vec<Reservation>, EngineError> {
        block_on(self.engine.expire_due())
    }

    pub fn reconcile(&self) -> Result<crate::engine::ReconcileReport, EngineError> {
        crate::block_on(self.engine.reconcile())
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        block_on(self.engine.check_invariants())
    }
}
