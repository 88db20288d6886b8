//! A real Kafka-protocol broker for tests: `tansu` (crates.io, `cargo install tansu
//! --version 0.6.0 --locked --features dynostore`; CI installs it), started on a free
//! loopback port with in-memory storage and killed when the guard drops. A test that
//! needs it and cannot find the binary fails with that message: it is never skipped.
//!
//! `pause` / `resume` (SIGSTOP / SIGCONT) make the broker unavailable without losing
//! what it stores (memory storage does not survive a restart).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tansu {
    child: Child,
    /// `127.0.0.1:PORT`, for `bootstrap.servers` / `--kafka-brokers`.
    pub servers: String,
}

/// Where the tansu binary is: `$STOCKD_TANSU`, else on `PATH`, else cargo's bin dir.
pub fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("STOCKD_TANSU") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    let candidate = home.join("bin").join("tansu");
    assert!(
        candidate.is_file(),
        "this test needs the tansu broker: cargo install tansu --version 0.6.0 --locked --features dynostore \
         (or set STOCKD_TANSU to its path)"
    );
    candidate
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Tansu {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_binary())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        let servers = format!("127.0.0.1:{port}");
        let mut t = Tansu { child, servers };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(&t.servers).is_ok() {
                break;
            }
            if let Ok(Some(status)) = t.child.try_wait() {
                panic!("tansu exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "tansu did not listen on {} within 30 s", t.servers);
            std::thread::sleep(Duration::from_millis(50));
        }
        t
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig} tansu");
    }

    /// Freezes the broker (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused broker (SIGCONT); what it stored is intact.
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
