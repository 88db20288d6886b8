//! HTTP robustness: malformed, mistyped, oversized, deeply nested, non-UTF-8, slow,
//! truncated and abandoned requests fired at the real `stockd` binary. Every answer
//! that comes is a 4xx in the JSON envelope (never a 5xx); a truncated or abandoned
//! body never takes effect; and afterwards the server still answers `/health` and a
//! reserve, and the item they all aimed at is exactly as it was.
//! The nasty ones go over a raw `TcpStream`.

mod common;
use common::{assert_error, assert_ok, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

const INV: &str = "/api/v1/inventory";

fn addr(s: &Server) -> String {
    s.base.strip_prefix("http://").unwrap().to_owned()
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(addr(s)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// Sends raw bytes and reads whatever comes back until the server closes (or 5 s
/// pass). No half-close: hyper drops the answer of a client that half-closed.
fn raw(s: &Server, bytes: &[u8]) -> String {
    let mut c = connect(s);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(bytes);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status of a raw HTTP answer (0 when the server just closed).
fn status_of(answer: &str) -> u16 {
    answer.strip_prefix("HTTP/1.1 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn request(method: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A raw request must be refused with a 4xx envelope (or the connection closed).
#[track_caller]
fn refused(s: &Server, what: &str, bytes: &[u8]) -> u16 {
    let answer = raw(s, bytes);
    let status = status_of(&answer);
    assert!(
        status == 0 || (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {}",
        answer.chars().take(300).collect::<String>()
    );
    if status != 0 && !answer.contains("Transfer-Encoding: chunked") {
        if let Some((_, body)) = answer.split_once("\r\n\r\n") {
            if !body.is_empty() {
                let v: Value = serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("{what}: answer body is not JSON ({e}): {body}"));
                assert_eq!(v["success"], false, "{what}: {v}");
            }
        }
    }
    status
}

fn item(s: &Server, sku: &str) -> Value {
    assert_ok(s.get(&format!("{INV}/items/{sku}")), 200)
}

fn reserve_body(order: &str, sku: &str, quantity: u64) -> String {
    format!(r#"{{"orderId":"{order}","items":[{{"sku":"{sku}","quantity":{quantity}}}]}}"#)
}

#[test]
fn hostile_requests_change_nothing_and_the_server_keeps_answering() {
    let s = Server::start(&["--durability", "none"]);
    assert_ok(s.put(&format!("{INV}/items/R"), r#"{"onHand": 10}"#), 201);
    assert_ok(s.put(&format!("{INV}/items/S"), r#"{"onHand": 10}"#), 201);
    assert_ok(s.post(&format!("{INV}/reserve"), &reserve_body("base", "R", 3)), 201);
    let before = item(&s, "R");

    // ---- malformed JSON and wrong types, on every body route (through a client) ----
    let bodies: &[(&str, &str)] = &[
        ("reserve", "{"),
        ("reserve", r#"{"orderId":"m1","items":[{"sku":"R","quantity":1}]"#),
        ("reserve", "[]"),
        ("reserve", "null"),
        ("reserve", r#""a string""#),
        ("reserve", r#"{"orderId":5,"items":[{"sku":"R","quantity":1}]}"#),
        ("reserve", r#"{"orderId":"m2","items":"R"}"#),
        ("reserve", r#"{"orderId":"m3","items":[{"sku":"R","quantity":-1}]}"#),
        ("reserve", r#"{"orderId":"m4","items":[{"sku":"R","quantity":1.5}]}"#),
        ("reserve", r#"{"orderId":"m5","items":[{"sku":"R","quantity":1e30}]}"#),
        ("reserve", r#"{"orderId":"m6","items":[{"sku":"R","quantity":99999999999999999999999}]}"#),
        ("reserve", r#"{"orderId":"m7","items":[{"sku":"R","quantity":"1"}]}"#),
        ("reserve", r#"{"orderId":"m8","items":[{"sku":"R","quantity":1}],"extra":true}"#),
        ("reserve", r#"{"orderId":"m9","items":[{"sku":"R","quantity":1}]} trailing"#),
        ("reserve", r#"{"orderId":"m10","items":[{"sku":"R","quantity":1}],"expiresIn":"soon"}"#),
        ("reserve", "\u{feff}{}"),
        ("commit", r#"{"orderId":["base"]}"#),
        ("commit", r#"{"orderId":"base","items":[{"sku":"R","quantity":{}}]}"#),
        ("release", r#"{"orderId":"base","reason":7}"#),
        ("extend", r#"{"orderId":"base","expiresIn":-5}"#),
        ("items/R/adjust", r#"{"delta":"5"}"#),
        ("items/R/adjust", r#"{"delta":1e400}"#),
        ("items/R/adjust", r#"{"delta":9223372036854775808}"#),
        ("check-availability", r#"{"items":[null]}"#),
    ];
    for (route, body) in bodies {
        let (status, v) = s.post(&format!("{INV}/{route}"), body);
        assert_eq!((status, &v["success"]), (400, &Value::Bool(false)), "{route} {body}: {v}");
    }
    let (status, v) = s.put(&format!("{INV}/items/R"), r#"{"onHand":"many"}"#);
    assert_eq!(status, 400, "{v}");

    // ---- deeply nested JSON (in metadata, and as the whole body) ----
    for depth in [200usize, 10_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!(r#"{{"orderId":"deep-{depth}","items":[{{"sku":"R","quantity":1}}],"metadata":{nested}}}"#);
        let (status, v) = s.post(&format!("{INV}/reserve"), &body);
        assert!(status == 400 || status == 413, "nested metadata depth {depth}: {status} {v}");
        let (status, v) = s.post(&format!("{INV}/reserve"), &nested);
        assert!(status == 400 || status == 413, "nested body depth {depth}: {status} {v}");
        let objects = format!("{}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let (status, v) = s.post(&format!("{INV}/commit"), &objects);
        assert!(status == 400 || status == 413, "nested objects depth {depth}: {status} {v}");
    }

    // ---- huge bodies: over 64 KiB, declared or chunked ----
    let padding = "x".repeat(70 * 1024);
    let huge = format!(r#"{{"orderId":"huge","items":[{{"sku":"R","quantity":1}}],"metadata":"{padding}"}}"#);
    assert_error(s.post(&format!("{INV}/reserve"), &huge), 413, "PAYLOAD_TOO_LARGE");
    // Declares 10 MB, sends 100 KiB, then hangs up.
    let mut c = connect(&s);
    let head = format!(
        "POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    let _ = c.write_all(&vec![b' '; 100 * 1024]);
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    let status = status_of(&answer);
    assert!(status == 0 || status == 413, "10 MB declared: {answer}");
    drop(c);
    // Chunked, growing past the limit.
    let mut chunked = format!(
        "POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 8 * 1024, " ".repeat(8 * 1024)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    refused(&s, "chunked > 64 KiB", &chunked);

    // ---- bytes that are not UTF-8, not JSON, not HTTP ----
    let mut bad = br#"{"orderId":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    bad.extend_from_slice(br#"","items":[{"sku":"R","quantity":1}]}"#);
    assert_eq!(
        refused(&s, "invalid UTF-8", &request("POST", &format!("{INV}/reserve"), "application/json", &bad)),
        400
    );
    let mut bad_sku = br#"{"orderId":"utf","items":[{"sku":"R"#.to_vec();
    bad_sku.extend_from_slice(&[0xed, 0xa0, 0x80]); // a UTF-16 surrogate, encoded
    bad_sku.extend_from_slice(br#"","quantity":1}]}"#);
    assert_eq!(
        refused(&s, "surrogate", &request("POST", &format!("{INV}/reserve"), "application/json", &bad_sku)),
        400
    );
    refused(&s, "NUL bytes", &request("POST", &format!("{INV}/reserve"), "application/json", &[0u8; 64]));
    let status = refused(&s, "text/plain", &request("POST", &format!("{INV}/reserve"), "text/plain", b"{}"));
    assert_eq!(status, 415);
    refused(&s, "not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n");
    refused(&s, "bad request line", b"RESERVE EVERYTHING NOW\r\n\r\n");
    refused(
        &s,
        "bad chunk size",
        format!("POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n").as_bytes(),
    );
    refused(
        &s,
        "Content-Length and chunked",
        format!(
            "POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    refused(
        &s,
        "two Content-Lengths",
        format!(
            "POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 60\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    // hyper buffers up to ~400 KiB of head; past that the connection is refused.
    let huge_header = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "h".repeat(1024 * 1024));
    refused(&s, "1 MiB header", huge_header.as_bytes());

    // ---- truncated bodies: a complete JSON reserve, but fewer bytes than declared ----
    let whole = reserve_body("truncated", "R", 2);
    for (what, half_close) in [("truncated then FIN", true), ("disconnect mid-body", false)] {
        let mut c = connect(&s);
        let head = format!(
            "POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            whole.len() + 40
        );
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(whole.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        if half_close {
            c.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            let status = status_of(&answer);
            assert!(status == 0 || (400..500).contains(&status), "{what}: {answer}");
        }
        drop(c);
    }
    // Half the body, then gone.
    let mut c = connect(&s);
    c.write_all(&request("POST", &format!("{INV}/reserve"), "application/json", whole.as_bytes())[..120]).unwrap();
    drop(c);

    // ---- slowloris: many connections trickling headers while others are served ----
    let mut slow: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut c = connect(&s);
            c.write_all(format!("POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ").as_bytes()).unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    for round in 0..5 {
        for c in &mut slow {
            let _ = c.write_all(b"a");
        }
        let t = Instant::now();
        assert_ok(s.get("/health"), 200);
        assert!(t.elapsed() < Duration::from_secs(2), "health took {:?} under slowloris", t.elapsed());
        assert_eq!(item(&s, "R"), before, "slowloris round {round}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(slow);
    // A slow *body*: a valid reserve of S, one byte every 10 ms, is still served.
    let body = reserve_body("slow-body", "S", 1);
    let mut c = connect(&s);
    c.write_all(
        format!(
            "POST {INV}/reserve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    for b in body.as_bytes() {
        c.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(status_of(&answer), 201, "slow body: {answer}");
    println!("slowloris and slow-body phase took {:?}", started.elapsed());

    // ---- afterwards: alive, R untouched, and a reserve still works ----
    assert_ok(s.get("/health"), 200);
    assert_eq!(item(&s, "R"), before, "R changed under hostile input");
    for order in ["truncated", "huge", "deep-200", "deep-10000", "utf", "m1", "m8"] {
        assert_error(s.get(&format!("{INV}/reservations/{order}")), 404, "RESERVATION_NOT_FOUND");
    }
    let r = assert_ok(s.post(&format!("{INV}/reserve"), &reserve_body("after", "R", 2)), 201);
    assert_eq!(r["status"], "ACTIVE", "{r}");
    let after = item(&s, "R");
    assert_eq!(after["reserved"].as_u64(), before["reserved"].as_u64().map(|r| r + 2), "{after}");
    assert_eq!(after["onHand"], before["onHand"], "{after}");
}
