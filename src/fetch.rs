//! When to fetch a provider's JWKS: a pure state machine over one small record that every worker VM
//! shares through proxy-wasm shared data (compare-and-swap). The shell reads the record, asks this
//! module what to do with `now`, and writes the answer back with the CAS it read; a lost race simply
//! means another VM acted first.
//!
//! One record per JWKS source holds the published key-set version, when those keys were fetched and
//! until when they are fresh, the schedule of the next fetch, the back-off counter, a *lease*, and
//! the last unknown-`kid` refetch. The lease (not a lock released on the response) is what keeps
//! exactly one fetch per process: a dead upstream answers in a millisecond, so a released lock lets
//! every VM fetch on every tick (see the Envoy notes).
//!
//! Key lifecycle beyond jwt_authn:
//! - a token naming an unknown `kid` asks for one refetch, at most once per
//!   `unknown_kid_refetch_interval`; requests wait for that one fetch, and once it has finished every
//!   unknown `kid` is refused at once until the interval is over (a flood of random `kid`s costs at
//!   most one fetch per interval);
//! - keys past their freshness keep serving while refreshes fail, for at most `max_stale`;
//! - the JWKS answer's `Cache-Control: max-age` (or `Expires`) sets the freshness, clamped to
//!   [`min_cache_duration`, `cache_duration`].

use std::time::Duration;

/// How a provider's keys are refreshed; built from its `remote_jwks` config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How long fetched keys are fresh at most (`cache_duration`).
    pub cache_duration: Duration,
    /// How long they are fresh at least, whatever the answer's caching headers say.
    pub min_cache_duration: Duration,
    /// First retry delay after a failed fetch (`async_fetch.failed_refetch_duration`); doubles per
    /// consecutive failure up to `MAX_BACKOFF` (never below this value).
    pub failed_refetch: Duration,
    /// The fetch timeout (`http_uri.timeout`); the lease outlives it by `LEASE_GRACE`.
    pub timeout: Duration,
    /// How long past their freshness keys keep serving while refreshes fail.
    pub max_stale: Duration,
    /// Least time between two refetches caused by unknown `kid`s.
    pub unknown_kid_interval: Duration,
}

/// Longest wait between retries after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Extra lease time past the fetch timeout, so a slow answer is not fetched twice.
pub const LEASE_GRACE: Duration = Duration::from_secs(1);
/// Refresh this long before the keys' freshness runs out (at most a tenth of it), so the new set is
/// usually in place before the old one is due.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(30);

/// The shared record of one JWKS source. Times are Unix milliseconds; 0 means "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchState {
    /// Version of the key set published in shared data; 0 = none yet.
    pub version: u64,
    /// When the published keys were fetched.
    pub fetched_at: u64,
    /// Until when the published keys are fresh.
    pub fresh_until: u64,
    /// When the next fetch is due (refresh, retry or unknown-kid refetch).
    pub next_fetch_at: u64,
    /// A fetch is in flight until this time; nobody else starts one before it.
    pub lease_until: u64,
    /// When the last fetch attempt ended, successful or not.
    pub finished_at: u64,
    /// When an unknown `kid` last asked for a refetch.
    pub kid_refetch_at: u64,
    /// Consecutive failed fetches since the last success.
    pub failures: u32,
}

/// What a token with an unknown `kid` may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidRefetch {
    /// Ask for a refetch and wait for it.
    Allowed,
    /// A refetch was asked for and has not finished: wait for it.
    InFlight,
    /// The interval's refetch is spent: refuse the token now.
    Spent,
}

/// How usable the published keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Past freshness but within `max_stale`: still served, with a warning.
    Stale,
    /// Beyond `max_stale`: not served.
    Expired,
}

