//! The shared-data fetch record as another VM (or anything else writing the key) left it:
//! decoding, and the schedule's transitions from whatever state decoded. Input: the record's 60
//! bytes, then optionally `now` and the schedule's durations (cache, min cache, retry, timeout,
//! max stale, unknown-kid interval), each a little-endian u64 of milliseconds.
#![no_main]

use jwt_authn_wasm::fetch::{FetchState, Freshness, KidRefetch, MAX_BACKOFF, Schedule};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const RECORD_LEN: usize = 60;

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
    let schedule = Schedule {
        cache_duration: ms(600_000),
        min_cache_duration: ms(60_000),
        failed_refetch: ms(1_000),
        timeout: ms(5_000),
        max_stale: ms(86_400_000),
        unknown_kid_interval: ms(30_000),
    };
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
    let fresh = schedule.freshness(Some(Duration::from_millis(now % 10_000_000)));
    assert!(fresh <= schedule.cache_duration);
    let ok = state.succeeded(now, fresh);
    assert_eq!((ok.failures, ok.lease_until, ok.fetched_at, ok.finished_at), (0, 0, now, now));
    assert!(ok.version > state.version || state.version == u64::MAX);
    assert!(ok.next_fetch_at >= now && ok.fresh_until >= now);
    assert!(ok.freshness(now, schedule) == Freshness::Fresh || fresh.is_zero() || now == u64::MAX);
    let failed = state.failed(now, schedule);
    assert_eq!((failed.version, failed.lease_until, failed.finished_at), (state.version, 0, now));
    assert!(failed.failures > state.failures || state.failures == u32::MAX);
    assert!(failed.next_fetch_at >= now);
    assert!(schedule.backoff(failed.failures) <= MAX_BACKOFF.max(schedule.failed_refetch));
    // An unknown-kid refetch is granted only when allowed, and then never again at once.
    match state.ask_kid_refetch(now, schedule) {
        Some(asked) => {
            assert_eq!(state.kid_refetch(now, schedule), KidRefetch::Allowed);
            assert!(asked.next_fetch_at <= now.max(state.next_fetch_at));
            // (Unless the interval ends beyond the end of time, where every moment is "after" it.)
            let interval = u64::try_from(schedule.unknown_kid_interval.as_millis()).unwrap_or(u64::MAX);
            let ends = now.saturating_add(interval);
            assert!(asked.ask_kid_refetch(now, schedule).is_none() || interval == 0 || ends == u64::MAX);
        }
        None => assert_ne!(state.kid_refetch(now, schedule), KidRefetch::Allowed),
    }
}
