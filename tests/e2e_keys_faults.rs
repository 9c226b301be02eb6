//! Faults of the JWKS server, end to end (real Envoy, `--concurrency 2`): it answers 500, garbage,
//! 10 MB, a set of only unusable keys, hangs past the fetch timeout, or refuses connections. For
//! each, valid and invalid tokens are sent before, during and after: nothing invalid ever passes,
//! valid tokens pass on the last good keys until `max_stale` is over and get 503 only then, the
//! filter recovers when the server does, and the wasm VM never fails.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::{VmWatch, assert_refused, invalid_tokens, log_lines, policy};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::Stack;
use support::config::{corp_jwks, corp_token};
use support::mint::{self, TestKey};
use support::servers::JwksServer;

/// `cache_duration`: keys are fresh this long after each fetch (refreshed a tenth early).
const FRESH: Duration = Duration::from_secs(1);
/// `max_stale`: then served this much longer while refreshes fail.
const MAX_STALE: Duration = Duration::from_secs(2);
/// How late past `FRESH + MAX_STALE` the 503 may start (publishing and a loaded machine).
const SLACK: Duration = Duration::from_millis(500);

/// Time for every worker to look at shared data again (the filter ticks every 100 ms).
const TICKS: Duration = Duration::from_millis(250);

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
    /// The answer the server gives during a fault of the answer's body. Built before the moment
    /// the test counts from: the 10 MB one takes over a second in a debug build on a loaded
    /// machine, time enough for one more good refresh that would keep the keys fresh longer.
    fn body(self) -> Option<String> {
        match self {
            Fault::Garbage => Some("<html><body>502 Bad Gateway</body></html>".into()),
            Fault::Oversize => {
                let mut set: Value = serde_json::from_str(&corp_jwks()).unwrap();
                set["padding"] = json!("x".repeat(10 << 20));
                Some(set.to_string())
            }
            Fault::UnusableKeys => Some(unusable_keys()),
            Fault::ServerError | Fault::Hang | Fault::Refused => None,
        }
    }

    /// Breaks the server at once; `body` is `self.body()`.
    fn apply(self, server: &mut JwksServer, body: Option<&str>) {
        match self {
            Fault::ServerError => server.set_status(500),
            Fault::Garbage | Fault::Oversize | Fault::UnusableKeys => server.set_body(body.unwrap()),
            Fault::Hang => server.set_hang(true),
            Fault::Refused => server.stop(),
        }
    }

    fn repair(self, server: &mut JwksServer) {
        server.set_status(200);
        server.set_body(&corp_jwks());
        server.set_hang(false);
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

struct Checks {
    invalid: Vec<(&'static str, String)>,
    /// A valid token sent again and again: each worker verifies it once and then has it cached.
    cached: String,
    /// Requests sent so far (to take the invalid tokens in turn and make fresh tokens unique).
    sent: usize,
}

impl Checks {
    /// A valid token verified (and cached) many times, and one never seen before.
    fn valid(&mut self, stack: &Stack) -> [(u16, String); 2] {
        self.sent += 1;
        let fresh = corp_token("ES256", TestKey::P256A, "ec-a").claim("jti", json!(self.sent)).sign();
        [&self.cached, &fresh].map(|t| {
            let r = stack.get("/", Some(t));
            (r.status, r.body)
        })
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
        assert_eq!(self.valid(stack).map(|(s, _)| s), [200, 200], "{when}\n{}", stack.envoy.log());
        self.all_invalid(stack, &when);

        // Break the server right after a successful refresh: the keys are then fresh for FRESH
        // and stale for MAX_STALE after that, counted from a moment after `broken`.
        let failures = log_lines(&stack.envoy, fault.logged()).len();
        let body = fault.body();
        let hits = stack.jwks.hits();
        let deadline = Instant::now() + Duration::from_secs(3);
        // A tight poll: `broken` is the clock all timings below count from.
        while stack.jwks.hits() == hits {
            assert!(Instant::now() < deadline, "no refresh");
            std::thread::sleep(Duration::from_millis(1));
        }
        let broken = Instant::now();
        fault.apply(&mut stack.jwks, body.as_deref());
        let when = format!("during {fault:?}");
        // An unknown kid waits for at most the (failing) refetch, then is refused.
        let r = stack.get("/", Some(&corp_token("ES256", TestKey::P256B, "unknown").sign()));
        assert_refused(&format!("{when}: unknown kid"), &r);

        let expiry = FRESH + MAX_STALE;
        let unavailable_at = loop {
            let sent = broken.elapsed();
            let answers = self.valid(stack);
            let received = broken.elapsed();
            let near_expiry = sent + Duration::from_millis(50) >= expiry && sent < expiry + SLACK;
            match answers.each_ref().map(|(s, _)| *s) {
                [200, 200] if sent < expiry + SLACK => {}
                // The keys expired between the two requests.
                [200, 503] if near_expiry => {}
                [503, 503] => break received,
                _ => panic!("{when}, {sent:?} after the last good fetch: {answers:?}"),
            }
            self.invalid(stack, &when);
            std::thread::sleep(Duration::from_millis(50));
        };
        eprintln!("{fault:?}: valid tokens passed until {unavailable_at:?} after the last good fetch");
        assert!(
            unavailable_at >= expiry - Duration::from_millis(100),
            "503 before max_stale: {unavailable_at:?}"
        );
        for _ in 0..3 {
            let answers = self.valid(stack);
            assert_eq!(
                answers.each_ref().map(|(s, _)| *s),
                [503, 503],
                "{when}, past max_stale: {answers:?}"
            );
            assert_eq!(answers[0].1, "jwks_unavailable");
        }
        self.all_invalid(stack, &when);
        assert!(log_lines(&stack.envoy, fault.logged()).len() > failures, "no log line {:?}", fault.logged());

        fault.repair(&mut stack.jwks);
        let repaired = Instant::now();
        // Until every worker has the new keys, one may still answer 503.
        let recovered = support::wait_until(Duration::from_secs(8), || {
            let statuses = self.valid(stack).map(|(s, _)| s);
            assert!(
                statuses.iter().all(|s| [200, 503].contains(s)),
                "after {fault:?}, recovering: {statuses:?}"
            );
            statuses == [200, 200]
        });
        assert!(recovered, "no recovery within 8 s of the repair of {fault:?}");
        eprintln!("{fault:?}: recovered {:?} after the repair", repaired.elapsed());
        // The first worker has the new keys; every other one adopts them on its next tick.
        std::thread::sleep(TICKS);
        let when = format!("after {fault:?}");
        assert_eq!(self.valid(stack).map(|(s, _)| s), [200, 200], "{when}");
        self.all_invalid(stack, &when);
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
