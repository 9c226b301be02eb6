//! Faults of the JWKS server, end to end (real Envoy, `--concurrency 2`): it answers 500, garbage,
//! 10 MB, a set of only unusable keys, hangs past the fetch timeout, or refuses connections. For
//! each, valid and invalid tokens are sent before, during and after: nothing invalid ever passes,
//! valid tokens pass on the last good keys until `max_stale` is over and get 503 only then, the
//! filter recovers when the server does, and the wasm VM never fails.
//!
//! No verdict rests on how fast this machine is: `max_stale` counts from the filter's own fetch
//! time, which the test brackets between the server's choice of that answer and the stamp of the
//! filter's log line about it (`last_good_fetch`); recovery waits until each worker has answered.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::{VmWatch, assert_refused, invalid_tokens, log_lines, log_time, policy, wait_log};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::config::{corp_jwks, corp_token};
use support::envoy::Envoy;
use support::mint::{self, TestKey};
use support::servers::JwksServer;
use support::{Stack, WORKERS};

/// `cache_duration`: keys are fresh this long after each fetch (refreshed a tenth early).
const FRESH: Duration = Duration::from_secs(1);
/// `max_stale`: then served this much longer while refreshes fail.
const MAX_STALE: Duration = Duration::from_secs(2);

/// Guards against a hang, never a verdict: valid tokens still passing this long into a fault
/// (`FRESH + MAX_STALE` after the last good fetch is when they stop)...
const FAULT_GUARD: Duration = Duration::from_secs(30);
/// ...and a repair not showing this long after it (the filter retries at most every 30 s).
const RECOVERY_GUARD: Duration = Duration::from_secs(40);

/// Fetch timeout 500 ms, keys fresh 1 s and then stale 2 s, retries from 200 ms on.
fn faults_policy() -> Value {
    policy(
        json!({
            "http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "0.5s"},
            "cache_duration": "1s",
            "max_stale": "2s",
            "async_fetch": {"failed_refetch_duration": "0.2s"}
        }),
        json!({}),
    )
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    ServerError,
    Garbage,
    /// 10 MB: a valid key set padded far past `max_jwks_bytes` (256 KiB by default).
    Oversize,
    /// Every key is one the verifier must not use.
    UnusableKeys,
    /// Accepts and never answers (the fetch timeout is 500 ms).
    Hang,
    /// Connections refused.
    Refused,
}

impl Fault {
    /// The body the server answers with during the fault, if it has one of its own. Made before the
    /// fault starts (10 MB take a while to build), so that applying the fault takes no time.
    fn body(self) -> Option<String> {
        match self {
            Fault::Garbage => Some("<html><body>502 Bad Gateway</body></html>".to_string()),
            Fault::Oversize => {
                let mut set: Value = serde_json::from_str(&corp_jwks()).unwrap();
                set["padding"] = json!("x".repeat(10 << 20));
                Some(set.to_string())
            }
            Fault::UnusableKeys => Some(unusable_keys()),
            Fault::ServerError | Fault::Hang | Fault::Refused => None,
        }
    }

    fn apply(self, server: &mut JwksServer, body: Option<&str>) {
        if let Some(body) = body {
            server.set_body(body);
        }
        match self {
            Fault::ServerError => server.set_status(500),
            Fault::Hang => server.set_hang(true),
            // A connection accepted just before the listener closes is closed unanswered.
            Fault::Refused => {
                server.set_close(true);
                server.stop();
            }
            Fault::Garbage | Fault::Oversize | Fault::UnusableKeys => {}
        }
    }

    fn repair(self, server: &mut JwksServer) {
        server.set_status(200);
        server.set_body(&corp_jwks());
        server.set_hang(false);
        server.set_close(false);
        server.start();
    }

    /// What the filter logs about the failed fetch.
    fn logged(self) -> &'static str {
        match self {
            Fault::ServerError => "fetch failed: JWKS answer status 500",
            Fault::Garbage => "fetch failed: JWKS JWKS is not a JSON object",
            Fault::Oversize => "exceeds the limit of 262144",
            Fault::UnusableKeys => "fetch failed: JWKS JWKS has no usable key",
            Fault::Hang => "fetch failed: JWKS answer status 504",
            Fault::Refused => "fetch failed: JWKS answer status 503",
        }
    }
}

