//! The admin token's edges (issue 13, defect 11): a blank token is a startup error
//! naming the flag (never "auth off"); the scheme is case-insensitive (RFC 7235);
//! wrong tokens of any length are refused. (That the compare does not depend on the
//! token's length is shown by `auth::tests`: fixed-size keyed tags.)

mod common;

use common::Server;
use std::process::{Command, Stdio};

fn start_fails(args: &[&str], env: Option<&str>) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stockd"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(tmp.path()).args(args);
    cmd.env_remove("STOCKD_ADMIN_TOKEN").stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(v) = env {
        cmd.env("STOCKD_ADMIN_TOKEN", v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "started with {args:?} / {env:?}: {stdout}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    stderr
}

#[test]
fn a_blank_admin_token_is_a_startup_error() {
    for t in ["", "   ", "\t"] {
        let e = start_fails(&["--admin-token", t], None);
        assert!(e.contains("--admin-token") && e.contains("empty"), "{t:?}: {e}");
        let e = start_fails(&[], Some(t));
        assert!(e.contains("STOCKD_ADMIN_TOKEN") && e.contains("empty"), "{t:?}: {e}");
    }
    let e = start_fails(&["--admin-token", "secret\n"], None);
    assert!(e.contains("--admin-token") && e.contains("whitespace"), "{e}");
}

fn put_with(server: &Server, authorization: Option<&str>) -> u16 {
    let mut req = ureq::put(&server.url("/api/v1/inventory/items/A1")).set("Content-Type", "application/json");
    if let Some(a) = authorization {
        req = req.set("Authorization", a);
    }
    match req.send_string(r#"{"onHand":1}"#) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_wrong_tokens_are_refused() {
    let server = Server::start(&["--admin-token", "s3cret-token"]);
    assert_eq!(put_with(&server, None), 401);
    assert_eq!(put_with(&server, Some("Bearer s3cret-token")), 201);
    assert_eq!(put_with(&server, Some("bearer s3cret-token")), 200);
    assert_eq!(put_with(&server, Some("BEARER s3cret-token")), 200);
    assert_eq!(put_with(&server, Some("bEaReR   s3cret-token")), 200);
    for wrong in [
        "Bearer s3cret-tokeN",
        "Bearer s3cret-toke",
        "Bearer s3cret-token-and-more",
        "Bearer x",
        "Bearer",
        "Basic s3cret-token",
        "s3cret-token",
    ] {
        assert_eq!(put_with(&server, Some(wrong)), 403, "{wrong}");
    }
    // Reads need no token.
    let (s, _) = server.get("/api/v1/inventory/items/A1");
    assert_eq!(s, 200);
}
