//! `--default-ttl` and `--max-ttl` on the real binary (issue 15, "Holds longer than a
//! day"): a 3-day hold is accepted under `--max-ttl 30d`, the default applies to a
//! request without `expiresIn`, anything over the max is a 400 naming `expiresIn`
//! (reserve and extend), and bad values of either flag stop the start with a message
//! naming the flag.

mod common;
use common::*;
use std::process::Command;
use stockd_engine::time::parse_rfc3339;

const INV: &str = "/api/v1/inventory";
const DAY_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn millis(v: &serde_json::Value) -> u64 {
    parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"))).unwrap()
}

#[test]
fn long_holds_within_the_configured_max() {
    let s = Server::start(&["--durability", "none", "--max-ttl", "30d", "--default-ttl", "1h"]);
    assert_ok(s.put(&format!("{INV}/items/LONG"), r#"{"onHand": 10}"#), 201);

    let before = now_ms();
    let r = assert_ok(
        s.post(
            &format!("{INV}/reserve"),
            r#"{"orderId":"o-3d","items":[{"sku":"LONG","quantity":2}],"expiresIn":259200}"#,
        ),
        201,
    );
    let after = now_ms();
    let expires = millis(&r["expiresAt"]);
    assert!((before + 3 * DAY_MS..=after + 3 * DAY_MS).contains(&expires), "{r}");
    let got = assert_ok(s.get(&format!("{INV}/reservations/o-3d")), 200);
    assert_eq!(millis(&got["expiresAt"]) - millis(&got["createdAt"]), 3 * DAY_MS, "{got}");

    // No expiresIn: the server's --default-ttl (1 h).
    assert_ok(s.post(&format!("{INV}/reserve"), r#"{"orderId":"o-def","items":[{"sku":"LONG","quantity":1}]}"#), 201);
    let got = assert_ok(s.get(&format!("{INV}/reservations/o-def")), 200);
    assert_eq!(millis(&got["expiresAt"]) - millis(&got["createdAt"]), 3_600_000, "{got}");

    // Over --max-ttl (30 d = 2,592,000 s): 400 naming expiresIn, nothing reserved.
    let details = assert_error(
        s.post(
            &format!("{INV}/reserve"),
            r#"{"orderId":"o-over","items":[{"sku":"LONG","quantity":1}],"expiresIn":2592001}"#,
        ),
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(details["field"], "expiresIn", "{details}");
    assert_error(s.get(&format!("{INV}/reservations/o-over")), 404, "RESERVATION_NOT_FOUND");
    // Exactly the max is accepted.
    assert_ok(
        s.post(
            &format!("{INV}/reserve"),
            r#"{"orderId":"o-max","items":[{"sku":"LONG","quantity":1}],"expiresIn":2592000}"#,
        ),
        201,
    );

    // Extend: up to creation + max; past it, 400 naming expiresIn. (Once the clock
    // has moved past o-max's creation, a full max from now ends past the cap.)
    let created = millis(&assert_ok(s.get(&format!("{INV}/reservations/o-max")), 200)["createdAt"]);
    while now_ms() <= created + 1 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let e = assert_ok(s.post(&format!("{INV}/extend"), r#"{"orderId":"o-3d","expiresIn":864000}"#), 200);
    assert!(millis(&e["expiresAt"]) >= before + 10 * DAY_MS, "{e}");
    let details = assert_error(
        s.post(&format!("{INV}/extend"), r#"{"orderId":"o-max","expiresIn":2592000}"#),
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(details["field"], "expiresIn", "{details}");
    let details = assert_error(
        s.post(&format!("{INV}/extend"), r#"{"orderId":"o-3d","expiresIn":2592001}"#),
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(details["field"], "expiresIn", "{details}");
    assert_eq!(s.stop(), Some(0));
}

#[test]
fn bad_ttl_flags_stop_the_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&["--default-ttl", "0"], &[], "--default-ttl"),
        (&["--max-ttl", "abc"], &[], "--max-ttl"),
        (&["--max-ttl", "366d"], &[], "--max-ttl"),
        (&["--default-ttl", "2d", "--max-ttl", "1d"], &[], "--default-ttl"),
        (&[], &[("STOCKD_MAX_TTL", "10m")], "--default-ttl"), // under the 15 m default
        (&[], &[("STOCKD_DEFAULT_TTL", "2h"), ("STOCKD_MAX_TTL", "1h")], "--default-ttl"),
    ];
    for (args, env, flag) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_stockd"))
            .args(["serve", "--durability", "none", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .envs(env.iter().copied())
            .env_remove("STOCKD_LISTEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} started");
        assert!(stderr.contains(flag), "{args:?} {env:?}: {stderr}");
    }
}
