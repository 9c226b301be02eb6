//! The filter end to end, keys over time: the JWKS fetched through Envoy and shared by the
//! workers of a real Envoy (`--concurrency 2`), with a JWKS server the test starts late, rotates,
//! breaks and stops. Durations are short (`cache_duration` 2 s) so that a few refresh periods fit
//! in seconds.

mod support;

use serde_json::{Value, json};
use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};
use support::config::{self, AUDIENCE, EnvoyConfig, Filter, ISSUER};
use support::http::{self, Response};
use support::mint::{TestKey, Token, jwks};
use support::servers::JwksServer;
use support::{Stack, wait_until};

const LOCAL_ISSUER: &str = "https://local.example";

/// `cache_duration` of the lifecycle test; the filter refreshes a tenth of it ahead.
const CACHE: Duration = Duration::from_secs(2);
const REFRESH: Duration = Duration::from_millis(1800);

/// `corp_policy` with these durations, a second provider of another issuer with the same JWKS
/// source (so it shares corp's fetches) and one with inline keys (token in `x-local-jwt`).
/// `/healthz` is open, `/any` takes a corp or a local token, every other path a corp token.
fn policy(cache: &str, failed_refetch: &str, hold: &str) -> Value {
    let mut p = config::corp_policy();
    p["startup_hold_timeout"] = json!(hold);
    let remote = &mut p["providers"]["corp"]["remote_jwks"];
    remote["cache_duration"] = json!(cache);
    remote["async_fetch"] = json!({"failed_refetch_duration": failed_refetch});
    remote["http_uri"]["timeout"] = json!("1s");
    let mut twin = p["providers"]["corp"].clone();
    twin["issuer"] = json!("https://twin.example");
    p["providers"]["twin"] = twin;
    p["providers"]["local"] = json!({
        "issuer": LOCAL_ISSUER,
        "local_jwks": {"inline_string": jwks(&[(TestKey::P256B, "local-ec")])},
        "from_headers": [{"name": "x-local-jwt"}]
    });
    let either = json!([{"provider_name": config::PROVIDER}, {"provider_name": "local"}]);
    p["rules"] = json!([
        {"match": {"prefix": "/healthz"}},
        {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": either}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": config::PROVIDER}}
    ]);
    p
}

fn token(key: TestKey, kid: &str) -> String {
    config::corp_token("RS256", key, kid).sign()
}

/// A request in flight from its own thread: its answer, when it was sent and when answered.
type Pending = thread::JoinHandle<(Response, Instant, Instant)>;

/// Sends `n` requests at once from their own threads (so they spread over both workers and wait
/// inside Envoy together).
fn concurrent(port: u16, n: usize, bearer: &str) -> Vec<Pending> {
    (0..n).map(|_| post(port, bearer, None)).collect()
}

/// A request from its own thread: a GET, or a POST with this body (sent with the head, as most
/// clients do). It carries a forged `x-jwt-sub`, which must never reach the upstream.
fn post(port: u16, bearer: &str, body: Option<&'static str>) -> Pending {
    let auth = format!("Bearer {bearer}");
    thread::spawn(move || {
        let method = if body.is_some() { "POST" } else { "GET" };
        let headers = [("authorization", auth.as_str()), ("x-jwt-sub", "mallory")];
        let sent = Instant::now();
        let r = http::request_with_body(port, method, "/held", &headers, body.map(str::as_bytes)).unwrap();
        (r, sent, Instant::now())
    })
}

fn passes(stack: &Stack, token: &str) -> bool {
    stack.get("/api", Some(token)).status == 200
}

fn refused_unknown_kid(stack: &Stack, token: &str) -> bool {
    let r = stack.get("/api", Some(token));
    (r.status, r.body.as_str()) == (401, "jwt_unknown_kid")
}

/// How many lines of Envoy's log contain `text`.
fn log_count(stack: &Stack, text: &str) -> usize {
    stack.envoy.log().matches(text).count()
}

