//! Fuzz target: the request bodies as the server parses them (`extract::parse`, the
//! parser behind every route's `StrictJson` extractor) into each route's body type.
//! Never a panic; every refusal renders as a 4xx in the JSON envelope. The first byte
//! picks the body type. The CI face is server/tests/robustness.rs (and strict_input.rs).
#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use stockd_server::envelope::ApiError;
use stockd_server::extract::parse;
use stockd_server::routes::items::{AdjustBody, PutItemBody};
use stockd_server::routes::reservations::{CheckBody, CommitBody, ExtendBody, ReleaseBody, ReserveBody};

fn check<T>(parsed: Result<T, ApiError>) {
    if let Err(e) = parsed {
        assert!(!e.message.is_empty());
        let response = e.into_response();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 7 {
        0 => check(parse::<ReserveBody>(body)),
        1 => check(parse::<CommitBody>(body)),
        2 => check(parse::<ReleaseBody>(body)),
        3 => check(parse::<ExtendBody>(body)),
        4 => check(parse::<CheckBody>(body)),
        5 => check(parse::<PutItemBody>(body)),
        _ => check(parse::<AdjustBody>(body)),
    }
});