/// A 1024-bit RSA key under the good kid `rsa-a`, a shared secret, an encryption key, and a key
/// whose `alg` needs another key type.
fn unusable_keys() -> String {
    let mut enc = TestKey::P256A.jwk("ec-a", None);
    enc["use"] = json!("enc");
    mint::jwks_of([
        TestKey::Rsa1024TooSmall.jwk("rsa-a", None),
        json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}),
        enc,
        TestKey::RsaB.jwk("rsa-b", Some("ES256")),
    ])
}

#[test]
fn server_errors_garbage_and_unusable_keys_keep_the_last_good_keys_for_max_stale() {
    run(&[Fault::ServerError, Fault::Garbage, Fault::UnusableKeys]);
}

#[test]
fn oversize_answers_hangs_and_refused_connections_keep_the_last_good_keys_for_max_stale() {
    run(&[Fault::Oversize, Fault::Hang, Fault::Refused]);
}

fn run(faults: &[Fault]) {
    let Some(mut stack) = keys_common::start(JwksServer::new(&corp_jwks()), faults_policy()) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let cached = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    let mut checks = Checks { invalid: invalid_tokens(), cached, sent: 0 };
    for fault in faults {
        checks.cycle(&mut stack, *fault);
    }
    assert!(!log_lines(&stack.envoy, "keys are stale").is_empty(), "no stale warning");
    assert!(!log_lines(&stack.envoy, "older than max_stale").is_empty(), "no expiry warning");
    vms.assert_unbroken(&stack.envoy);
}

/// One request with a valid token: its answer, and when it was sent and came back.
#[derive(Debug)]
struct Exchange {
    status: u16,
    body: String,
    sent: SystemTime,
    received: SystemTime,
}

fn send(stack: &Stack, token: &str) -> Exchange {
    let sent = SystemTime::now();
    let r = stack.get("/", Some(token));
    Exchange { status: r.status, body: r.body, sent, received: SystemTime::now() }
}

fn statuses(exchanges: &[Exchange]) -> Vec<u16> {
    exchanges.iter().map(|e| e.status).collect()
}

struct Checks {
    invalid: Vec<(&'static str, String)>,
    /// A valid token sent again and again: each worker verifies it once and then has it cached.
    cached: String,
    /// Requests sent so far (to take the invalid tokens in turn and make fresh tokens unique).
    sent: usize,
}

impl Checks {
    /// A valid token verified (and cached) many times, and one never seen before.
    fn tokens(&mut self) -> [String; 2] {
        self.sent += 1;
        let fresh = corp_token("ES256", TestKey::P256A, "ec-a").claim("jti", json!(self.sent)).sign();
        [self.cached.clone(), fresh]
    }

    fn valid(&mut self, stack: &Stack) -> [Exchange; 2] {
        self.tokens().map(|t| send(stack, &t))
    }

    /// The next invalid token, refused.
    fn invalid(&mut self, stack: &Stack, when: &str) {
        let (what, token) = &self.invalid[self.sent % self.invalid.len()];
        self.sent += 1;
        assert_refused(&format!("{when}: {what} token"), &stack.get("/", Some(token)));
    }

    fn all_invalid(&mut self, stack: &Stack, when: &str) {
        for _ in 0..self.invalid.len() {
            self.invalid(stack, when);
        }
    }

    fn cycle(&mut self, stack: &mut Stack, fault: Fault) {
        let when = format!("before {fault:?}");
        assert_eq!(statuses(&self.valid(stack)), [200, 200], "{when}\n{}", stack.envoy.log());
        self.all_invalid(stack, &when);

        let failures = log_lines(&stack.envoy, fault.logged()).len();
        let good = break_after_a_fetch(&mut stack.jwks, fault);
        let when = format!("during {fault:?}");
        // An unknown kid waits for at most the (failing) refetch, then is refused.
        let r = stack.get("/", Some(&corp_token("ES256", TestKey::P256B, "unknown").sign()));
        assert_refused(&format!("{when}: unknown kid"), &r);

        let exchanges = self.until_unavailable(stack, &when);
        self.all_invalid(stack, &when);
        let line = wait_log(&stack.envoy, fault.logged(), failures, Duration::from_secs(5));
        assert!(line.is_some(), "no log line {:?}", fault.logged());

        let answered = stack.jwks.answered_at();
        let fetched = last_good_fetch(&stack.envoy, &answered[..good]);
        fetched.judge(&exchanges, &when);
        fetched.report(fault, &exchanges);

        fault.repair(&mut stack.jwks);
        self.until_recovered(stack, fault);
        let when = format!("after {fault:?}");
        assert_eq!(statuses(&self.valid(stack)), [200, 200], "{when}");
        self.all_invalid(stack, &when);
    }

