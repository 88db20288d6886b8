//! The systems `stockd-load` drives, behind one small blocking interface: the
//! embedded engine, stockd's HTTP API (a minimal keep-alive HTTP/1.1 client over
//! `TcpStream`), Redis (a minimal RESP client running Lua scripts by EVALSHA) and
//! PostgreSQL (the `postgres` crate, one statement = one transaction).
//!
//! Every failure is reported as a short error code: the engine's / API's code
//! (`INSUFFICIENT_INVENTORY`, ...) or `IO`, `PROTOCOL`, `NOT_ACTIVE`, `SQL`...

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use stockd_engine::{Engine, EngineError, OrderId, ReservationKey, ReserveRequest, SetItem, Sku};

pub const INSUFFICIENT: &str = "INSUFFICIENT_INVENTORY";

/// An item's figures as the system reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub on_hand: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

pub type Res<T> = Result<T, String>;

/// One client connection (or handle). Each load thread owns one.
pub trait Client: Send {
    fn set_item(&mut self, sku: &str, on_hand: u64) -> Res<()>;
    fn reserve(&mut self, order_id: &str, sku: &str, quantity: u64) -> Res<()>;
    fn commit(&mut self, order_id: &str, sku: &str) -> Res<()>;
    fn release(&mut self, order_id: &str, sku: &str) -> Res<()>;
    fn get_item(&mut self, sku: &str) -> Res<Figures>;
    /// Reserves `quantity` of `sku` for each orderId `{prefix}{i}`, `i` in `ids`, in
    /// one submission where the system has one (the embedded engine's
    /// `reserve_many`); answers in order.
    fn reserve_batch(&mut self, prefix: &str, ids: Range<u64>, sku: &str, quantity: u64) -> Vec<Res<()>> {
        ids.map(|i| self.reserve(&format!("{prefix}{i}"), sku, quantity)).collect()
    }
}

// ---- embedded ----------------------------------------------------------------

pub struct Embedded {
    pub engine: Engine,
    /// The SKU of the last batch, parsed once.
    batch_sku: Option<Sku>,
    /// The orderId text being built (reused, so naming an order allocates nothing).
    order_text: String,
}

impl Embedded {
    pub fn new(engine: Engine) -> Embedded {
        Embedded { engine, batch_sku: None, order_text: String::new() }
    }
}

/// Appends `n` in decimal (what `format!("{n}")` writes) without the formatting
/// machinery.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

fn code(e: EngineError) -> String {
    e.code().to_owned()
}

fn parse_sku(s: &str) -> Res<Sku> {
    Sku::parse(s, "sku").map_err(code)
}

fn parse_order(s: &str) -> Res<OrderId> {
    OrderId::parse(s, "orderId").map_err(code)
}

impl Client for Embedded {
    fn set_item(&mut self, sku: &str, on_hand: u64) -> Res<()> {
        let req = SetItem::on_hand(parse_sku(sku)?, on_hand);
        self.engine.blocking().set_item(req).map(|_| ()).map_err(code)
    }

    fn reserve(&mut self, order_id: &str, sku: &str, quantity: u64) -> Res<()> {
        let req = ReserveRequest {
            order_id: parse_order(order_id)?,
            lines: vec![(parse_sku(sku)?, quantity)],
            ttl_secs: Some(3600),
            metadata: None,
            placement: Default::default(),
        };
        self.engine.blocking().reserve(req).map(|_| ()).map_err(code)
    }

    fn commit(&mut self, order_id: &str, _sku: &str) -> Res<()> {
        let key = ReservationKey::Order(parse_order(order_id)?);
        self.engine.blocking().commit(key, None).map(|_| ()).map_err(code)
    }

    fn release(&mut self, order_id: &str, _sku: &str) -> Res<()> {
        let key = ReservationKey::Order(parse_order(order_id)?);
        self.engine.blocking().release(key, None).map(|_| ()).map_err(code)
    }

    fn get_item(&mut self, sku: &str) -> Res<Figures> {
        let i = self.engine.blocking().get_item(parse_sku(sku)?).map_err(code)?;
        Ok(Figures { on_hand: i.on_hand, available: i.available(), reserved: i.reserved, sold: i.sold })
    }

