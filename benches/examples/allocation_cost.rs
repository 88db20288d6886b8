//! Instruction counts of allocation, independent of machine noise: builds `N`
//! one-unit `ReserveLocal`s on one hot SKU for one case of `stockd_benches::allocation`
//! and applies them (or, with `build-only`, does not). Run it under callgrind both
//! ways; the difference over N is what `ShardState::apply` costs per reserve:
//!
//! ```text
//! cargo build --release -p stockd-benches --example allocation_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/allocation_cost four_priority 20000
//! ```
//! (`benches/allocation-cost.sh` runs every case and prints the table.)

use stockd_benches::allocation::{allocation_cases, hot_sku};
use stockd_benches::{order, sku, T0};
use stockd_engine::Command;
use stockd_engine::ReserveLocal;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: allocation_cost CASE N [build-only]   (cases: {})", case_names());
        std::process::exit(2);
    };
    let Some(case) = allocation_cases().into_iter().find(|c| c.name == name) else {
        eprintln!("unknown case {name:?}; cases: {}", case_names());
        std::process::exit(2);
    };
    let mut state = hot_sku(&case.locations, 1_000_000_000);
    let apply = args.get(3).map(String::as_str) != Some("build-only");
    // Both runs build the same commands; only one applies them.
    let cmds: Vec<Command> = (0..n)
        .map(|i| {
            Command::ReserveLocal(ReserveLocal {
                order_id: order("o", i),
                lines: vec![(sku(0), 1)],
                ttl_secs: 3600,
                metadata: None,
                placement: case.placement.clone(),
            })
        })
        .collect();
    for cmd in cmds.iter().filter(|_| apply) {
        state.apply(cmd, T0 + 1000).expect("reserve");
    }
    println!("{name} {n} reserved {}", state.active_reservations());
    // Not dropped: freeing the state would count in the difference too.
    std::mem::forget(state);
}

fn case_names() -> String {
    allocation_cases().iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}
