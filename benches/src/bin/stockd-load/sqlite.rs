//! The SQLite peer of `stockd-load --target sqlite`: the issue-7 reference of "SQLite
//! with synchronous=FULL". One database file (in `--data-dir`, else the run's temp
//! dir), one connection per client, WAL journal, `synchronous=FULL` (every commit
//! fsyncs), `BEGIN IMMEDIATE` transactions (SQLite has one writer at a time; the busy
//! timeout makes the others wait rather than fail). Reserve = conditional UPDATE +
//! INSERT in one transaction, as the PostgreSQL peer does.

use crate::clients::{Client, Figures, INSUFFICIENT};
use rusqlite::{params, Connection, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL, \
     available INTEGER NOT NULL, reserved INTEGER NOT NULL, sold INTEGER NOT NULL); \
     CREATE TABLE IF NOT EXISTS reservations (order_id TEXT PRIMARY KEY, sku TEXT NOT NULL, \
     quantity INTEGER NOT NULL, status TEXT NOT NULL);";

pub struct Sqlite {
    conn: Connection,
}

fn sql(e: rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(c) => format!("SQL_{c:?}"),
        None => format!("SQL: {e}"),
    }
}

impl Sqlite {
    /// Opens the database at `path`; `schema` creates the tables (the setup client).
    pub fn open(path: &Path, schema: bool) -> Result<Sqlite, String> {
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        if schema {
            conn.execute_batch(SCHEMA).map_err(sql)?;
        }
        Ok(Sqlite { conn })
    }

    /// Runs `f` in one IMMEDIATE transaction, committed (and so fsynced) before it
    /// returns; an `Err` from `f` rolls back.
    fn write<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T, String>) -> Result<T, String> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let out = f(&tx)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// Moves an ACTIVE reservation to `status`, applying `settle` to its item.
    fn finish(&mut self, order_id: &str, status: &str, settle: &str) -> Result<(), String> {
        self.write(|tx| {
            let found: Option<(String, i64)> = tx
                .prepare_cached("UPDATE reservations SET status = ?2 WHERE order_id = ?1 AND status = 'ACTIVE' RETURNING sku, quantity")
                .and_then(|mut s| s.query_row(params![order_id, status], |r| Ok((r.get(0)?, r.get(1)?))))
                .map(Some)
                .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })
                .map_err(sql)?;
            let (sku, q) = found.ok_or("NOT_ACTIVE")?;
            tx.prepare_cached(settle).and_then(|mut s| s.execute(params![q, sku])).map_err(sql)?;
            Ok(())
        })
    }
}

impl Client for Sqlite {
    fn set_item(&mut self, sku: &str, on_hand: u64) -> Result<(), String> {
        let n = on_hand as i64;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO items (sku, on_hand, available, reserved, sold) VALUES (?1, ?2, ?2, 0, 0) \
                 ON CONFLICT (sku) DO UPDATE SET on_hand = ?2, available = ?2, reserved = 0, sold = 0",
                params![sku, n],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    fn reserve(&mut self, order_id: &str, sku: &str, quantity: u64) -> Result<(), String> {
        let q = quantity as i64;
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE items SET available = available - ?1, reserved = reserved + ?1 \
                     WHERE sku = ?2 AND available >= ?1",
                )
                .and_then(|mut s| s.execute(params![q, sku]))
                .map_err(sql)?;
            if changed != 1 {
                return Err(INSUFFICIENT.into());
            }
            tx.prepare_cached(
                "INSERT INTO reservations (order_id, sku, quantity, status) VALUES (?1, ?2, ?3, 'ACTIVE')",
            )
            .and_then(|mut s| s.execute(params![order_id, sku, q]))
            .map_err(sql)?;
            Ok(())
        })
    }

    fn commit(&mut self, order_id: &str, _sku: &str) -> Result<(), String> {
        self.finish(
            order_id,
            "COMMITTED",
            "UPDATE items SET reserved = reserved - ?1, on_hand = on_hand - ?1, sold = sold + ?1 WHERE sku = ?2",
        )
    }

    fn release(&mut self, order_id: &str, _sku: &str) -> Result<(), String> {
        self.finish(
            order_id,
            "RELEASED",
            "UPDATE items SET reserved = reserved - ?1, available = available + ?1 WHERE sku = ?2",
        )
    }

    fn get_item(&mut self, sku: &str) -> Result<Figures, String> {
        let row = self.conn.query_row(
            "SELECT on_hand, available, reserved, sold FROM items WHERE sku = ?1",
            params![sku],
            |r| Ok([r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
        );
        match row {
            Ok(v) => {
                Ok(Figures { on_hand: v[0] as u64, available: v[1] as u64, reserved: v[2] as u64, sold: v[3] as u64 })
            }
            Err(rusqlite::Error::QueryReturnedNoRows) => Err("ITEM_NOT_FOUND".into()),
            Err(e) => Err(sql(e)),
        }
    }
}
