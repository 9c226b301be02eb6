//! The shared-data fetch record as another VM (or anything else writing the key) left it:
//! decoding, and the schedule's transitions from whatever state decoded. Input: the record's 36
//! bytes, then optionally `now` and the schedule's cache duration, retry delay and timeout, each a
//! little-endian u64 of milliseconds.
#![no_main]

use jwt_authn_wasm::fetch::{FetchState, MAX_BACKOFF, Schedule};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const RECORD_LEN: usize = 36;

fuzz_target!(|data: &[u8]| {
    // Only an exact record decodes, and it encodes back to the same bytes.
    match FetchState::decode(data) {
        Some(state) => assert_eq!(state.encode(), data),
        None => assert_ne!(data.len(), RECORD_LEN),
    }
    let Some(state) = data.get(..RECORD_LEN).and_then(FetchState::decode) else { return };
    let mut words = data
        .get(RECORD_LEN..)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
    let now = words.next().unwrap_or(state.next_fetch_at);
    let mut ms = |default| Duration::from_millis(words.next().unwrap_or(default));
    let schedule = Schedule { cache_duration: ms(600_000), failed_refetch: ms(1_000), timeout: ms(5_000) };
    transitions(&state, now, &schedule);
});

fn transitions(state: &FetchState, now: u64, schedule: &Schedule) {
    // The lease is taken only when a fetch is due, and holds past `now` (unless time saturates).
    match state.claim(now, schedule) {
        Some(claimed) => {
            assert!(state.fetch_due(now));
            assert!(claimed.lease_until > now || claimed.lease_until == u64::MAX);
            assert!(!claimed.fetch_due(now) || now == u64::MAX);
        }
        None => assert!(!state.fetch_due(now)),
    }
    let ok = state.succeeded(now, schedule);
    assert_eq!((ok.failures, ok.lease_until, ok.fetched_at), (0, 0, now));
    assert!(ok.version > state.version || state.version == u64::MAX);
    assert!(ok.next_fetch_at >= now);
    let failed = state.failed(now, schedule);
    assert_eq!((failed.version, failed.lease_until), (state.version, 0));
    assert!(failed.failures > state.failures || state.failures == u32::MAX);
    assert!(failed.next_fetch_at >= now);
    assert!(schedule.backoff(failed.failures) <= MAX_BACKOFF.max(schedule.failed_refetch));
}
