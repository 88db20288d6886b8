//! stockd-loom-tests: will own loom models of the engine's cross-thread primitives
//! (bounded request queue, group-commit durability wait, in-order replies, shutdown),
//! issue 8. Not built yet.
