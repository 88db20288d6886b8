//! Starts the real `stockd` binary on an ephemeral port over a temp data dir, and a
//! tiny blocking HTTP helper around ureq. The child is killed when the guard drops.

#![allow(dead_code)]

pub mod kafka;
pub mod tansu;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh temp dir.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_on(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// A server on `dir` (which the caller keeps alive).
    pub fn start_on(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stockd"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--shards", "4", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "error")
            .env_remove("STOCKD_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stockd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = match line.trim().strip_prefix("listening on ") {
            Some(a) => a.to_owned(),
            None => {
                let _ = child.kill();
                panic!("stockd did not start: {line:?} (exit {:?})", child.wait());
            }
        };
        Server { child: Some(child), base: format!("http://{addr}"), dir: dir.to_path_buf(), _tmp: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `method path` with an optional JSON body and bearer token; returns the
    /// status and the parsed JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, Value) {
        let mut req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(30));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, json)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, None)
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.call("POST", path, Some(body), None)
    }

    pub fn put(&self, path: &str, body: &str) -> (u16, Value) {
        self.call("PUT", path, Some(body), None)
    }

    pub fn text(&self, path: &str) -> String {
        ureq::get(&self.url(path)).call().unwrap().into_string().unwrap()
    }

    /// SIGTERM, then wait for the exit; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("stockd did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts an error envelope with `status` and `code`; returns its details.
#[track_caller]
pub fn assert_error(got: (u16, Value), status: u16, code: &str) -> Value {
    let (s, body) = got;
    assert_eq!((s, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["meta"]["timestamp"].is_string(), "{body}");
    body["error"]["details"].clone()
}

/// Asserts a success envelope with `status`; returns its data.
#[track_caller]
pub fn assert_ok(got: (u16, Value), status: u16) -> Value {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["success"], true, "{body}");
    assert!(is_timestamp(&body["meta"]["timestamp"]), "{body}");
    body["data"].clone()
}

/// RFC 3339 UTC with milliseconds: `2023-11-21T15:57:30.123Z`.
pub fn is_timestamp(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    s.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && s.ends_with('Z')
}

/// Polls `f` every 50 ms until it returns Some, or panics after `secs` naming `what`.
#[track_caller]
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
