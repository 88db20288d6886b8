//! `ShardState::apply`, the pure transition function every shard runs, on a state
//! with many items (`STOCKD_BENCH_ITEMS`, default 100,000; 1,000 in smoke mode).
//!
//! Per operation: `reserve_local` = ReserveLocal (header + hold in one record: the
//! whole reservation of an order whose SKUs live on one shard, as in a flash sale);
//! `reserve_place_hold` = PlaceHold (the item side of a cross-shard reservation);
//! `commit` = CommitReservation and `release` = ReleaseReservation (each settling
//! the same-shard hold in the same record); `expire` = an ExpireDue sweep that
//! expires 1,024 due reservations, per reservation. Setup and cleanup of each chunk
//! of operations run outside the timed section.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use stockd_benches::{chunked, must, order, reserve_on, size, sku, smoke, state_with_items, time_reserves, T0};
use stockd_engine::{Command, Outcome, ReservationId, ReservationKey};

fn bench_apply(c: &mut Criterion) {
    let items = size("STOCKD_BENCH_ITEMS", 100_000, 1_000);
    let mut state = state_with_items(items, 1_000_000_000_000);
    let mut g = c.benchmark_group(format!("apply/{items}_items"));
    g.throughput(Throughput::Elements(1));
    if !smoke() {
        g.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    }
    let mut seq = 0u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut pick = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % items as u64) as usize
    };

    let mut clock = T0;
    g.bench_function("reserve_local", |b| {
        b.iter_custom(|iters| {
            time_reserves(&mut state, iters, &mut clock, &mut seq, || sku(pick()), &Default::default())
        })
    });

    g.bench_function("reserve_place_hold", |b| {
        b.iter_custom(|iters| {
            chunked(
                &mut state,
                iters,
                |_, _, k| {
                    (0..k)
                        .map(|_| {
                            seq += 1;
                            Command::PlaceHold {
                                reservation_id: ReservationId::new(T0, 0, seq),
                                order_id: order("o", seq),
                                lines: vec![(sku(pick()), 1)],
                                placement: Default::default(),
                            }
                        })
                        .collect::<Vec<_>>()
                },
                |s, cmds| {
                    for cmd in cmds {
                        assert!(s.apply(cmd, T0).expect("place hold").changed);
                    }
                },
                |s, cmds, ()| {
                    for cmd in cmds {
                        if let Command::PlaceHold { reservation_id, .. } = cmd {
                            must(s, &Command::ReleaseHold { reservation_id }, T0);
                        }
                    }
                },
            )
        })
    });

    // commit and release: reservations made untimed, then settled timed.
    for (name, commit) in [("commit", true), ("release", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                chunked(
                    &mut state,
                    iters,
                    |s, _, k| {
                        clock += 1000;
                        let now = clock;
                        let rs = (0..k)
                            .map(|_| {
                                seq += 1;
                                let o = order("o", seq);
                                reserve_on(s, o.clone(), sku(pick()), 3600, now);
                                o
                            })
                            .collect::<Vec<_>>();
                        (now, rs)
                    },
                    |s, (now, rs)| {
                        for o in rs {
                            let key = ReservationKey::Order(o.clone());
                            let cmd = if commit {
                                Command::CommitReservation { key, quantities: None }
                            } else {
                                Command::ReleaseReservation { key, reason: "bench".into() }
                            };
                            assert!(s.apply(&cmd, *now).expect("settle").changed);
                        }
                    },
                    |s, (now, _), ()| {
                        must(s, &Command::ExpireDue { retention_ms: 0 }, now + 1);
                    },
                )
            })
        });
    }

    g.bench_function("expire", |b| {
        b.iter_custom(|iters| {
            chunked(
                &mut state,
                iters,
                |s, _, k| {
                    clock += 10_000;
                    for _ in 0..k {
                        seq += 1;
                        reserve_on(s, order("o", seq), sku(pick()), 1, clock);
                    }
                    (clock, k)
                },
                |s, &(now, k)| {
                    let at = now + 2000;
                    let expired = match s.apply(&Command::ExpireDue { retention_ms: 86_400_000 }, at) {
                        Ok(a) => match a.outcome {
                            Outcome::Expired { expired, .. } => expired,
                            other => panic!("expire answered {other:?}"),
                        },
                        Err(e) => panic!("expire failed: {e}"),
                    };
                    assert_eq!(expired.len() as u64, k);
                },
                |s, (now, _), ()| {
                    must(s, &Command::ExpireDue { retention_ms: 0 }, now + 3000);
                },
            )
        })
    });
    g.finish();
    state.check_invariants().expect("invariants after the apply benches");
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
