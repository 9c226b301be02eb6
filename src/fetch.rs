//! When to fetch a provider's JWKS: a pure state machine over one small record that every worker VM
//! shares through proxy-wasm shared data (compare-and-swap). The shell reads the record, asks this
//! module what to do with `now`, and writes the answer back with the CAS it read; a lost race simply
//! means another VM acted first.
//!
//! One record per provider holds the published key-set version, the schedule, the back-off counter
//! and a *lease*: the time until which one VM's fetch is in flight. The lease (not a lock released on
//! the response) is what keeps exactly one fetch per process: a dead upstream answers in a
//! millisecond, so a released lock lets every VM fetch on every tick (see the Envoy notes).

use std::time::Duration;

/// How a provider's keys are refreshed; built from its `remote_jwks` config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How long fetched keys are fresh (`cache_duration`).
    pub cache_duration: Duration,
    /// First retry delay after a failed fetch (`async_fetch.failed_refetch_duration`); doubles per
    /// consecutive failure up to `MAX_BACKOFF` (never below this value).
    pub failed_refetch: Duration,
    /// The fetch timeout (`http_uri.timeout`); the lease outlives it by `LEASE_GRACE`.
    pub timeout: Duration,
}

/// Longest wait between retries after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Extra lease time past the fetch timeout, so a slow answer is not fetched twice.
pub const LEASE_GRACE: Duration = Duration::from_secs(1);
/// Refresh this long before the keys' freshness runs out (at most a tenth of `cache_duration`), so
/// the new set is usually in place before the old one is due.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(30);

/// The shared record of one provider. Times are Unix milliseconds; 0 means "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchState {
    /// Version of the key set published in shared data; 0 = none yet.
    pub version: u64,
    /// When the published keys were fetched.
    pub fetched_at: u64,
    /// When the next fetch is due (refresh or retry).
    pub next_fetch_at: u64,
    /// A fetch is in flight until this time; nobody else starts one before it.
    pub lease_until: u64,
    /// Consecutive failed fetches since the last success.
    pub failures: u32,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Schedule {
    /// Delay after the `failures`-th consecutive failure: failed_refetch · 2^(failures-1), capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        let delay = self.failed_refetch.saturating_mul(1 << doublings);
        delay.min(MAX_BACKOFF.max(self.failed_refetch))
    }

    /// How long after a successful fetch the next one is due.
    pub fn refresh_after(&self) -> Duration {
        let ahead = (self.cache_duration / 10).min(REFRESH_AHEAD);
        self.cache_duration.saturating_sub(ahead)
    }
}

impl FetchState {
    /// Keys exist in shared data.
    pub fn has_keys(&self) -> bool {
        self.version > 0
    }

    /// Whether a fetch should start now: it is due and no other fetch holds the lease.
    pub fn fetch_due(&self, now: u64) -> bool {
        now >= self.next_fetch_at && now >= self.lease_until
    }

    /// The record with this VM's lease taken, if a fetch is due; write it back with the CAS it was
    /// read with, and fetch only if that write succeeds.
    pub fn claim(&self, now: u64, schedule: &Schedule) -> Option<FetchState> {
        self.fetch_due(now).then(|| FetchState {
            lease_until: now.saturating_add(ms(schedule.timeout.saturating_add(LEASE_GRACE))),
            ..*self
        })
    }

    /// The record after new keys were published: next version, fresh schedule, lease released.
    pub fn succeeded(&self, now: u64, schedule: &Schedule) -> FetchState {
        FetchState {
            version: self.version.saturating_add(1),
            fetched_at: now,
            next_fetch_at: now.saturating_add(ms(schedule.refresh_after())),
            lease_until: 0,
            failures: 0,
        }
    }

    /// The record after a failed fetch: the last good keys stay, the retry backs off.
    pub fn failed(&self, now: u64, schedule: &Schedule) -> FetchState {
        let failures = self.failures.saturating_add(1);
        FetchState {
            next_fetch_at: now.saturating_add(ms(schedule.backoff(failures))),
            lease_until: 0,
            failures,
            ..*self
        }
    }