/// One Envoy through a provider's life: it starts before its identity provider (requests are
/// held, then pass), refreshes once per period for the whole process, adopts rotated keys at
/// the refresh, and keeps the last good keys through a failed refresh.
#[test]
fn keys_arrive_late_refresh_once_per_period_rotate_and_survive_failed_refreshes() {
    let Some(mut stack) = Stack::start_on(Filter::Wasm, JwksServer::reserve(), 2, |idp, upstream| {
        EnvoyConfig::new(policy("2s", "0.1s", "10s"), idp, upstream)
    }) else {
        return;
    };
    let (token_a, token_b) = (token(TestKey::RsaA, "rsa-a"), token(TestKey::RsaB, "rsa-b"));
    stack.jwks.set_body(&jwks(&[(TestKey::RsaA, "rsa-a")]));

    // 1. The identity provider is not up: requests are held inside Envoy, not refused: GETs, a
    //    POST whose body arrives with its head, a token only the keys can refuse (a wrong key for
    //    the kid), and a client that gives up while held. A missing token needs no keys and is
    //    refused at once; a route without `requires` passes.
    let port = stack.envoy.port();
    let forged = token(TestKey::RsaB, "rsa-a");
    let held = concurrent(port, 4, &token_a);
    let held_post = post(port, &token_a, Some("a body"));
    let held_forged = post(port, &forged, None);
    let mut quitter = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(quitter, "GET /held HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token_a}\r\n\r\n")
        .unwrap();
    let active = || stack.envoy.stat("http.ingress_http.downstream_rq_active");
    assert!(wait_until(Duration::from_secs(5), || active() == Some(7)), "held: {:?}", active());
    drop(quitter);
    assert!(wait_until(Duration::from_secs(5), || active() == Some(6)), "gave up: {:?}", active());
    let failed = "fetch failed: JWKS answer status 503; no keys yet";
    assert!(wait_until(Duration::from_secs(5), || log_count(&stack, failed) > 0), "{}", stack.envoy.log());
    assert_eq!(stack.get("/api", None).status, 401);
    assert_eq!(stack.get("/healthz", None).status, 200);
    assert!(held.iter().all(|h| !h.is_finished()), "a held request was answered before keys");
    assert_eq!(stack.upstream.hits(), 1, "only /healthz went upstream");

    // 2. It comes up: the next retry fetches, and every worker finishes its own held requests with
    //    the keys: on upstream with the claim headers set (the forged one gone) and the body
    //    intact, or refused.
    let up = Instant::now();
    stack.jwks.start();
    assert!(wait_until(Duration::from_secs(5), || stack.jwks.hits() >= 1), "no fetch after start");
    let first_fetch = Instant::now();
    for h in held.into_iter().chain([held_post]) {
        let (r, sent, answered) = h.join().unwrap();
        let echo = r.json();
        assert_eq!((r.status, &echo["headers"]["x-jwt-sub"]), (200, &json!(["alice"])), "{}", r.body);
        assert!(sent < up && answered > up, "not held until the server came up");
        assert!(echo["headers"].get("authorization").is_none());
        assert_eq!(echo["body"], if echo["method"] == "POST" { "a body" } else { "" });
    }
    let (r, sent, answered) = held_forged.join().unwrap();
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_bad_signature"));
    assert!(sent < up && answered > up, "not held until the server came up");
    assert_eq!(stack.upstream.hits(), 6);

    // 3. One fetch per refresh period for the whole process, not one per worker VM (there are
    //    four) nor per provider (two share the source). Counted over a few periods from the
    //    first fetch, while only tokens of known keys come in (an unknown kid would ask for a
    //    refetch of its own).
    thread::sleep((first_fetch + REFRESH * 3 + REFRESH / 2).saturating_duration_since(Instant::now()));
    let (fetches, elapsed) = (stack.jwks.hits(), first_fetch.elapsed());
    let periods = elapsed.as_secs_f64() / REFRESH.as_secs_f64();
    // Each period may run late by a tick (100 ms) and the fetch's own time.
    let slowest = elapsed.as_secs_f64() / (REFRESH + Duration::from_millis(400)).as_secs_f64();
    let (low, high) = (1 + slowest.floor() as usize, 1 + periods.ceil() as usize);
    eprintln!("{fetches} fetches in {elapsed:?} (expected {low}..={high})");
    assert!((low..=high).contains(&fetches), "{fetches} fetches in {elapsed:?}, expected {low}..={high}");
    for fetch in stack.jwks.requests() {
        assert_eq!((fetch.method.as_str(), fetch.path.as_str()), ("GET", "/jwks.json"));
        assert_eq!(fetch.header("host"), Some("idp"));
    }

    // 4. Rotation: right after a refresh, the server switches to key B only. The old keys serve
    //    until the next refresh (a `cache_duration` later, refreshed a tenth ahead); then A is
    //    refused and B passes, on every worker.
    let published = log_count(&stack, "published JWKS version");
    let refreshed = || log_count(&stack, "published JWKS version") > published;
    assert!(wait_until(CACHE * 2, refreshed), "no refresh:\n{}", stack.envoy.log());
    stack.jwks.set_body(&jwks(&[(TestKey::RsaB, "rsa-b")]));
    let rotated = Instant::now();
    assert!(wait_until(CACHE * 2, || refused_unknown_kid(&stack, &token_a)), "old key still used");
    let took = rotated.elapsed();
    eprintln!("rotation adopted after {took:?}");
    assert!(took > REFRESH / 2, "old key refused after {took:?}, before the refresh was due");
    let switched = || (0..4).all(|_| passes(&stack, &token_b) && refused_unknown_kid(&stack, &token_a));
    assert!(wait_until(Duration::from_secs(1), switched), "rotation not adopted:\n{}", stack.envoy.log());

    // 5. A failed refresh keeps the last good keys (every kind of fault is in e2e_keys_faults.rs).
    stack.jwks.set_status(500);
    let line = "JWKS answer status 500; keeping the last good keys";
    assert!(wait_until(CACHE * 2, || log_count(&stack, line) > 0), "no {line:?}:\n{}", stack.envoy.log());
    assert!((0..6).all(|_| passes(&stack, &token_b)), "keys lost after a failed refresh");
    // Counted after the failure's line: every earlier line has reached the log file by then.
    let before = log_count(&stack, "published JWKS version");

    // 6. And it recovers: a good answer again publishes a new version.
    stack.jwks.set_body(&jwks(&[(TestKey::RsaA, "rsa-a")]));
    stack.jwks.set_status(200);
    assert!(wait_until(CACHE * 2, || log_count(&stack, "published JWKS version") > before));
    assert!(wait_until(Duration::from_secs(1), || (0..4).all(|_| passes(&stack, &token_a))));
    stack.envoy.assert_no_wasm_failures();
}

