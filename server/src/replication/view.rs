//! What one changelog partition says, read in order: the pure rule every node
//! applies to decide which messages count. One instance per shard partition.
//!
//! - An epoch marker whose epoch is above the current leadership's makes its writer
//!   the leader of this partition from that message on; any other marker (a losing
//!   candidate's, a replay) is ignored.
//! - A record counts (is *accepted*) only if it carries the current leadership's
//!   stamp and the next LSN. A record of a replaced leader written after the new
//!   leader's marker (a zombie's write) is ignored by every reader, so it never
//!   becomes state anywhere; its writer, reading its own records back, sees the newer
//!   marker first and knows it is fenced.
//! - Local records this node already holds beyond the last position it knows to be in
//!   the log (`unverified`: after a crash, or a leader's writes that never reached the
//!   log) must be found in the accepted sequence byte for byte; a different record at
//!   their LSN, or the end of the log before them, means this node's WAL diverged.

use super::frame::{Frame, Stamp};
use std::collections::VecDeque;
use stockd_engine::ShippedRecord;

/// The leadership a partition is under: who, and where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub stamp: Stamp,
    pub url: String,
}

/// What reading one message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A record of the current leadership this node did not have: apply it (a
    /// standby), or count it confirmed (its leader).
    Accepted(ShippedRecord),
    /// A record of the current leadership this node has already (verified, or read
    /// twice).
    Known(u64),
    /// A new leadership starts here.
    NewLeader(Leadership),
    /// Counts for nobody: a replaced leader's write or a losing candidate's marker.
    Ignored,
    /// This node's WAL and the log disagree.
    Diverged(String),
}

#[derive(Debug, Clone, Default)]
pub struct PartitionView {
    pub current: Option<Leadership>,
    /// The last LSN of the accepted sequence read so far.
    pub accepted_lsn: u64,
    /// The highest epoch seen in any marker (a candidate takes the next one).
    pub max_epoch: u64,
    unverified: VecDeque<ShippedRecord>,
}

impl PartitionView {
    /// A view resuming after `accepted_lsn` under `current`, with the local records
    /// after it (LSN ascending from `accepted_lsn + 1`) still to be found in the log.
    pub fn resume(current: Option<Leadership>, accepted_lsn: u64, local_tail: Vec<ShippedRecord>) -> PartitionView {
        debug_assert!(local_tail.iter().enumerate().all(|(i, r)| r.lsn == accepted_lsn + 1 + i as u64));
        let max_epoch = current.as_ref().map_or(0, |c| c.stamp.epoch);
        PartitionView { current, accepted_lsn, max_epoch, unverified: local_tail.into() }
    }

    /// Local records not yet found in the log.
    pub fn unverified(&self) -> usize {
        self.unverified.len()
    }

    pub fn accept(&mut self, frame: Frame) -> Step {
        match frame {
            Frame::Epoch { stamp, url, .. } => {
                self.max_epoch = self.max_epoch.max(stamp.epoch);
                if self.current.as_ref().is_some_and(|c| stamp.epoch <= c.stamp.epoch) {
                    return Step::Ignored;
                }
                let leadership = Leadership { stamp, url };
                self.current = Some(leadership.clone());
                Step::NewLeader(leadership)
            }
            Frame::Record { stamp, record } => {
                if self.current.as_ref().is_none_or(|c| c.stamp != stamp) {
                    return Step::Ignored;
                }
                if record.lsn <= self.accepted_lsn {
                    return Step::Known(record.lsn);
                }
                if record.lsn != self.accepted_lsn + 1 {
                    return Step::Diverged(format!(
                        "the changelog jumps from LSN {} to {} under epoch {}",
                        self.accepted_lsn, record.lsn, stamp.epoch
                    ));
                }
                self.accepted_lsn = record.lsn;
                match self.unverified.pop_front() {
                    None => Step::Accepted(record),
                    Some(local) if local == record => Step::Known(record.lsn),
                    Some(local) => {
                        self.unverified.clear();
                        Step::Diverged(format!(
                            "the local WAL's record {} differs from the changelog's (epoch {} of {})",
                            local.lsn, stamp.epoch, stamp.node
                        ))
                    }
                }
            }
        }
    }

