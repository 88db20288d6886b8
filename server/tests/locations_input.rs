//! Location input on the real binary: the `--warehouses` file (YAML or TOML, flag or
//! environment variable; a bad one stops `stockd serve` with a message naming the
//! file and the field), `--allocation`, bad location bodies (400 naming the field), the
//! admin token on location writes, and the OpenAPI document's location schemas.

mod common;
use common::{assert_error, assert_ok, Server};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INV: &str = "/api/v1/inventory";

/// Runs `stockd serve` with `args`, expecting it to exit (not serve) within 30 s;
/// returns the exit code and stderr.
fn run_to_exit(args: &[&str], env: &[(&str, &str)], data: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["serve", "--durability", "none", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stockd serve {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_warehouses_file_stops_the_server_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases: &[(&str, &str, &str)] = &[
        ("unknown.yaml", "warehouses:\n  - {id: a, priority: 1, zone: x}\n", "warehouses[0].zone"),
        ("noid.yaml", "warehouses:\n  - {id: a, priority: 1}\n  - {name: B, priority: 2}\n", "warehouses[1].id"),
        ("dup.yml", "warehouses:\n  - {id: a, priority: 1}\n  - {id: a, priority: 2}\n", "warehouses[1].id"),
        ("default.yaml", "warehouses:\n  - {id: default, priority: 1}\n", "warehouses[0].id"),
        ("prio.yaml", "warehouses:\n  - {id: a, priority: -1}\n", "warehouses[0].priority"),
        ("prio2.yaml", "warehouses:\n  - {id: a, priority: first}\n", "warehouses[0].priority"),
        ("top.yaml", "stores: []\n", "stores"),
        ("bad.toml", "[[warehouses]]\nid = \"a\"\npriority = 1.5\n", "warehouses[0].priority"),
        ("syntax.toml", "[[warehouses]\n", "malformed TOML"),
        ("w.json", "{}", "unknown format"),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, err) = run_to_exit(&["--warehouses", path.to_str().unwrap()], &[], &data);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains(path.to_str().unwrap()) && err.contains(needle), "{name}: wanted {needle:?} in {err}");
    }
    let missing = dir.path().join("missing.yaml");
    let (code, err) = run_to_exit(&["--warehouses", missing.to_str().unwrap()], &[], &data);
    assert_eq!(code, Some(1));
    assert!(err.contains("missing.yaml") && err.contains("cannot read"), "{err}");
    // The environment variable works like the flag.
    let (code, err) = run_to_exit(&[], &[("STOCKD_WAREHOUSES", missing.to_str().unwrap())], &data);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing.yaml"), "{err}");
    let (code, err) = run_to_exit(&["--allocation", "fastest"], &[], &data);
    assert_eq!(code, Some(2), "clap's usage error: {err}");
    assert!(err.contains("fastest") && err.contains("most-available"), "{err}");
    let (code, err) = run_to_exit(&[], &[("STOCKD_ALLOCATION", "fastest")], &data);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("fastest"), "{err}");
}