    fn reserve_batch(&mut self, prefix: &str, ids: Range<u64>, sku: &str, quantity: u64) -> Vec<Res<()>> {
        let sku = match &self.batch_sku {
            Some(parsed) if parsed.as_str() == sku => parsed.clone(),
            _ => match parse_sku(sku) {
                Ok(parsed) => self.batch_sku.insert(parsed).clone(),
                Err(e) => return ids.map(|_| Err(e.clone())).collect(),
            },
        };
        let mut requests = Vec::with_capacity(ids.end.saturating_sub(ids.start) as usize);
        for i in ids.clone() {
            self.order_text.clear();
            self.order_text.push_str(prefix);
            push_decimal(&mut self.order_text, i);
            match parse_order(&self.order_text) {
                Ok(order_id) => requests.push(ReserveRequest {
                    order_id,
                    lines: vec![(sku.clone(), quantity)],
                    ttl_secs: Some(3600),
                    metadata: None,
                    placement: Default::default(),
                }),
                Err(e) => return ids.map(|_| Err(e.clone())).collect(),
            }
        }
        self.engine.blocking().reserve_many(requests).into_iter().map(|r| r.map(|_| ()).map_err(code)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::push_decimal;

    #[test]
    fn push_decimal_writes_what_format_writes() {
        for n in [0, 7, 10, 99, 100, 123_456_789, u64::MAX] {
            let mut s = String::from("load-1x2-");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("load-1x2-{n}"));
        }
    }
}

// ---- HTTP --------------------------------------------------------------------

/// `host:port` of `scheme://host:port[/...]`.
pub fn host_port(url: &str, scheme: &str) -> Res<String> {
    let rest =
        url.strip_prefix(scheme).and_then(|r| r.strip_prefix("://")).ok_or(format!("{url}: not a {scheme} URL"))?;
    let hp = rest.split('/').next().unwrap_or(rest);
    Ok(hp.to_owned())
}

/// A keep-alive HTTP/1.1 connection: writes a request, reads the status line, the
/// headers and a Content-Length body. Reconnects once if the server closed it.
pub struct Http {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
    out: Vec<u8>,
    line: String,
}

impl Http {
    pub fn connect(url: &str) -> Res<Http> {
        let mut h =
            Http { addr: host_port(url, "http")?, conn: None, out: Vec::with_capacity(512), line: String::new() };
        h.reconnect()?;
        Ok(h)
    }