    /// Sends valid tokens (and invalid ones in between) until both get 503 `jwks_unavailable`, then
    /// three more rounds that must too. Only 200 and that 503 may answer, and never 200 after a 503:
    /// the keys expire once, at the same instant for every worker. When is judged later.
    fn until_unavailable(&mut self, stack: &Stack, when: &str) -> Vec<Exchange> {
        let started = Instant::now();
        let mut exchanges: Vec<Exchange> = Vec::new();
        let mut unavailable_rounds = 0;
        while unavailable_rounds < 4 {
            let answers = self.valid(stack);
            for a in answers {
                let unavailable = (a.status, a.body.as_str()) == (503, "jwks_unavailable");
                assert!(a.status == 200 || unavailable, "{when}: {a:?}");
                let after_503 = exchanges.iter().any(|e| e.status == 503);
                assert!(!(after_503 && a.status == 200), "{when}: 200 after a 503: {a:?}");
                exchanges.push(a);
            }
            if exchanges.iter().rev().take(2).all(|e| e.status == 503) {
                unavailable_rounds += 1;
                continue;
            }
            assert!(started.elapsed() < FAULT_GUARD, "{when}: valid tokens still pass after {FAULT_GUARD:?}");
            self.invalid(stack, when);
            std::thread::sleep(Duration::from_millis(50));
        }
        exchanges
    }

    /// Sends valid tokens until each worker has answered 200. A worker answers 503 until it
    /// adopts the new keys (on its next tick after the fetch), and never again once it has.
    fn until_recovered(&mut self, stack: &Stack, fault: Fault) {
        let repaired = Instant::now();
        let mut adopted = [false; WORKERS.len()];
        let recovered = support::wait_until(RECOVERY_GUARD, || {
            for token in self.tokens() {
                let (worker, a) = stack.envoy.worker_serving(|| send(stack, &token));
                match (a.status, a.body.as_str()) {
                    (200, _) => adopted[worker] = true,
                    (503, "jwks_unavailable") if !adopted[worker] => {}
                    _ => panic!("after {fault:?}, recovering: {} answered {a:?}", WORKERS[worker]),
                }
            }
            adopted.iter().all(|a| *a)
        });
        assert!(recovered, "no recovery on {adopted:?} within {RECOVERY_GUARD:?} of the repair of {fault:?}");
        eprintln!("{fault:?}: every worker recovered {:?} after the repair", repaired.elapsed());
    }
}

/// Waits for the next fetch, then breaks the server before it answers any later one; returns how
/// many answers it chose before the fault (all good). Tries again, after a repair, when another
/// fetch was answered first (this thread was slower than the next refresh).
fn break_after_a_fetch(jwks: &mut JwksServer, fault: Fault) -> usize {
    let body = fault.body();
    for _ in 0..3 {
        let seen = jwks.answered_at().len();
        assert!(
            support::wait_until(Duration::from_secs(5), || jwks.answered_at().len() > seen),
            "no refresh"
        );
        let good = jwks.answered_at().len();
        fault.apply(jwks, body.as_deref());
        if jwks.answered_at().len() == good {
            return good;
        }
        eprintln!("{fault:?}: a later fetch was answered before the fault took effect; again");
        fault.repair(jwks);
    }
    panic!("{fault:?}: could not break the server right after a fetch");
}

/// Bounds on the filter's fetch time of the last good keys (`fetched_at`: their freshness and
/// `max_stale` count from it), on the clock the filter reads.
#[derive(Debug)]
struct Fetched {
    /// When the server chose the answer the filter published: earlier than `fetched_at`.
    chosen: SystemTime,
    /// The millisecond stamp of the filter's "published JWKS version" line for it, logged right
    /// after it took `fetched_at` (itself a whole millisecond): not earlier than `fetched_at`.
    logged: SystemTime,
}

/// The last good fetch: the newest published version (the server has answered nothing good since
/// `answered`, the times of its good answers). Its answer is the newest good one chosen before its
/// line was logged: fetches take turns (one lease), and the next starts 0.9 s after a publish.
fn last_good_fetch(envoy: &Envoy, answered: &[SystemTime]) -> Fetched {
    let published = log_lines(envoy, "published JWKS version");
    let newest = published.iter().filter_map(|l| Some((version(l)?, log_time(l)?))).max();
    let (_, logged) = newest.unwrap_or_else(|| panic!("no published version in {published:?}"));
    assert!(logged <= SystemTime::now(), "a log stamp in the future: {logged:?} (time zone?)");
    let before_line = logged + Duration::from_millis(1);
    let chosen = answered.iter().filter(|t| **t < before_line).max().copied();
    Fetched { chosen: chosen.expect("no good answer before the publish"), logged }
}

/// The version in a "published JWKS version N ..." line.
fn version(line: &str) -> Option<u64> {
    line.split("published JWKS version ").nth(1)?.split_whitespace().next()?.parse().ok()
}

impl Fetched {
    /// The filter serves keys while its clock (in whole milliseconds) reads less than `fetched_at`
    /// plus `FRESH + MAX_STALE`. So an answer back before `chosen` (to the millisecond below) plus
    /// that was decided before expiry and must be 200, and a request sent at or after `logged`
    /// plus that is decided after it and must be 503. In between, either is right.
    fn deadlines(&self) -> (SystemTime, SystemTime) {
        let chosen_ms = self.chosen.duration_since(UNIX_EPOCH).unwrap().as_millis();
        let chosen_floor = UNIX_EPOCH + Duration::from_millis(chosen_ms as u64);
        (chosen_floor + FRESH + MAX_STALE, self.logged + FRESH + MAX_STALE)
    }

