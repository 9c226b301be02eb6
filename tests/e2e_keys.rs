//! Key lifecycle end to end: rotation, unknown-kid refetch without storms, and the JWKS answer's
//! caching headers. Real Envoy (`--concurrency 2`), the JWKS server under the test's control.
//! Faults of the JWKS server: `e2e_keys_faults.rs`; OIDC discovery: `e2e_keys_discovery.rs`.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::{VmWatch, log_time, policy, provider_stat, published_after, wait_log};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::Stack;
use support::config::{self, Filter, corp_jwks, corp_token};
use support::mint::{self, TestKey};
use support::servers::JwksServer;

/// A rotated key works on its first use, costing one fetch; keys still in the set keep working; a
/// key the IdP removed stops working with that refresh, even for a token that passed before.
#[test]
fn a_rotated_key_is_fetched_on_first_use() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &corp_jwks(), 2) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let old_rsa = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    let old_ec = corp_token("ES256", TestKey::P256A, "ec-a").sign();
    // Each until both workers have verified (and cached) it.
    for token in [&old_rsa, &old_ec] {
        stack.on_both_workers(|| {
            let r = stack.get("/warm", Some(token));
            assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
        });
    }
    let before = stack.jwks.hits();
    let refetches = || provider_stat(&stack.envoy, "jwks_refetch_unknown_kid");
    let asked = refetches();

    // The IdP adds rsa-b and signs with it from now on, and retires ec-a.
    let old_answers =
        stack.jwks.switch_body(&mint::jwks(&[(TestKey::RsaA, "rsa-a"), (TestKey::RsaB, "rsa-b")]));
    let new = corp_token("RS256", TestKey::RsaB, "rsa-b").sign();
    let started = Instant::now();
    let r = stack.get("/new", Some(&new));
    let first_use = started.elapsed();
    assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
    // cache_duration is 600 s: the one fetch is the refetch the unknown kid asked for.
    assert_eq!(refetches(), asked + 1, "one unknown-kid refetch");
    assert_eq!(stack.jwks.hits(), before + 1, "exactly one extra fetch");
    eprintln!("rotation: first use of the new kid took {first_use:?}, one unknown-kid refetch");

    // Each other worker adopts the published set on its next tick. Until then it refuses the new
    // kid (the interval's refetch is spent); once it has accepted it, never again.
    let published = published_after(&stack.envoy, stack.jwks.answered_at()[old_answers]);
    let request = || stack.get("/new", Some(&new));
    stack.envoy.until_every_worker_answers(published, request, (401, Some("jwt_unknown_kid")), (200, None));
    for _ in 0..4 {
        assert_eq!(stack.get("/new", Some(&new)).status, 200);
        assert_eq!(stack.get("/old", Some(&old_rsa)).status, 200, "a key kept in the set still works");
        let r = stack.get("/retired", Some(&old_ec));
        assert_eq!((r.status, r.body.as_str()), (401, "jwt_unknown_kid"), "a removed key stops working");
    }
    let r = stack.get("/random", Some(&corp_token("RS256", TestKey::RsaB, "nope").sign()));
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_unknown_kid"));
    assert_eq!(stack.jwks.hits(), before + 1, "the interval's refetch is spent");
    vms.assert_unbroken(&stack.envoy);
}

/// Requests from the storm: this many threads, each sending this many unknown-`kid` tokens, and
/// a valid token after every `VALID_EVERY`-th of them.
const STORM_THREADS: usize = 4;
const STORM_PER_THREAD: usize = 250;
const VALID_EVERY: usize = 5;
/// Pause between two requests of one thread, so the storm lasts a few seconds.
const STORM_PAUSE: Duration = Duration::from_millis(6);

