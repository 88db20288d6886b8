//! stockd-benches: the `stockd-load` generator (embedded target and the `flash`
//! workload today). Criterion suites, the HTTP target and the `mixed` workload are
//! issue 7 and not built yet.