    /// Fixed-size binary encoding for shared data (version, fetched_at, next_fetch_at, lease_until,
    /// failures; little endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        for v in [self.version, self.fetched_at, self.next_fetch_at, self.lease_until] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.failures.to_le_bytes());
        out
    }

    /// Decodes `encode`'s output; anything else (absent or emptied key) is `None`.
    pub fn decode(bytes: &[u8]) -> Option<FetchState> {
        let (words, rest) = bytes.split_at_checked(32)?;
        let failures = u32::from_le_bytes(rest.try_into().ok()?);
        let mut it = words.chunks_exact(8).filter_map(|c| c.try_into().ok().map(u64::from_le_bytes));
        Some(FetchState {
            version: it.next()?,
            fetched_at: it.next()?,
            next_fetch_at: it.next()?,
            lease_until: it.next()?,
            failures,
        })
    }
}

const ENCODED_LEN: usize = 36;

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        cache_duration: Duration::from_secs(600),
        failed_refetch: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
    };

    #[test]
    fn fresh_state_fetches_at_once_and_only_once() {
        let s = FetchState::default();
        assert!(!s.has_keys());
        let leased = s.claim(1_000, &SCHEDULE).unwrap();
        assert_eq!(leased.lease_until, 1_000 + 6_000);
        // Another VM reading the leased record does not fetch until the lease runs out.
        assert!(leased.claim(1_001, &SCHEDULE).is_none());
        assert!(leased.claim(6_999, &SCHEDULE).is_none());
        assert!(leased.claim(7_000, &SCHEDULE).is_some(), "a lost answer is retried after the lease");
    }

    #[test]
    fn success_publishes_a_new_version_and_schedules_the_refresh() {
        let leased = FetchState::default().claim(0, &SCHEDULE).unwrap();
        let ok = leased.succeeded(2_000, &SCHEDULE);
        assert_eq!((ok.version, ok.fetched_at, ok.lease_until, ok.failures), (1, 2_000, 0, 0));
        // 600 s cache, refreshed 30 s ahead (a tenth would be 60 s; the cap is 30 s).
        assert_eq!(ok.next_fetch_at, 2_000 + 570_000);
        assert!(ok.claim(571_999, &SCHEDULE).is_none());
        assert!(ok.claim(572_000, &SCHEDULE).is_some());
        let short = Schedule { cache_duration: Duration::from_secs(2), ..SCHEDULE };
        assert_eq!(short.refresh_after(), Duration::from_millis(1_800));
    }

    #[test]
    fn failures_keep_keys_and_back_off_exponentially_with_a_cap() {
        let mut s = FetchState::default().succeeded(0, &SCHEDULE);
        let mut delays = Vec::new();
        for _ in 0..8 {
            let now = s.next_fetch_at;
            s = s.claim(now, &SCHEDULE).unwrap().failed(now, &SCHEDULE);
            delays.push(s.next_fetch_at - now);
            assert_eq!(s.version, 1, "last good keys stay");
        }
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
        let recovered = s.succeeded(s.next_fetch_at, &SCHEDULE);
        assert_eq!((recovered.version, recovered.failures), (2, 0));
    }

    #[test]
    fn backoff_never_below_the_configured_retry_nor_overflowing() {
        let slow = Schedule { failed_refetch: Duration::from_secs(120), ..SCHEDULE };
        assert_eq!(slow.backoff(1), Duration::from_secs(120));
        assert_eq!(slow.backoff(u32::MAX), Duration::from_secs(120));
        assert_eq!(SCHEDULE.backoff(u32::MAX), MAX_BACKOFF);
        let s = FetchState { next_fetch_at: u64::MAX, ..FetchState::default() };
        assert!(s.claim(u64::MAX - 1, &SCHEDULE).is_none());
        assert_eq!(s.failed(u64::MAX, &SCHEDULE).next_fetch_at, u64::MAX);
    }

    #[test]
    fn encoding_round_trips_and_refuses_garbage() {
        let s =
            FetchState { version: 7, fetched_at: 1, next_fetch_at: u64::MAX, lease_until: 3, failures: 9 };
        let bytes = s.encode();
        assert_eq!(bytes.len(), ENCODED_LEN);
        assert_eq!(FetchState::decode(&bytes), Some(s));
        for bad in [&b""[..], &bytes[..35], b"garbage"] {
            assert_eq!(FetchState::decode(bad), None);
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(FetchState::decode(&long), None);
    }
}
