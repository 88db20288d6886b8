//! stockd-benches: shared helpers of the criterion suites (`benches/*.rs`) and the
//! `stockd-load` generator (`src/bin/stockd-load.rs`), plus `stockd-mem` (RSS per
//! item and per reservation).
//!
//! Sizes: every suite reads its size from an environment variable (named in the
//! suite) and uses a small one in smoke mode, which is on when criterion runs with
//! `--test` (`cargo bench -p stockd-benches -- --test`) or `STOCKD_BENCH_SMOKE=1`.

pub mod allocation;

use std::path::Path;
use std::time::{Duration, Instant};
use stockd_engine::{Command, Millis, OrderId, Outcome, ReservationKey, ShardState, Sku};
use stockd_engine::{ReserveLocal, SetItem};
use stockd_wal::{Durability, WalConfig, WalWriter};

/// True in smoke mode: criterion's `--test` flag or `STOCKD_BENCH_SMOKE=1`.
pub fn smoke() -> bool {
    std::env::args().any(|a| a == "--test") || std::env::var("STOCKD_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// `name` from the environment if set, else `smoke_value` in smoke mode, else `full`.
pub fn size(name: &str, full: usize, smoke_value: usize) -> usize {
    match std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()) {
        Some(n) => n,
        None if smoke() => smoke_value,
        None => full,
    }
}

/// The i-th benchmark SKU (`sku-0000042`).
pub fn sku(i: usize) -> Sku {
    Sku::parse(&format!("sku-{i:07}"), "sku").expect("valid sku")
}

pub fn order(prefix: &str, i: u64) -> OrderId {
    OrderId::parse(&format!("{prefix}-{i}"), "orderId").expect("valid orderId")
}

/// A start time for the pure state machine (ms since the epoch).
pub const T0: Millis = 1_700_000_000_000;

/// A shard state holding `items` SKUs (`sku(0..items)`), each with `on_hand` units.
pub fn state_with_items(items: usize, on_hand: u64) -> ShardState {
    let mut state = ShardState::new(0);
    for i in 0..items {
        let cmd = Command::SetItem(SetItem::on_hand(sku(i), on_hand));
        state.apply(&cmd, T0).expect("set item");
    }
    state
}

/// Applies `command` at `now`, panicking on an error (bench setup only).
pub fn must(state: &mut ShardState, command: &Command, now: Millis) -> Outcome {
    match state.apply(command, now) {
        Ok(a) => a.outcome,
        Err(e) => panic!("{} failed in setup: {e}", command.kind()),
    }
}

/// Reserves 1 unit of `sku` for `order_id` in one step (`ReserveLocal`: header and
/// hold in one record, what the engine logs when one shard owns every SKU of the
/// order); returns the reservation id.
pub fn reserve_on(state: &mut ShardState, order_id: OrderId, sku: Sku, ttl_secs: u64, now: Millis) -> String {
    let cmd = Command::ReserveLocal(ReserveLocal {
        order_id,
        lines: vec![(sku, 1)],
        ttl_secs,
        metadata: None,
        placement: Default::default(),
    });
    match must(state, &cmd, now) {
        Outcome::Reserved(r) => r.reservation_id.to_string(),
        other => panic!("reserve answered {other:?}"),
    }
}

/// The command stream of a busy single shard, as the shard logs it: `items` SetItem
/// records, then one-shard reservations of 1 unit (`ReserveLocal`), each committed
/// (`CommitReservation`, which settles the hold in the same record) or every fourth
/// released (`ReleaseReservation`), with an ExpireDue sweep every 1,000 reservations.
/// Time advances 1 ms per reservation. Every command is applied to a scratch state
/// first, so the stream replays without an error. Calls `f(now, command)` for exactly
/// `records` commands.
pub fn log_commands(items: usize, records: u64, f: impl FnMut(Millis, &Command)) {
    let skus: Vec<Sku> = (0..items).map(sku).collect();
    shard_log_commands(0, &skus, "replay", records, f)
}

/// [`log_commands`] for shard `shard`: the items are `skus`, the orderIds
/// `{order_prefix}-{j}`, and the reservation ids the shard's own.
pub fn shard_log_commands(
    shard: usize,
    skus: &[Sku],
    order_prefix: &str,
    records: u64,
    f: impl FnMut(Millis, &Command),
) {
    struct Sink<F> {
        state: ShardState,
        n: u64,
        records: u64,
        f: F,
    }
    impl<F: FnMut(Millis, &Command)> Sink<F> {
        /// Applies and emits `cmd`; `None` once `records` commands were emitted.
        fn emit(&mut self, now: Millis, cmd: Command) -> Option<Outcome> {
            if self.n >= self.records {
                return None;
            }
            let outcome = must(&mut self.state, &cmd, now);
            (self.f)(now, &cmd);
            self.n += 1;
            Some(outcome)
        }
    }
    let items = skus.len();
    let mut sink = Sink { state: ShardState::new(shard), n: 0, records, f };
    for sku in skus {
        let cmd = Command::SetItem(SetItem::on_hand(sku.clone(), 1_000_000_000_000));
        sink.emit(T0, cmd);
    }
    let mut j = 0u64;
    while sink.n < sink.records {
        let now = T0 + j;
        let order_id = order(order_prefix, j);
        let lines = vec![(skus[j as usize % items.max(1)].clone(), 1)];
        let reserve = Command::ReserveLocal(ReserveLocal {
            order_id: order_id.clone(),
            lines,
            ttl_secs: 3600,
            metadata: None,
            placement: Default::default(),
        });
        if sink.emit(now, reserve).is_none() {
            return;
        }
        let key = ReservationKey::Order(order_id);
        if j % 4 == 3 {
            sink.emit(now, Command::ReleaseReservation { key, reason: "bench".into() });
        } else {
            sink.emit(now, Command::CommitReservation { key, quantities: None });
        }
        if j % 1000 == 999 {
            sink.emit(now, Command::ExpireDue { retention_ms: 1000 });
        }
        j += 1;
    }
}

/// Writes `records` commands of [`log_commands`] to a WAL in `dir` (no fsync per
/// record; one sync at the end). Returns the last LSN.
pub fn write_log(dir: &Path, items: usize, records: u64) -> u64 {
    let config = WalConfig { durability: Durability::None, ..WalConfig::default() };
    let (mut wal, _) = WalWriter::open(dir, config).expect("open wal");
    log_commands(items, records, |now, cmd| {
        let (t, payload) = stockd_engine::offline::encode_record(now, cmd);
        wal.append(t, &payload).expect("append");
    });
    wal.sync().expect("sync")
}

/// Lays out a durable engine's data directory as the engine itself would leave it
/// after `records_per_shard` records on each of `shards` shards under a snapshot
/// policy of one snapshot per `snapshot_every` records, in the worst case for
/// recovery: each shard's newest snapshot is `snapshot_every - 1` records behind its
/// WAL's end (or halfway, for a log shorter than that). Each shard gets its own
/// `items` SKUs (names that route to it) and orderIds, in the stream of
/// [`log_commands`]. `Engine::open` must already have created `dir` with `shards`
/// shards. Returns the number of records recovery has to replay in all.
pub fn write_data_dir(dir: &Path, shards: usize, items: usize, records_per_shard: u64, snapshot_every: u64) -> u64 {
    use stockd_engine::offline::encode_state;
    use stockd_engine::shard_of_sku;
    let tail = (snapshot_every.saturating_sub(1)).min(records_per_shard / 2);
    let snapshot_lsn = records_per_shard - tail;
    let mut all_skus = (0..).map(sku);
    for shard in 0..shards {
        let skus: Vec<Sku> = all_skus.by_ref().filter(|s| shard_of_sku(s, shards) == shard).take(items).collect();
        let layout = stockd_engine::DataDir::new(dir);
        let store = stockd_snapshots::SnapshotStore::open(&layout.shard_snapshots(shard)).expect("snapshot store");
        let config = WalConfig { durability: Durability::None, ..WalConfig::default() };
        let (mut wal, _) = WalWriter::open(&layout.shard_wal(shard), config).expect("open wal");
        let mut state = ShardState::new(shard);
        shard_log_commands(shard, &skus, &format!("open{shard}"), records_per_shard, |now, cmd| {
            let (t, payload) = stockd_engine::offline::encode_record(now, cmd);
            let lsn = wal.append(t, &payload).expect("append");
            state.apply(cmd, now).expect("the stream applies");
            if lsn == snapshot_lsn {
                store.write(lsn, &encode_state(&state)).expect("write snapshot");
            }
        });
        wal.sync().expect("sync");
    }
    tail * shards as u64
}

/// Resident set size of this process in bytes (Linux `/proc/self/status`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Operations per chunk of a `chunked` measurement.
pub const CHUNK: u64 = 1024;

/// Runs `iters` operations in chunks: `prepare(chunk_no, k)` builds the chunk's
/// commands untimed, `run` applies them timed, `cleanup` restores the state untimed.
pub fn chunked<P, T>(
    state: &mut ShardState,
    iters: u64,
    mut prepare: impl FnMut(&mut ShardState, u64, u64) -> P,
    mut run: impl FnMut(&mut ShardState, &P) -> T,
    mut cleanup: impl FnMut(&mut ShardState, P, T),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut chunk_no = 0;
    while done < iters {
        let k = CHUNK.min(iters - done);
        let p = prepare(state, chunk_no, k);
        let t = Instant::now();
        let out = run(state, &p);
        total += t.elapsed();
        cleanup(state, p, out);
        done += k;
        chunk_no += 1;
    }
    total
}

/// Times `iters` one-step reserves (`ReserveLocal` of one unit of the SKU `sku_of()`
/// names, for a fresh orderId, carrying `placement`), in chunks; each chunk is
/// released untimed afterwards, so stock stays put. `clock` advances 1 s per chunk.
pub fn time_reserves(
    state: &mut ShardState,
    iters: u64,
    clock: &mut Millis,
    seq: &mut u64,
    mut sku_of: impl FnMut() -> Sku,
    placement: &stockd_engine::Placement,
) -> Duration {
    chunked(
        state,
        iters,
        |_, _, k| {
            *clock += 1000;
            let cmds = (0..k)
                .map(|_| {
                    *seq += 1;
                    Command::ReserveLocal(ReserveLocal {
                        order_id: order("o", *seq),
                        lines: vec![(sku_of(), 1)],
                        ttl_secs: 3600,
                        metadata: None,
                        placement: placement.clone(),
                    })
                })
                .collect::<Vec<_>>();
            (*clock, cmds)
        },
        |s, (now, cmds)| {
            for cmd in cmds {
                assert!(s.apply(cmd, *now).expect("reserve").changed);
            }
        },
        |s, (now, cmds), ()| {
            for cmd in cmds {
                if let Command::ReserveLocal(ReserveLocal { order_id, .. }) = cmd {
                    let key = ReservationKey::Order(order_id);
                    must(s, &Command::ReleaseReservation { key, reason: "bench".into() }, now);
                }
            }
            must(s, &Command::ExpireDue { retention_ms: 0 }, now + 1);
        },
    )
}
