//! Validated identifiers: `Sku` and `OrderId`.

use crate::error::EngineError;
use crate::limits::{MAX_ORDER_ID_LEN, MAX_SKU_LEN};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The characters besides ASCII letters and digits a SKU or a location id may hold.
pub const ID_PUNCTUATION: [char; 5] = ['.', '_', ':', '/', '-'];

/// Whether `c` may appear in a SKU or a location id: `[A-Za-z0-9._:/-]`.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ID_PUNCTUATION.contains(&c)
}

/// A stock-keeping unit: 1–128 bytes of `[A-Za-z0-9._:/-]`.
///
/// Shared text (`Arc<str>`): a SKU is copied into every line, hold and allocation that
/// names it, and a clone is a reference count, not an allocation and a copy.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sku(Arc<str>);

impl Sku {
    /// Checks the SKU rules; `field` names the input in the error.
    pub fn parse(s: &str, field: &str) -> Result<Sku, EngineError> {
        if s.is_empty() || s.len() > MAX_SKU_LEN {
            return Err(EngineError::validation(
                field,
                format!("sku must be 1 to {MAX_SKU_LEN} bytes, got {}", s.len()),
            ));
        }
        if let Some(c) = s.chars().find(|c| !is_id_char(*c)) {
            return Err(EngineError::validation(field, format!("sku may hold only [A-Za-z0-9._:/-], found {c:?}")));
        }
        Ok(Sku(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both share one text (not merely equal text).
    pub fn shares_text_with(&self, other: &Sku) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's order id: 1–128 bytes of printable ASCII without spaces. Shared text,
/// like [`Sku`]: the header, the hold, the orderId index and replies share one copy.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Arc<str>);

impl OrderId {
    pub fn parse(s: &str, field: &str) -> Result<OrderId, EngineError> {
        if s.is_empty() || s.len() > MAX_ORDER_ID_LEN {
            return Err(EngineError::validation(
                field,
                format!("orderId must be 1 to {MAX_ORDER_ID_LEN} bytes, got {}", s.len()),
            ));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EngineError::validation(field, "orderId may hold only printable ASCII without spaces"));
        }
        Ok(OrderId(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both share one text (not merely equal text).
    pub fn shares_text_with(&self, other: &OrderId) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_rules() {
        assert!(Sku::parse("ABC-1:red/XL_2.0", "sku").is_ok());
        assert!(Sku::parse("", "sku").is_err());
        assert!(Sku::parse("a b", "sku").is_err());
        assert!(Sku::parse("é", "sku").is_err());
        assert!(Sku::parse(&"a".repeat(128), "sku").is_ok());
        let err = Sku::parse(&"a".repeat(129), "items[0].sku").unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR");
        assert!(err.to_string().contains("items[0].sku"));
    }

    #[test]
    fn order_id_rules() {
        assert!(OrderId::parse("f47ac10b-58cc-4372-a567-0e02b2c3d479", "orderId").is_ok());
        assert!(OrderId::parse("", "orderId").is_err());
        assert!(OrderId::parse("a b", "orderId").is_err());
        assert!(OrderId::parse(&"x".repeat(129), "orderId").is_err());
    }
}