/// The identity provider never comes up: a request waits `startup_hold_timeout`, then gets 503
/// with `Retry-After` (the client did nothing wrong); once the startup hold is over, at once.
/// Checks that need no keys are not held at all.
#[test]
fn with_the_idp_down_from_the_start_requests_get_503_after_the_hold() {
    let hold = Duration::from_secs(2);
    let started = Instant::now();
    let Some(mut stack) = Stack::start_on(Filter::Wasm, JwksServer::reserve(), 2, |idp, upstream| {
        EnvoyConfig::new(policy("600s", "0.2s", "2s"), idp, upstream)
    }) else {
        return;
    };
    let valid = token(TestKey::RsaA, "rsa-a");
    let mut held = concurrent(stack.envoy.port(), 3, &valid);
    // Requests with a body wait too: their body must not let them through. One is valid, one
    // signed by a key that is not the kid's (only the keys could tell).
    let forged = token(TestKey::RsaB, "rsa-a");
    held.push(post(stack.envoy.port(), &valid, Some("valid")));
    held.push(post(stack.envoy.port(), &forged, Some("forged")));

    // Meanwhile: no token, an expired one or another issuer's are refused without waiting for
    // keys, and `/healthz` passes.
    let expired =
        Token::new("RS256", TestKey::RsaA).kid("rsa-a").iss(ISSUER).aud(AUDIENCE).exp_in(-120).sign();
    let foreign =
        Token::new("RS256", TestKey::RsaA).kid("rsa-a").iss("https://x.example").aud(AUDIENCE).sign();
    for (bearer, reason) in
        [(None, "jwt_missing"), (Some(&expired), "jwt_expired"), (Some(&foreign), "jwt_issuer_not_allowed")]
    {
        let sent = Instant::now();
        let r = stack.get("/api", bearer.map(String::as_str));
        assert_eq!((r.status, r.body.as_str()), (401, reason));
        assert!(sent.elapsed() < hold / 2, "{reason} waited {:?}", sent.elapsed());
    }
    assert_eq!(stack.get("/healthz", None).status, 200);
    // A requirement another provider satisfies does not wait for corp's keys.
    let local = Token::new("ES256", TestKey::P256B).kid("local-ec").iss(LOCAL_ISSUER).exp_in(60).sign();
    let sent = Instant::now();
    let r = stack.get_with("/any", &[("x-local-jwt", &local)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(sent.elapsed() < hold / 2, "requires_any waited {:?}", sent.elapsed());

    for h in held {
        let (r, sent, answered) = h.join().unwrap();
        let took = answered - sent;
        assert_unavailable(&r);
        assert!(took >= hold - Duration::from_millis(200), "503 after {took:?}, before the hold ran out");
        assert!(took < hold * 3, "503 only after {took:?}");
    }
    let sent = Instant::now();
    assert_unavailable(&stack.get("/api", Some(&valid)));
    assert!(sent.elapsed() < hold / 2, "held again after the startup hold: {:?}", sent.elapsed());
    assert_eq!(stack.upstream.hits(), 2, "only /healthz and /any went upstream");
    // One fetcher for the process, backing off from 0.2 s: n failures take 0.2·(2^(n-1) - 1) s.
    // (A dead upstream answers in a millisecond: VMs that each fetched would fail many times more.)
    let failed = log_count(&stack, "fetch failed: JWKS answer status 503; no keys yet");
    let most = 2 + (started.elapsed().as_secs_f64() / 0.2 + 1.0).log2().floor() as usize;
    assert!((1..=most).contains(&failed), "{failed} failed fetches in {:?}", started.elapsed());

    // When it finally comes up, the next retry brings the keys and the same token passes.
    stack.jwks.set_body(&jwks(&[(TestKey::RsaA, "rsa-a")]));
    stack.jwks.start();
    assert!(wait_until(Duration::from_secs(8), || passes(&stack, &valid)), "{}", stack.envoy.log());
    stack.envoy.assert_no_wasm_failures();
}

fn assert_unavailable(r: &Response) {
    assert_eq!((r.status, r.body.as_str()), (503, "jwks_unavailable"));
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(r.header("www-authenticate"), None, "not the client's fault: no challenge");
}
