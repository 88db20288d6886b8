//! Where replay time goes: writes a WAL of N records (`stockd_benches::log_commands`)
//! and times, over the same log, (1) read + CRC only, (2) read + decode, (3) read +
//! decode + apply. `cargo run --release -p stockd-benches --example replay_phases [N]`.

use std::hint::black_box;
use std::time::Instant;
use stockd_benches::write_log;
use stockd_engine::offline::decode_record;
use stockd_engine::ShardState;
use stockd_wal::WalReader;

fn main() {
    let records: u64 = std::env::args().nth(1).map_or(1_000_000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 10_000.min(records as usize / 2), records);
    let phase = |name: &str, f: &dyn Fn() -> u64| {
        let t = Instant::now();
        let n = f();
        let s = t.elapsed().as_secs_f64();
        println!("{name:>22}: {n} records in {s:.3} s = {:.0} records/s", n as f64 / s);
    };
    for _ in 0..2 {
        phase("read_verify", &|| {
            let reader = WalReader::open(dir.path()).expect("open");
            let mut n = 0;
            for r in reader.iter_from(1) {
                black_box(r.expect("record"));
                n += 1;
            }
            n
        });
        phase("read_decode", &|| {
            let reader = WalReader::open(dir.path()).expect("open");
            let mut n = 0;
            for r in reader.iter_from(1) {
                let r = r.expect("record");
                black_box(decode_record(r.record_type, &r.payload).expect("decode"));
                n += 1;
            }
            n
        });
        phase("read_decode_apply", &|| {
            let reader = WalReader::open(dir.path()).expect("open");
            let mut state = ShardState::new(0);
            let mut n = 0;
            for r in reader.iter_from(1) {
                let r = r.expect("record");
                let rec = decode_record(r.record_type, &r.payload).expect("decode");
                state.apply(&rec.command, rec.now).expect("replays");
                n += 1;
            }
            black_box(state);
            n
        });
    }
}