/// 1,000 requests with random unknown `kid`s (properly signed, by a key the IdP does not have)
/// cost one JWKS fetch per `unknown_kid_refetch_interval` (30 s by default): at most 2 allowed,
/// all refused with 401 `jwt_unknown_kid`, and valid tokens sent in between keep passing.
#[test]
fn a_storm_of_unknown_kids_costs_at_most_two_fetches() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &corp_jwks(), 2) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let valid = [
        corp_token("RS256", TestKey::RsaA, "rsa-a").sign(),
        corp_token("ES256", TestKey::P256A, "ec-a").sign(),
    ];
    for token in &valid {
        let r = stack.get("/warm", Some(token));
        assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
    }
    let before = stack.jwks.hits();
    let started = Instant::now();
    let (stack, valid) = (&stack, &valid);
    let results: Vec<StormResult> = std::thread::scope(|s| {
        let threads: Vec<_> =
            (0..STORM_THREADS).map(|t| s.spawn(move || storm_thread(stack, t, valid))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let fetches = stack.jwks.hits() - before;
    let unknown: Vec<_> = results.iter().flat_map(|r| &r.unknown).collect();
    let valid_answers: Vec<_> = results.iter().flat_map(|r| &r.valid).collect();
    let slowest = unknown.iter().map(|(_, _, t)| *t).max().unwrap_or_default();
    eprintln!(
        "storm: {} unknown-kid requests and {} valid ones in {elapsed:?}: {fetches} JWKS fetch(es); \
         slowest refusal {slowest:?}",
        unknown.len(),
        valid_answers.len()
    );
    assert_eq!(unknown.len(), STORM_THREADS * STORM_PER_THREAD);
    let not_refused: Vec<_> =
        unknown.iter().filter(|(s, b, _)| (*s, b.as_str()) != (401, "jwt_unknown_kid")).collect();
    assert!(
        not_refused.is_empty(),
        "{} not refused as unknown kid, e.g. {:?}",
        not_refused.len(),
        not_refused[0]
    );
    let failed: Vec<_> = valid_answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{} valid requests failed, e.g. {:?}", failed.len(), failed[0]);
    assert!((1..=2).contains(&fetches), "{fetches} JWKS fetches for the storm");
    vms.assert_unbroken(&stack.envoy);
}

struct StormResult {
    /// Status, body and latency of each unknown-kid request.
    unknown: Vec<(u16, String, Duration)>,
    /// Status and body of each valid request.
    valid: Vec<(u16, String)>,
}

fn storm_thread(stack: &Stack, thread: usize, valid: &[String; 2]) -> StormResult {
    let mut seed =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 ^ (thread as u64 + 1);
    // Signed before the storm, so the storm's pace is the requests'.
    let tokens: Vec<String> = (0..STORM_PER_THREAD)
        .map(|_| corp_token("ES256", TestKey::P256B, &format!("{:016x}", xorshift(&mut seed))).sign())
        .collect();
    let mut result = StormResult { unknown: Vec::new(), valid: Vec::new() };
    for (i, token) in tokens.iter().enumerate() {
        let sent = Instant::now();
        let r = stack.get("/storm", Some(token));
        result.unknown.push((r.status, r.body, sent.elapsed()));
        if i % VALID_EVERY == 0 {
            let r = stack.get("/valid", Some(&valid[i / VALID_EVERY % 2]));
            result.valid.push((r.status, r.body));
        }
        std::thread::sleep(STORM_PAUSE);
    }
    result
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Refresh timing from the answer's caching headers, clamped to [min_cache_duration,
/// cache_duration] = [1 s, 60 s]: `max-age=2` refreshes every ~2 s (1.8 s: a tenth early),
/// `max-age=0` is raised to 1 s, `Expires` counts from `Date`, `max-age=3600` is cut to 60 s. A key
/// the IdP removed stops working after the next refresh, on each worker once it adopted it.
/// Refresh periods are the times between the server's answers (`refresh_gaps`).
#[test]
fn cache_control_sets_the_refresh_time() {
    let server = JwksServer::new(&corp_jwks());
    server.set_header("cache-control", "max-age=2");
    let policy = policy(json!({"cache_duration": "60s", "min_cache_duration": "1s"}), json!({}));
    let Some(stack) = keys_common::start(server, policy) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let first =
        wait_log(&stack.envoy, "published JWKS version", 0, Duration::from_secs(5)).expect("first keys");
    assert!(first.contains("fresh for 2 s"), "{first}");
    let rsa = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    let ec = corp_token("ES256", TestKey::P256A, "ec-a").sign();
    assert_eq!(stack.get("/", Some(&rsa)).status, 200);

    let gaps = refresh_gaps(&stack.jwks, 2);
    eprintln!("cache-control max-age=2: refreshes {gaps:?} apart");
    for gap in &gaps {
        assert!((1.8..2.6).contains(&gap.as_secs_f64()), "max-age=2 refreshes {gaps:?} apart");
    }

    // rsa-a leaves the set: its token (verified and cached before) fails after the next refresh,
    // on each worker from the tick it adopts the set on (until then it still passes there).
    stack.jwks.set_body(&mint::jwks(&[(TestKey::P256A, "ec-a")]));
    let refreshed = wait_log(&stack.envoy, "with 1 keys", 0, Duration::from_secs(5));
    let published = refreshed.as_deref().and_then(log_time).expect("a refresh with the smaller set");
    let request = || stack.get("/", Some(&rsa));
    stack.envoy.until_every_worker_answers(published, request, (200, None), (401, Some("jwt_unknown_kid")));
    stack.on_both_workers(|| {
        let r = stack.get("/", Some(&rsa));
        assert_eq!((r.status, r.body.as_str()), (401, "jwt_unknown_kid"));
        assert_eq!(stack.get("/", Some(&ec)).status, 200);
    });

    stack.jwks.set_header("cache-control", "max-age=0");
    let line = wait_log(&stack.envoy, "fresh for 1 s", 0, Duration::from_secs(5));
    assert!(line.is_some(), "max-age=0 is raised to min_cache_duration");
    let gaps = refresh_gaps(&stack.jwks, 1);
    assert!((0.9..1.6).contains(&gaps[0].as_secs_f64()), "max-age=0 refreshes {gaps:?} apart");

    // Expires is read relative to the answer's Date; Cache-Control, when present, wins.
    stack.jwks.set_header("cache-control", "");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    stack.jwks.set_header("date", &http_date(now));
    stack.jwks.set_header("expires", &http_date(now + 3));
    let line = wait_log(&stack.envoy, "fresh for 3 s", 0, Duration::from_secs(4)).expect("Expires read");
    assert!(line.contains("published JWKS version"), "{line}");
    stack.jwks.set_header("cache-control", "public, max-age=3600");
    let line = wait_log(&stack.envoy, "fresh for 60 s", 0, Duration::from_secs(5)).expect("max-age read");
    assert!(line.contains("published JWKS version"), "cut to cache_duration: {line}");
    let hits = stack.jwks.hits();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(stack.jwks.hits(), hits, "no refresh within 60 s");
    assert_eq!(stack.get("/", Some(&ec)).status, 200);
    vms.assert_unbroken(&stack.envoy);
}

/// Times between the next `n` + 1 fetches, as the server chose their answers (the first one only
/// starts the clock), each plus the millisecond the filter's clock (whole milliseconds) may lag
/// behind. The filter takes an answer no sooner than the server chose it and starts the next fetch
/// a refresh period after that: so a gap is never shorter than the period, however loaded the
/// machine, and a longer one is the filter's lateness (its tick, the fetch's way to the server).
fn refresh_gaps(jwks: &JwksServer, n: usize) -> Vec<Duration> {
    let from = jwks.answered_at().len();
    let fetched =
        support::wait_until(Duration::from_secs(5 * (n as u64 + 1)), || jwks.answered_at().len() > from + n);
    assert!(fetched, "not {} refreshes within {} s", n + 1, 5 * (n + 1));
    let times = &jwks.answered_at()[from..=from + n];
    times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default() + Duration::from_millis(1))
        .collect()
}

/// An IMF-fixdate (RFC 9110 §5.6.7) of Unix seconds.
fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[test]
fn http_dates_are_imf_fixdates() {
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
}