#[test]
fn toml_table_allocation_flag_and_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warehouses.toml");
    let toml = "[[warehouses]]\nid = \"east\"\nname = \"East DC\"\nregion = \"e\"\npriority = 2\n\n\
                [[warehouses]]\nid = \"west\"\npriority = 1\n";
    std::fs::write(&file, toml).unwrap();
    let file = file.to_str().unwrap();
    let s = Server::start(&[
        "--durability",
        "none",
        "--warehouses",
        file,
        "--admin-token",
        "t0k",
        "--allocation",
        "single-location-only",
    ]);
    let w = assert_ok(s.get(&format!("{INV}/warehouses")), 200);
    assert_eq!(w["allocation"], "single-location-only");
    assert_eq!(
        w["warehouses"],
        serde_json::json!([{"id":"east","name":"East DC","region":"e","priority":2},{"id":"west","name":"west","region":null,"priority":1}])
    );
    // Location writes need the token, like adjust.
    let put = |path: &str, body: &str, token| s.call("PUT", &format!("{INV}{path}"), Some(body), token);
    let post = |path: &str, body: &str, token| s.call("POST", &format!("{INV}{path}"), Some(body), token);
    assert_error(put("/items/K/locations/east", r#"{"onHand": 5}"#, None), 401, "UNAUTHORIZED");
    assert_error(put("/items/K/locations/east", r#"{"onHand": 5}"#, Some("nope")), 403, "FORBIDDEN");
    assert_ok(put("/items/K/locations/east", r#"{"onHand": 5}"#, Some("t0k")), 201);
    assert_ok(put("/items/K/locations/west", r#"{"onHand": 5}"#, Some("t0k")), 200);
    let transfer = r#"{"from":"east","to":"west","quantity":1,"inTransit":true}"#;
    assert_error(post("/items/K/transfers", transfer, None), 401, "UNAUTHORIZED");
    assert_ok(post("/items/K/transfers", transfer, Some("t0k")), 200);
    let receipt = r#"{"location":"west","quantity":1}"#;
    assert_error(post("/items/K/receipts", receipt, None), 401, "UNAUTHORIZED");
    assert_ok(post("/items/K/receipts", receipt, Some("t0k")), 200);
    // Reads stay open. No one location has 7: single-location-only refuses.
    assert_eq!(assert_ok(s.get(&format!("{INV}/items/K/locations")), 200)["locations"][1]["onHand"], 6);
    let body = r#"{"orderId":"k-1","items":[{"sku":"K","quantity":7}]}"#;
    assert_error(s.post(&format!("{INV}/reserve"), body), 409, "INSUFFICIENT_INVENTORY");
    let body = r#"{"orderId":"k-1","items":[{"sku":"K","quantity":7}],"allocation":"priority"}"#;
    assert_ok(s.post(&format!("{INV}/reserve"), body), 201);
}

#[test]
fn bad_location_bodies_name_the_field() {
    let s = Server::start(&["--durability", "none"]);
    assert_ok(s.put(&format!("{INV}/items/A"), r#"{"onHand": 10}"#), 201);
    let field = |method: &str, path: &str, body: &str| {
        let d = assert_error(s.call(method, &format!("{INV}{path}"), Some(body), None), 400, "VALIDATION_ERROR");
        d["field"].as_str().unwrap().to_owned()
    };
    let reserve =
        |extra: &str, line: &str| format!(r#"{{"orderId":"o","items":[{{"sku":"A","quantity":1{line}}}]{extra}}}"#);
    assert_eq!(field("POST", "/reserve", &reserve(r#","allocation":"fastest""#, "")), "allocation");
    assert_eq!(field("POST", "/reserve", &reserve(r#","allocation":3"#, "")), "allocation");
    assert_eq!(field("POST", "/reserve", &reserve(r#","region":"""#, "")), "region");
    assert_eq!(field("POST", "/reserve", &reserve("", r#","location":"a b""#)), "items[0].location");
    assert_eq!(field("POST", "/reserve", &reserve("", r#","warehouseId":"""#)), "items[0].location");
    assert_eq!(field("POST", "/reserve", &reserve("", r#","location":"x","warehouseId":"x""#)), "items[0].location");
    assert_eq!(field("POST", "/reserve", &reserve("", r#","warehouse":"x""#)), "items[0].warehouse");
    assert_eq!(
        field("POST", "/check-availability", r#"{"items":[{"sku":"A","quantity":1,"location":7}]}"#),
        "items[0].location"
    );
    assert_eq!(
        field("POST", "/commit", r#"{"orderId":"o","items":[{"sku":"A","quantity":1,"location":"x"}]}"#),
        "items[0].location"
    );
    assert_eq!(field("PUT", "/items/A", r#"{"onHand":1,"location":"no way"}"#), "location");
    assert_eq!(field("PUT", "/items/A", r#"{"onHand":1,"incoming":-1}"#), "incoming");
    assert_eq!(field("POST", "/items/A/adjust", r#"{"delta":1,"location":""}"#), "location");
    assert_eq!(field("PUT", "/items/A/locations/bad%20id", r#"{"onHand":1}"#), "location");
    assert_eq!(field("PUT", "/items/A/locations/x", r#"{"incoming":1}"#), "onHand");
    assert_eq!(field("PUT", "/items/A/locations/x", r#"{"onHand":1,"where":"x"}"#), "where");
    assert_eq!(field("POST", "/items/A/transfers", r#"{"from":"default","to":"x"}"#), "quantity");
    assert_eq!(field("POST", "/items/A/transfers", r#"{"from":"default","quantity":1}"#), "to");
    assert_eq!(field("POST", "/items/A/transfers", r#"{"from":"default","to":"x","quantity":0}"#), "quantity");
    assert_eq!(
        field("POST", "/items/A/transfers", r#"{"from":"default","to":"x","quantity":1,"inTransit":"yes"}"#),
        "inTransit"
    );
    assert_eq!(field("POST", "/items/A/transfers", r#"{"from":"?","to":"x","quantity":1}"#), "from");
    assert_eq!(field("POST", "/items/A/receipts", r#"{"quantity":1}"#), "location");
    assert_eq!(field("POST", "/items/A/receipts", r#"{"location":"default","quantity":0}"#), "quantity");
    assert_eq!(field("POST", "/items/A/receipts", r#"{"location":"default","quantity":1}"#), "quantity");
    assert_eq!(field("POST", "/items/A/receipts", r#"{"location":"x","quantity":1}"#), "location");
    // Without a warehouses file any well-formed location id is accepted.
    assert_ok(s.post(&format!("{INV}/items/A/transfers"), r#"{"from":"default","to":"x","quantity":2}"#), 200);
    assert_eq!(assert_ok(s.get(&format!("{INV}/warehouses")), 200)["warehouses"], serde_json::json!([]));
    assert_eq!(assert_ok(s.get(&format!("{INV}/items/A")), 200)["available"], 10, "nothing else changed");
}

#[test]
fn the_openapi_document_describes_the_location_schemas() {
    let s = Server::start(&["--durability", "none"]);
    let (status, doc) = s.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    let schemas = &doc["components"]["schemas"];
    for name in [
        "LocationView",
        "LocationsView",
        "PutLocationBody",
        "TransferBody",
        "ReceiptBody",
        "WarehousesView",
        "WarehouseView",
    ] {
        assert!(schemas[name].is_object(), "{name} missing from the OpenAPI document");
    }
    for (schema, prop) in [
        ("ItemView", "locations"),
        ("ItemView", "incoming"),
        ("PutItemBody", "location"),
        ("AdjustBody", "location"),
        ("ReserveBody", "region"),
        ("ReserveBody", "allocation"),
        ("LineIn", "location"),
    ] {
        assert!(schemas[schema]["properties"][prop].is_object(), "{schema}.{prop} missing");
    }
}