    fn judge(&self, exchanges: &[Exchange], when: &str) {
        let (served_until, refused_from) = self.deadlines();
        for e in exchanges {
            let (sent, received) = (self.since(e.sent), self.since(e.received));
            let late = if e.received < served_until {
                e.status != 200
            } else {
                e.sent >= refused_from && e.status != 503
            };
            assert!(
                !late,
                "{when}: {} sent {sent:?} and answered {received:?} after the last good answer, \
                 which the filter logged {:?} after it (max_stale ends {:?} after the fetch)",
                e.status,
                self.since(self.logged),
                FRESH + MAX_STALE
            );
        }
    }

    fn since(&self, t: SystemTime) -> Duration {
        t.duration_since(self.chosen).unwrap_or_default()
    }

    fn report(&self, fault: Fault, exchanges: &[Exchange]) {
        let last_200 = exchanges.iter().filter(|e| e.status == 200).map(|e| self.since(e.received)).max();
        let first_503 = exchanges.iter().filter(|e| e.status == 503).map(|e| self.since(e.sent)).min();
        eprintln!(
            "{fault:?}: last good keys published {:?} after their answer; from it, valid tokens \
             passed until {last_200:?} and got 503 from {first_503:?}",
            self.since(self.logged)
        );
    }
}

/// A token naming an unknown `kid` waits for the refetch; when that refetch fails, the request is
/// refused as soon as the failure is in the shared record, on whichever worker holds it, not at
/// the end of its hold (the fetch timeout, 5 s here, plus a second's grace).
#[test]
fn a_failed_unknown_kid_refetch_refuses_held_requests_at_once() {
    let slow_timeout =
        json!({"http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "5s"}});
    let Some(stack) = keys_common::start(JwksServer::new(&corp_jwks()), policy(slow_timeout, json!({})))
    else {
        return;
    };
    let valid = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    assert_eq!(stack.get("/", Some(&valid)).status, 200, "first keys");
    let vms = VmWatch::new(&stack.envoy);

    stack.jwks.set_status(500);
    let unknown = corp_token("RS256", TestKey::RsaA, "rotated-away").sign();
    let fetches = stack.jwks.hits();
    let sent = Instant::now();
    let r = stack.get("/", Some(&unknown));
    let waited = sent.elapsed();
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_unknown_kid"));
    assert_eq!(stack.jwks.hits(), fetches + 1, "one refetch");
    assert!(waited < Duration::from_secs(2), "held {waited:?} after the refetch failed");
    vms.assert_unbroken(&stack.envoy);
}

#[test]
fn envoy_log_stamps_are_read_as_utc() {
    let line = "[2026-12-05 21:28:03.701][7628][info][wasm] published JWKS version 3";
    let at = log_time(line).unwrap().duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(at, Duration::from_millis(1_796_506_083_701));
    assert_eq!(log_time("[2024-02-29 00:00:00.000]"), Some(UNIX_EPOCH + Duration::from_secs(1_709_164_800)));
    assert_eq!(version(line), Some(3));
    assert_eq!(log_time("no stamp"), None);
}
