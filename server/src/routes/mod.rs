//! The handlers, one module per area.

pub mod history;
pub mod items;
pub mod locations;
pub mod ops;
pub mod request_rules;
pub mod reservation_admin;
pub mod reservations;
