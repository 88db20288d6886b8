//! stockd-benches: will own the criterion suites and the `stockd-load` generator
//! (issue 7). Not built yet.
