//! stockd-tools: will own `stockd-wal`, the offline, read-only WAL inspection,
//! verification and point-in-time replay tool (issue 6). Not built yet.
