//! `DATA/replication.state`: where this node's changelog reader resumes. One line per
//! shard partition, written atomically (temp file, fsync, rename, directory fsync)
//! about once a second:
//!
//! ```text
//! stockd replication state 1
//! <partition> <next offset> <accepted LSN> <epoch> <node id> <leader URL>
//! ```
//!
//! (`0 - -` for epoch, node and URL before any leader.) The reader resumes each
//! partition at its saved offset (and reads it from its start if the broker skips
//! from there: see `changelog.rs`). The local records after the saved LSN are checked
//! against the log byte for byte (`view.rs`), so a stale file costs re-reading, never
//! a wrong state. A missing or unreadable file means: read from the start, checking
//! everything local.

use super::frame::Stamp;
use super::view::Leadership;
use std::path::Path;
use stockd_engine::Fs;

const HEADER: &str = "stockd replication state 1";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedPartition {
    pub next_offset: i64,
    pub accepted_lsn: u64,
    pub leadership: Option<Leadership>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedState {
    pub partitions: Vec<SavedPartition>,
}

impl SavedState {
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for (p, s) in self.partitions.iter().enumerate() {
            let (epoch, node, url) = match &s.leadership {
                Some(l) => (l.stamp.epoch, l.stamp.node.as_str(), l.url.as_str()),
                None => (0, "-", "-"),
            };
            out.push_str(&format!(
                "{p} {} {} {epoch} {node} {}\n",
                s.next_offset,
                s.accepted_lsn,
                url.replace(' ', "%20")
            ));
        }
        out
    }

    pub fn parse(text: &str, partitions: usize) -> Result<SavedState, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("not a replication state file (bad header)".into());
        }
        let mut out = Vec::new();
        for (i, line) in lines.enumerate() {
            let f: Vec<&str> = line.split(' ').collect();
            let bad = || format!("line {}: {line:?}", i + 2);
            if f.len() != 6 || f[0].parse::<usize>().ok() != Some(i) {
                return Err(bad());
            }
            let next_offset = f[1].parse::<i64>().map_err(|_| bad())?;
            let accepted_lsn = f[2].parse::<u64>().map_err(|_| bad())?;
            let epoch = f[3].parse::<u64>().map_err(|_| bad())?;
            let leadership = (epoch > 0)
                .then(|| Leadership { stamp: Stamp { epoch, node: f[4].to_owned() }, url: f[5].replace("%20", " ") });
            if next_offset < 0 {
                return Err(bad());
            }
            out.push(SavedPartition { next_offset, accepted_lsn, leadership });
        }
        if out.len() != partitions {
            return Err(format!("{} partitions saved, {partitions} expected", out.len()));
        }
        Ok(SavedState { partitions: out })
    }

    /// The saved state, or None (with the reason logged) when there is none usable.
    pub fn read(fs: &dyn Fs, path: &Path, partitions: usize) -> Option<SavedState> {
        let bytes = match fs.read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "replication state unreadable; reading the log from its start");
                return None;
            }
        };
        match std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(|t| SavedState::parse(t, partitions)) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "replication state unusable; reading the log from its start");
                None
            }
        }
    }

    pub fn write(&self, fs: &dyn Fs, path: &Path) -> std::io::Result<()> {
        stockd_engine::offline::write_atomic(fs, path, self.render().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_did_not_write() {
        let s = SavedState {
            partitions: vec![
                SavedPartition { next_offset: 0, accepted_lsn: 0, leadership: None },
                SavedPartition {
                    next_offset: 17,
                    accepted_lsn: 12,
                    leadership: Some(Leadership {
                        stamp: Stamp { epoch: 3, node: "b".into() },
                        url: "http://127.0.0.1:8081".into(),
                    }),
                },
            ],
        };
        assert_eq!(SavedState::parse(&s.render(), 2).unwrap(), s);
        assert!(SavedState::parse(&s.render(), 3).is_err(), "another shard count");
        assert!(SavedState::parse("garbage", 2).is_err());
        assert!(SavedState::parse(&s.render().replace(" 17 ", " x "), 2).is_err());
    }
}