    fn reconnect(&mut self) -> Res<()> {
        let s = TcpStream::connect(&self.addr).map_err(|e| format!("IO: connect {}: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| format!("IO: {e}"))?;
        self.conn = Some(BufReader::with_capacity(16 * 1024, s));
        Ok(())
    }

    /// Sends one request; returns (status, body).
    fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Res<(u16, Vec<u8>)> {
        self.out.clear();
        let _ = write!(self.out, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(b) = body {
            let _ = write!(self.out, "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len());
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
        match self.round_trip() {
            Ok(r) => Ok(r),
            // A kept-alive connection the server closed: one fresh try.
            Err(_) => {
                self.reconnect()?;
                self.round_trip().map_err(|e| format!("IO: {e}"))
            }
        }
    }

    fn round_trip(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
        let conn = self.conn.as_mut().ok_or_else(|| bad("not connected"))?;
        conn.get_mut().write_all(&self.out)?;
        self.line.clear();
        if conn.read_line(&mut self.line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let status: u16 =
            self.line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
        let mut len = None;
        let mut close = false;
        loop {
            self.line.clear();
            if conn.read_line(&mut self.line)? == 0 {
                return Err(bad("eof in headers"));
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    len = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                    close = true;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(bad("chunked responses are not supported"));
                }
            }
        }
        let mut body = vec![0; len.ok_or_else(|| bad("no content-length"))?];
        conn.read_exact(&mut body)?;
        if close {
            self.conn = None;
            self.reconnect().map_err(std::io::Error::other)?;
        }
        Ok((status, body))
    }

    /// 2xx → Ok(body); otherwise the error code of the envelope.
    fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> Res<Vec<u8>> {
        let (status, body) = self.request(method, path, body)?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let text = String::from_utf8_lossy(&body);
        let code = text
            .split("\"code\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map_or_else(|| format!("HTTP_{status}"), str::to_owned);
        Err(code)
    }
}

impl Client for Http {
    fn set_item(&mut self, sku: &str, on_hand: u64) -> Res<()> {
        self.call("PUT", &format!("/api/v1/inventory/items/{sku}"), Some(&format!("{{\"onHand\":{on_hand}}}")))
            .map(|_| ())
    }

    fn reserve(&mut self, order_id: &str, sku: &str, quantity: u64) -> Res<()> {
        let body = format!(
            "{{\"orderId\":\"{order_id}\",\"items\":[{{\"sku\":\"{sku}\",\"quantity\":{quantity}}}],\"expiresIn\":3600}}"
        );
        self.call("POST", "/api/v1/inventory/reserve", Some(&body)).map(|_| ())
    }

    fn commit(&mut self, order_id: &str, _sku: &str) -> Res<()> {
        self.call("POST", "/api/v1/inventory/commit", Some(&format!("{{\"orderId\":\"{order_id}\"}}"))).map(|_| ())
    }

    fn release(&mut self, order_id: &str, _sku: &str) -> Res<()> {
        self.call("POST", "/api/v1/inventory/release", Some(&format!("{{\"orderId\":\"{order_id}\"}}"))).map(|_| ())
    }

    fn get_item(&mut self, sku: &str) -> Res<Figures> {
        let body = self.call("GET", &format!("/api/v1/inventory/items/{sku}"), None)?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("PROTOCOL: {e}"))?;
        let field = |name: &str| v["data"][name].as_u64().ok_or(format!("PROTOCOL: no data.{name}"));
        Ok(Figures {
            on_hand: field("onHand")?,
            available: field("available")?,
            reserved: field("reserved")?,
            sold: field("sold")?,
        })
    }
}

// ---- Redis -------------------------------------------------------------------

/// Check-and-decrement: 1 reserved, 0 insufficient, -1 no such item, 2 orderId taken.
const RESERVE_LUA: &str = r#"
local avail = tonumber(redis.call('HGET', KEYS[1], 'available'))
if not avail then return -1 end
local q = tonumber(ARGV[1])
if avail < q then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
redis.call('HINCRBY', KEYS[1], 'available', -q)
redis.call('HINCRBY', KEYS[1], 'reserved', q)
redis.call('HSET', KEYS[2], 'sku', ARGV[2], 'quantity', q, 'status', 'ACTIVE')
return 1
"#;

/// ACTIVE → COMMITTED: the held units become sold. 1 done, 0 not active.
const COMMIT_LUA: &str = r#"
if redis.call('HGET', KEYS[2], 'status') ~= 'ACTIVE' then return 0 end
local q = tonumber(redis.call('HGET', KEYS[2], 'quantity'))
redis.call('HINCRBY', KEYS[1], 'reserved', -q)
redis.call('HINCRBY', KEYS[1], 'onHand', -q)
redis.call('HINCRBY', KEYS[1], 'sold', q)
redis.call('HSET', KEYS[2], 'status', 'COMMITTED')
return 1
"#;

/// ACTIVE → RELEASED: the held units go back to available. 1 done, 0 not active.
const RELEASE_LUA: &str = r#"
if redis.call('HGET', KEYS[2], 'status') ~= 'ACTIVE' then return 0 end
local q = tonumber(redis.call('HGET', KEYS[2], 'quantity'))
redis.call('HINCRBY', KEYS[1], 'reserved', -q)
redis.call('HINCRBY', KEYS[1], 'available', q)
redis.call('HSET', KEYS[2], 'status', 'RELEASED')
return 1
"#;

#[derive(Debug)]
enum Resp {
    Simple,
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

pub struct Redis {
    conn: BufReader<TcpStream>,
    out: Vec<u8>,
    shas: [String; 3],
}

impl Redis {
    pub fn connect(url: &str) -> Res<Redis> {
        let addr = host_port(url, "redis")?;
        let s = TcpStream::connect(&addr).map_err(|e| format!("IO: connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("IO: {e}"))?;
        let mut r = Redis { conn: BufReader::with_capacity(16 * 1024, s), out: Vec::new(), shas: Default::default() };
        for (i, script) in [RESERVE_LUA, COMMIT_LUA, RELEASE_LUA].into_iter().enumerate() {
            match r.cmd(&[b"SCRIPT", b"LOAD", script.as_bytes()])? {
                Resp::Bulk(Some(sha)) => r.shas[i] = String::from_utf8_lossy(&sha).into_owned(),
                other => return Err(format!("PROTOCOL: SCRIPT LOAD answered {other:?}")),
            }
        }
        Ok(r)
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Res<Resp> {
        self.out.clear();
        let _ = write!(self.out, "*{}\r\n", args.len());
        for a in args {
            let _ = write!(self.out, "${}\r\n", a.len());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        self.conn.get_mut().write_all(&self.out).map_err(|e| format!("IO: {e}"))?;
        match read_resp(&mut self.conn).map_err(|e| format!("IO: {e}"))? {
            Resp::Error(e) => Err(format!("REDIS: {e}")),
            r => Ok(r),
        }
    }

    fn script(&mut self, which: usize, keys: [&str; 2], args: &[&[u8]]) -> Res<i64> {
        let sha = self.shas[which].clone();
        let mut all: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), b"2", keys[0].as_bytes(), keys[1].as_bytes()];
        all.extend_from_slice(args);
        match self.cmd(&all)? {
            Resp::Int(n) => Ok(n),
            other => Err(format!("PROTOCOL: script answered {other:?}")),
        }
    }
}

fn read_resp(r: &mut BufReader<TcpStream>) -> std::io::Result<Resp> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1.min(line.len()));
    let num = || rest.parse::<i64>().map_err(|_| bad("bad number"));
    Ok(match kind {
        "+" => Resp::Simple,
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(num()?),
        "$" => {
            let n = num()?;
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = num()?;
            if n < 0 {
                Resp::Array(None)
            } else {
                Resp::Array(Some((0..n).map(|_| read_resp(r)).collect::<std::io::Result<_>>()?))
            }
        }
        _ => return Err(bad("unknown RESP type")),
    })
}

fn item_key(sku: &str) -> String {
    format!("stockd:item:{sku}")
}

fn order_key(order_id: &str) -> String {
    format!("stockd:order:{order_id}")
}

impl Client for Redis {
    fn set_item(&mut self, sku: &str, on_hand: u64) -> Res<()> {
        let n = on_hand.to_string();
        let key = item_key(sku);
        let args: [&[u8]; 10] = [
            b"HSET",
            key.as_bytes(),
            b"onHand",
            n.as_bytes(),
            b"available",
            n.as_bytes(),
            b"reserved",
            b"0",
            b"sold",
            b"0",
        ];
        self.cmd(&args).map(|_| ())
    }

    fn reserve(&mut self, order_id: &str, sku: &str, quantity: u64) -> Res<()> {
        let q = quantity.to_string();
        match self.script(0, [&item_key(sku), &order_key(order_id)], &[q.as_bytes(), sku.as_bytes()])? {
            1 => Ok(()),
            0 => Err(INSUFFICIENT.into()),
            -1 => Err("ITEM_NOT_FOUND".into()),
            _ => Err("DUPLICATE_ORDER".into()),
        }
    }

    fn commit(&mut self, order_id: &str, sku: &str) -> Res<()> {
        match self.script(1, [&item_key(sku), &order_key(order_id)], &[])? {
            1 => Ok(()),
            _ => Err("NOT_ACTIVE".into()),
        }
    }

    fn release(&mut self, order_id: &str, sku: &str) -> Res<()> {
        match self.script(2, [&item_key(sku), &order_key(order_id)], &[])? {
            1 => Ok(()),
            _ => Err("NOT_ACTIVE".into()),
        }
    }

    fn get_item(&mut self, sku: &str) -> Res<Figures> {
        let key = item_key(sku);
        let r = self.cmd(&[b"HMGET", key.as_bytes(), b"onHand", b"available", b"reserved", b"sold"])?;
        let Resp::Array(Some(values)) = r else { return Err(format!("PROTOCOL: HMGET answered {r:?}")) };
        let mut n = [0u64; 4];
        for (slot, v) in n.iter_mut().zip(&values) {
            let Resp::Bulk(Some(b)) = v else { return Err("ITEM_NOT_FOUND".into()) };
            *slot = String::from_utf8_lossy(b).parse().map_err(|_| "PROTOCOL: not a number".to_owned())?;
        }
        Ok(Figures { on_hand: n[0], available: n[1], reserved: n[2], sold: n[3] })
    }
}

// ---- PostgreSQL ----------------------------------------------------------------

/// The conditional UPDATE and the INSERT of the reservation, as one statement (so one
/// round trip and one transaction, committed with synchronous_commit = on).
const PG_RESERVE: &str = "WITH u AS (UPDATE items SET available = available - $1, reserved = reserved + $1 \
     WHERE sku = $2 AND available >= $1 RETURNING sku) \
     INSERT INTO reservations (order_id, sku, quantity, status) SELECT $3, sku, $1, 'ACTIVE' FROM u";
const PG_COMMIT: &str = "WITH r AS (UPDATE reservations SET status = 'COMMITTED' \
     WHERE order_id = $1 AND status = 'ACTIVE' RETURNING sku, quantity) \
     UPDATE items i SET reserved = i.reserved - r.quantity, on_hand = i.on_hand - r.quantity, \
     sold = i.sold + r.quantity FROM r WHERE i.sku = r.sku";
const PG_RELEASE: &str = "WITH r AS (UPDATE reservations SET status = 'RELEASED' \
     WHERE order_id = $1 AND status = 'ACTIVE' RETURNING sku, quantity) \
     UPDATE items i SET reserved = i.reserved - r.quantity, available = i.available + r.quantity \
     FROM r WHERE i.sku = r.sku";
pub const PG_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (sku text PRIMARY KEY, on_hand bigint NOT NULL, \
     available bigint NOT NULL, reserved bigint NOT NULL, sold bigint NOT NULL); \
     CREATE TABLE IF NOT EXISTS reservations (order_id text PRIMARY KEY, sku text NOT NULL, \
     quantity bigint NOT NULL, status text NOT NULL)";

pub struct Postgres {
    client: postgres::Client,
    reserve: postgres::Statement,
    commit: postgres::Statement,
    release: postgres::Statement,
}

fn sql(e: postgres::Error) -> String {
    match e.code() {
        Some(c) => format!("SQL_{}", c.code()),
        None => format!("SQL: {e}"),
    }
}

impl Postgres {
    /// Connects; `schema` creates the tables if missing (the setup client only, so
    /// 64 connections do not race on CREATE TABLE).
    pub fn connect(url: &str, schema: bool) -> Res<Postgres> {
        let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| format!("IO: {e}"))?;
        if schema {
            client.batch_execute(PG_SCHEMA).map_err(sql)?;
        }
        let reserve = client.prepare(PG_RESERVE).map_err(sql)?;
        let commit = client.prepare(PG_COMMIT).map_err(sql)?;
        let release = client.prepare(PG_RELEASE).map_err(sql)?;
        Ok(Postgres { client, reserve, commit, release })
    }
}

impl Client for Postgres {
    fn set_item(&mut self, sku: &str, on_hand: u64) -> Res<()> {
        let n = on_hand as i64;
        self.client
            .execute(
                "INSERT INTO items (sku, on_hand, available, reserved, sold) VALUES ($1, $2, $2, 0, 0) \
                 ON CONFLICT (sku) DO UPDATE SET on_hand = $2, available = $2, reserved = 0, sold = 0",
                &[&sku, &n],
            )
            .map(|_| ())
            .map_err(sql)
    }

    fn reserve(&mut self, order_id: &str, sku: &str, quantity: u64) -> Res<()> {
        match self.client.execute(&self.reserve, &[&(quantity as i64), &sku, &order_id]).map_err(sql)? {
            1 => Ok(()),
            _ => Err(INSUFFICIENT.into()),
        }
    }

    fn commit(&mut self, order_id: &str, _sku: &str) -> Res<()> {
        match self.client.execute(&self.commit, &[&order_id]).map_err(sql)? {
            1 => Ok(()),
            _ => Err("NOT_ACTIVE".into()),
        }
    }

    fn release(&mut self, order_id: &str, _sku: &str) -> Res<()> {
        match self.client.execute(&self.release, &[&order_id]).map_err(sql)? {
            1 => Ok(()),
            _ => Err("NOT_ACTIVE".into()),
        }
    }

    fn get_item(&mut self, sku: &str) -> Res<Figures> {
        let row = self
            .client
            .query_opt("SELECT on_hand, available, reserved, sold FROM items WHERE sku = $1", &[&sku])
            .map_err(sql)?
            .ok_or("ITEM_NOT_FOUND")?;
        let get = |i: usize| row.get::<_, i64>(i) as u64;
        Ok(Figures { on_hand: get(0), available: get(1), reserved: get(2), sold: get(3) })
    }
}