    /// Called when the whole log has been read: local records still unverified are
    /// not in it (a leader's writes that never reached the log).
    pub fn check_at_end(&self) -> Result<(), String> {
        match (self.unverified.front(), self.unverified.back()) {
            (Some(first), Some(last)) => Err(format!(
                "the local WAL holds records {}..={} that the changelog does not (never replicated, never \
                 acknowledged)",
                first.lsn, last.lsn
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(epoch: u64, node: &str) -> Stamp {
        Stamp { epoch, node: node.into() }
    }
    fn marker(epoch: u64, node: &str) -> Frame {
        Frame::Epoch { stamp: stamp(epoch, node), base_lsn: 0, url: format!("http://{node}") }
    }
    fn rec(lsn: u64, byte: u8) -> ShippedRecord {
        ShippedRecord { lsn, record_type: 1, payload: vec![byte] }
    }
    fn record(epoch: u64, node: &str, lsn: u64, byte: u8) -> Frame {
        Frame::Record { stamp: stamp(epoch, node), record: rec(lsn, byte) }
    }

    #[test]
    fn records_count_only_under_the_current_leadership() {
        let mut v = PartitionView::default();
        assert_eq!(v.accept(record(1, "a", 1, 0)), Step::Ignored, "no leader yet");
        assert!(matches!(v.accept(marker(1, "a")), Step::NewLeader(_)));
        assert_eq!(v.accept(record(1, "a", 1, 0)), Step::Accepted(rec(1, 0)));
        assert_eq!(v.accept(record(1, "a", 1, 0)), Step::Known(1), "read twice");
        // b takes over at epoch 2; a, paused, writes LSN 2 after b's marker: a zombie.
        assert!(matches!(v.accept(marker(2, "b")), Step::NewLeader(_)));
        assert_eq!(v.accept(record(1, "a", 2, 9)), Step::Ignored);
        assert_eq!(v.accept(record(2, "b", 2, 5)), Step::Accepted(rec(2, 5)));
        // A losing candidate's marker at the same or a lower epoch counts for nothing.
        assert_eq!(v.accept(marker(2, "c")), Step::Ignored);
        assert_eq!(v.accept(marker(1, "c")), Step::Ignored);
        assert_eq!(v.accept(record(2, "c", 3, 0)), Step::Ignored);
        assert_eq!(v.max_epoch, 2);
        assert!(matches!(v.accept(record(2, "b", 4, 0)), Step::Diverged(_)), "a gap");
    }

    #[test]
    fn local_records_must_be_found_in_the_log_byte_for_byte() {
        // A standby that applied LSN 2 and 3 after its last saved position (1): the
        // log has them, across a change of leader.
        let mut v = PartitionView::resume(
            Some(Leadership { stamp: stamp(1, "a"), url: String::new() }),
            1,
            vec![rec(2, 2), rec(3, 3)],
        );
        assert_eq!(v.accept(record(1, "a", 2, 2)), Step::Known(2));
        assert!(matches!(v.accept(marker(2, "b")), Step::NewLeader(_)));
        assert_eq!(v.accept(record(2, "b", 3, 3)), Step::Known(3));
        assert_eq!(v.unverified(), 0);
        assert!(v.check_at_end().is_ok());
        assert_eq!(v.accept(record(2, "b", 4, 4)), Step::Accepted(rec(4, 4)));

        // An old leader whose LSN 3 never reached the log: the new leader's LSN 3
        // differs.
        let mut v = PartitionView::resume(
            Some(Leadership { stamp: stamp(1, "a"), url: String::new() }),
            1,
            vec![rec(2, 2), rec(3, 7)],
        );
        assert_eq!(v.accept(record(1, "a", 2, 2)), Step::Known(2));
        assert!(matches!(v.accept(marker(2, "b")), Step::NewLeader(_)));
        assert!(matches!(v.accept(record(2, "b", 3, 3)), Step::Diverged(_)));

        // ...or nobody wrote LSN 3 yet: the end of the log says so.
        let mut v = PartitionView::resume(
            Some(Leadership { stamp: stamp(1, "a"), url: String::new() }),
            1,
            vec![rec(2, 2), rec(3, 7)],
        );
        assert_eq!(v.accept(record(1, "a", 2, 2)), Step::Known(2));
        assert!(v.check_at_end().unwrap_err().contains("3..=3"));
    }
}