/// A duration in whole milliseconds, saturating (the unit of every time in this module).
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Schedule {
    /// How long a fetch lease lasts: the fetch timeout and a grace.
    pub fn lease_ms(&self) -> u64 {
        ms(self.timeout.saturating_add(LEASE_GRACE))
    }

    /// Delay after the `failures`-th consecutive failure: failed_refetch · 2^(failures-1), capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        let delay = self.failed_refetch.saturating_mul(1 << doublings);
        delay.min(MAX_BACKOFF.max(self.failed_refetch))
    }

    /// How long keys from an answer are fresh: what its caching headers say, clamped to
    /// [`min_cache_duration`, `cache_duration`]; `cache_duration` when they say nothing.
    pub fn freshness(&self, from_headers: Option<Duration>) -> Duration {
        let min = self.min_cache_duration.min(self.cache_duration);
        from_headers.map_or(self.cache_duration, |d| d.clamp(min, self.cache_duration))
    }

    /// How long after a successful fetch the next one is due, for keys fresh for `fresh`.
    pub fn refresh_after(fresh: Duration) -> Duration {
        fresh.saturating_sub((fresh / 10).min(REFRESH_AHEAD))
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
        self.fetch_due(now)
            .then(|| FetchState { lease_until: now.saturating_add(schedule.lease_ms()), ..*self })
    }

    /// The record after new keys were published, fresh for `fresh` (see `Schedule::freshness`).
    pub fn succeeded(&self, now: u64, fresh: Duration) -> FetchState {
        FetchState {
            version: self.version.saturating_add(1),
            fetched_at: now,
            fresh_until: now.saturating_add(ms(fresh)),
            next_fetch_at: now.saturating_add(ms(Schedule::refresh_after(fresh))),
            lease_until: 0,
            finished_at: now,
            failures: 0,
            ..*self
        }
    }

    /// The record after a failed fetch: the last good keys stay, the retry backs off.
    pub fn failed(&self, now: u64, schedule: &Schedule) -> FetchState {
        let failures = self.failures.saturating_add(1);
        FetchState {
            next_fetch_at: now.saturating_add(ms(schedule.backoff(failures))),
            lease_until: 0,
            finished_at: now,
            failures,
            ..*self
        }
    }

    /// What an unknown `kid` may do now (see the module doc).
    pub fn kid_refetch(&self, now: u64, schedule: &Schedule) -> KidRefetch {
        let asked = self.kid_refetch_at;
        if asked == 0 || now >= asked.saturating_add(ms(schedule.unknown_kid_interval)) {
            KidRefetch::Allowed
        } else if self.finished_at >= asked {
            KidRefetch::Spent
        } else {
            KidRefetch::InFlight
        }
    }

    /// The record asking for an unknown-`kid` refetch now, if the interval allows one.
    pub fn ask_kid_refetch(&self, now: u64, schedule: &Schedule) -> Option<FetchState> {
        (self.kid_refetch(now, schedule) == KidRefetch::Allowed).then(|| FetchState {
            kid_refetch_at: now.max(1),
            next_fetch_at: self.next_fetch_at.min(now),
            ..*self
        })
    }

    pub fn freshness(&self, now: u64, schedule: &Schedule) -> Freshness {
        if now < self.fresh_until {
            Freshness::Fresh
        } else if now < self.fresh_until.saturating_add(ms(schedule.max_stale)) {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Fixed-size binary encoding for shared data (the seven times and counters in field order,
    /// then `failures`; little endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        for v in self.words() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.failures.to_le_bytes());
        out
    }

    fn words(&self) -> [u64; WORDS] {
        [
            self.version,
            self.fetched_at,
            self.fresh_until,
            self.next_fetch_at,
            self.lease_until,
            self.finished_at,
            self.kid_refetch_at,
        ]
    }

    /// Decodes `encode`'s output; anything else (absent or emptied key) is `None`.
    pub fn decode(bytes: &[u8]) -> Option<FetchState> {
        let (words, rest) = bytes.split_at_checked(WORDS * 8)?;
        let failures = u32::from_le_bytes(rest.try_into().ok()?);
        let mut it = words.chunks_exact(8).filter_map(|c| c.try_into().ok().map(u64::from_le_bytes));
        Some(FetchState {
            version: it.next()?,
            fetched_at: it.next()?,
            fresh_until: it.next()?,
            next_fetch_at: it.next()?,
            lease_until: it.next()?,
            finished_at: it.next()?,
            kid_refetch_at: it.next()?,
            failures,
        })
    }
}

const WORDS: usize = 7;
const ENCODED_LEN: usize = WORDS * 8 + 4;

/// Freshness a JWKS answer asks for: `Cache-Control: max-age` (`no-cache`/`no-store`: none), else
/// `Expires` relative to the answer's `Date` (or `now`). `None` when they say nothing usable.
pub fn freshness_from_headers(
    cache_control: Option<&str>,
    expires: Option<&str>,
    date: Option<&str>,
    now_ms: u64,
) -> Option<Duration> {
    if let Some(cc) = cache_control {
        let directives = cc.split(',').map(|d| d.trim().to_ascii_lowercase());
        for d in directives {
            if d == "no-cache" || d == "no-store" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = d.strip_prefix("max-age=") {
                return secs.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
            }
        }
    }
    let expires = http_date(expires?)?;
    let base = date.and_then(http_date).unwrap_or(now_ms / 1000);
    Some(Duration::from_secs(expires.saturating_sub(base)))
}

/// Unix seconds of an IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
/// The obsolete formats are not read (the default freshness applies instead).
pub fn http_date(s: &str) -> Option<u64> {
    let mut parts = s.split_ascii_whitespace();
    let (_weekday, day, month, year, time, zone) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = u64::try_from(MONTHS.iter().position(|m| *m == month)?).ok()? + 1;
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    // IMF-fixdate years have four digits; a longer one would overflow the day count below.
    let year: u64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut hms = time.split(':').map(|n| n.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day)? * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 { year.checked_sub(1)? } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        cache_duration: Duration::from_secs(600),
        min_cache_duration: Duration::from_secs(60),
        failed_refetch: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        max_stale: Duration::from_secs(3600),
        unknown_kid_interval: Duration::from_secs(30),
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
        let ok = leased.succeeded(2_000, SCHEDULE.freshness(None));
        assert_eq!((ok.version, ok.fetched_at, ok.lease_until, ok.failures), (1, 2_000, 0, 0));
        assert_eq!((ok.fresh_until, ok.finished_at), (602_000, 2_000));
        // 600 s fresh, refreshed 30 s ahead (a tenth would be 60 s; the cap is 30 s).
        assert_eq!(ok.next_fetch_at, 2_000 + 570_000);
        assert!(ok.claim(571_999, &SCHEDULE).is_none());
        assert!(ok.claim(572_000, &SCHEDULE).is_some());
        assert_eq!(Schedule::refresh_after(Duration::from_secs(2)), Duration::from_millis(1_800));
    }

    #[test]
    fn failures_keep_keys_and_back_off_exponentially_with_a_cap() {
        let mut s = FetchState::default().succeeded(0, SCHEDULE.freshness(None));
        let mut delays = Vec::new();
        for _ in 0..8 {
            let now = s.next_fetch_at;
            s = s.claim(now, &SCHEDULE).unwrap().failed(now, &SCHEDULE);
            delays.push(s.next_fetch_at - now);
            assert_eq!((s.version, s.fetched_at, s.finished_at), (1, 0, now), "last good keys stay");
        }
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
        let recovered = s.succeeded(s.next_fetch_at, SCHEDULE.freshness(None));
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
        assert_eq!(s.succeeded(u64::MAX, Duration::MAX).fresh_until, u64::MAX);
    }

    #[test]
    fn caching_headers_set_freshness_within_bounds() {
        let fresh = |cc, exp, date| SCHEDULE.freshness(freshness_from_headers(cc, exp, date, 0));
        assert_eq!(fresh(None, None, None), Duration::from_secs(600));
        assert_eq!(fresh(Some("public, max-age=300"), None, None), Duration::from_secs(300));
        assert_eq!(fresh(Some("max-age=5"), None, None), Duration::from_secs(60), "at least min");
        assert_eq!(fresh(Some("max-age=86400"), None, None), Duration::from_secs(600), "at most cache");
        assert_eq!(fresh(Some("no-store"), None, None), Duration::from_secs(60));
        assert_eq!(fresh(Some("MAX-AGE=\"120\""), None, None), Duration::from_secs(120));
        assert_eq!(fresh(Some("max-age=oops"), None, None), Duration::from_secs(600));
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(fresh(None, Some("Sun, 06 Nov 1994 08:54:37 GMT"), Some(date)), Duration::from_secs(300));
        assert_eq!(fresh(None, Some("0"), Some(date)), Duration::from_secs(600), "unreadable Expires");
        assert_eq!(fresh(None, Some(date), Some("Sun, 06 Nov 1994 09:49:37 GMT")), Duration::from_secs(60));
        // Cache-Control wins over Expires.
        assert_eq!(fresh(Some("max-age=200"), Some(date), Some(date)), Duration::from_secs(200));
        let tight = Schedule { cache_duration: Duration::from_secs(2), ..SCHEDULE };
        assert_eq!(tight.freshness(Some(Duration::ZERO)), Duration::from_secs(2), "min never above max");
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Tue, 29 Feb 2028 23:59:59 GMT"), Some(1_835_481_599));
        for bad in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 99999999999999999 08:49:37 GMT",
            "Sun, 06 Now 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT x",
        ] {
            assert_eq!(http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_kid_refetch_is_single_and_rate_limited() {
        let keys = FetchState::default().succeeded(0, SCHEDULE.freshness(None));
        assert_eq!(keys.kid_refetch(1_000, &SCHEDULE), KidRefetch::Allowed);
        let asked = keys.ask_kid_refetch(1_000, &SCHEDULE).unwrap();
        assert_eq!(asked.next_fetch_at, 1_000, "due at once");
        assert_eq!(asked.kid_refetch(1_001, &SCHEDULE), KidRefetch::InFlight);
        assert!(asked.ask_kid_refetch(1_001, &SCHEDULE).is_none(), "one refetch per interval");
        // The one fetch happens; afterwards unknown kids are refused at once for the interval...
        let done = asked.claim(1_100, &SCHEDULE).unwrap().succeeded(1_500, SCHEDULE.freshness(None));
        assert_eq!(done.kid_refetch(1_600, &SCHEDULE), KidRefetch::Spent);
        assert_eq!(done.kid_refetch(30_999, &SCHEDULE), KidRefetch::Spent);
        // ...and allowed again after it.
        assert_eq!(done.kid_refetch(31_000, &SCHEDULE), KidRefetch::Allowed);
        // A failed refetch also ends the wait.
        let failed = asked.claim(1_100, &SCHEDULE).unwrap().failed(1_200, &SCHEDULE);
        assert_eq!(failed.kid_refetch(1_300, &SCHEDULE), KidRefetch::Spent);
        // Asking never postpones an earlier due fetch.
        let due_soon = FetchState { next_fetch_at: 500, ..keys };
        assert_eq!(due_soon.ask_kid_refetch(1_000, &SCHEDULE).unwrap().next_fetch_at, 500);
    }

    #[test]
    fn stale_keys_serve_for_max_stale_then_expire() {
        let s = FetchState::default().succeeded(0, Duration::from_secs(600));
        assert_eq!(s.freshness(599_999, &SCHEDULE), Freshness::Fresh);
        assert_eq!(s.freshness(600_000, &SCHEDULE), Freshness::Stale);
        assert_eq!(s.freshness(600_000 + 3_599_999, &SCHEDULE), Freshness::Stale);
        assert_eq!(s.freshness(600_000 + 3_600_000, &SCHEDULE), Freshness::Expired);
        // A refresh that works makes them fresh again.
        assert_eq!(
            s.succeeded(5_000_000, Duration::from_secs(600)).freshness(5_000_001, &SCHEDULE),
            Freshness::Fresh
        );
    }

    #[test]
    fn encoding_round_trips_and_refuses_garbage() {
        let s = FetchState {
            version: 7,
            fetched_at: 1,
            fresh_until: 2,
            next_fetch_at: u64::MAX,
            lease_until: 3,
            finished_at: 4,
            kid_refetch_at: 5,
            failures: 9,
        };
        let bytes = s.encode();
        assert_eq!(bytes.len(), ENCODED_LEN);
        assert_eq!(FetchState::decode(&bytes), Some(s));
        for bad in [&b""[..], &bytes[..ENCODED_LEN - 1], b"garbage"] {
            assert_eq!(FetchState::decode(bad), None);
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(FetchState::decode(&long), None);
    }
}
