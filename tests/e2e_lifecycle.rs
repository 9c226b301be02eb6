//! The filter end to end, keys over time: the JWKS fetched through Envoy and shared by the
//! workers of a real Envoy (`--concurrency 2`), with a JWKS server the test starts late, rotates,
//! breaks and stops. Durations are short (`cache_duration` 2 s) so that a few refresh periods fit
//! in seconds.
//!
//! No verdict rests on how fast this machine is: fetch times are the server's choice of each
//! answer (`JwksServer::answered_at`) and the stamps of the filter's log lines (its decisions and
//! publishes), each worker's adoption of new keys is waited for (`Envoy::until_every_worker`),
//! and a hold is measured from the request's sending to the filter's answer.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::{log_lines, log_time, logged_at, published_after};
use serde_json::{Value, json};
use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant, SystemTime};
use support::config::{self, AUDIENCE, EnvoyConfig, Filter, ISSUER};
use support::http::{self, Response};
use support::mint::{TestKey, Token, jwks};
use support::servers::JwksServer;
use support::{Stack, wait_until};

const LOCAL_ISSUER: &str = "https://local.example";

/// `cache_duration` of the lifecycle test; the filter refreshes a tenth of it ahead.
const REFRESH: Duration = Duration::from_millis(1800);
/// Refresh periods counted in the lifecycle test...
const PERIODS: u32 = 3;
/// ...and how late each may run on average, on the filter's clock: a tick (100 ms) and the
/// fetch's own time.
const LATE: Duration = Duration::from_millis(400);
/// Guards against a hang, never a verdict: the filter retries a failed fetch at most 30 s later.
const GUARD: Duration = Duration::from_secs(40);
/// The filter's line for each key set it fetched.
const PUBLISHED: &str = "published JWKS version";
/// A whole millisecond: the filter's clock and its log stamps count in them (rounded down).
const MS: Duration = Duration::from_millis(1);

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

/// A request sent from its own thread, once answered.
struct Exchange {
    /// Its path, which names it in the filter's log.
    path: String,
    response: Response,
    sent: SystemTime,
    received: SystemTime,
}

type Pending = thread::JoinHandle<Exchange>;

/// Sends `n` requests at once from their own threads (so they spread over both workers and wait
/// inside Envoy together), to `/held?n=0`, `/held?n=1`...
fn concurrent(port: u16, n: usize, bearer: &str) -> Vec<Pending> {
    (0..n).map(|i| post(port, &format!("/held?n={i}"), bearer, None)).collect()
}

/// A request from its own thread: a GET, or a POST with this body (sent with the head, as most
/// clients do). It carries a forged `x-jwt-sub`, which must never reach the upstream.
fn post(port: u16, path: &str, bearer: &str, body: Option<&'static str>) -> Pending {
    let (auth, path) = (format!("Bearer {bearer}"), path.to_string());
    thread::spawn(move || {
        let method = if body.is_some() { "POST" } else { "GET" };
        let headers = [("authorization", auth.as_str()), ("x-jwt-sub", "mallory")];
        let sent = SystemTime::now();
        let response =
            http::request_with_body(port, method, &path, &headers, body.map(str::as_bytes)).unwrap();
        Exchange { path, response, sent, received: SystemTime::now() }
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

/// Waits until the filter has published `n` key sets; returns each publish line's version and
/// stamp, oldest first.
fn wait_published(stack: &Stack, n: usize) -> Vec<(u64, SystemTime)> {
    let published = || {
        let lines = log_lines(&stack.envoy, PUBLISHED);
        let version = |l: &str| l.split(PUBLISHED).nth(1)?.split_whitespace().next()?.parse().ok();
        lines.iter().map(|l| version(l).zip(log_time(l)).unwrap_or_else(|| panic!("{l}"))).collect::<Vec<_>>()
    };
    assert!(
        wait_until(GUARD, || published().len() >= n),
        "not {n} key sets published:\n{}",
        stack.envoy.log()
    );
    published()
}

/// Sends `new` (a token of a key only the new key set has) until each worker has adopted the new
/// set, which the filter `published` then: until it has, a worker refuses it as an unknown kid,
/// and never after (see `Envoy::until_every_worker_answers`).
fn until_every_worker_adopts(stack: &Stack, new: &str, published: SystemTime) {
    let request = || stack.get("/api", Some(new));
    stack.envoy.until_every_worker_answers(published, request, (401, Some("jwt_unknown_kid")), (200, None));
}

/// Panics unless the filter decided a request sent at `sent` within half of `hold` (by its log
/// stamp, `decided`, in whole milliseconds): it was not held for keys, which lasts until the
/// request's own hold or the startup hold runs out, or until a fetch changes something.
fn assert_not_held(what: &str, sent: SystemTime, decided: SystemTime, hold: Duration) {
    let took = decided.duration_since(sent).unwrap_or_default();
    assert!(decided < sent + hold / 2, "{what} answered {took:?} after it was sent: held");
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
    let held_post = post(port, "/held?n=post", &token_a, Some("a body"));
    let held_forged = post(port, "/held?n=forged", &forged, None);
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
    let up = SystemTime::now();
    stack.jwks.start();
    assert!(wait_until(GUARD, || stack.jwks.hits() >= 1), "no fetch after start");
    for h in held.into_iter().chain([held_post]) {
        let Exchange { response: r, sent, received, .. } = h.join().unwrap();
        let echo = r.json();
        assert_eq!((r.status, &echo["headers"]["x-jwt-sub"]), (200, &json!(["alice"])), "{}", r.body);
        assert!(sent < up && received > up, "not held until the server came up");
        assert!(echo["headers"].get("authorization").is_none());
        assert_eq!(echo["body"], if echo["method"] == "POST" { "a body" } else { "" });
    }
    let Exchange { response: r, sent, received, .. } = held_forged.join().unwrap();
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_bad_signature"));
    assert!(sent < up && received > up, "not held until the server came up");
    assert_eq!(stack.upstream.hits(), 6);

    // 3. One fetch per refresh period for the whole process, not one per worker VM (there are
    //    four) nor per provider (two share the source), over a few periods from the first fetch,
    //    while no token comes in (an unknown kid would ask for a refetch of its own). Each fetch
    //    publishes one version, and none starts before the refresh after the last one is due: the
    //    filter takes its answer no sooner than the server chose it, and the next fetch a
    //    `REFRESH` after that (in whole milliseconds), so two answers lie at least that far apart.
    let published = wait_published(&stack, PERIODS as usize + 1);
    let answered = stack.jwks.answered_at();
    let versions: Vec<u64> = published.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>(), "one version per publish");
    // The newest answer may still be on its way to the filter.
    let fetches = answered.len();
    assert!(
        fetches == versions.len() || fetches == versions.len() + 1,
        "{fetches} fetches, {versions:?} published"
    );
    let gaps: Vec<Duration> =
        answered.windows(2).map(|w| w[1].duration_since(w[0]).unwrap_or_default()).collect();
    assert!(
        gaps.iter().all(|gap| *gap + MS > REFRESH),
        "fetches {gaps:?} apart, refreshes due every {REFRESH:?}"
    );
    // Each period may run late by a tick and the fetch's own time: on average, on the filter's
    // clock, from the first publish to the last.
    let span = published[PERIODS as usize].1.duration_since(published[0].1).unwrap_or_default();
    eprintln!("fetches {gaps:?} apart; {PERIODS} refresh periods took {span:?} on the filter's clock");
    assert!(span <= (REFRESH + LATE) * PERIODS, "{PERIODS} refresh periods took {span:?}");
    for fetch in stack.jwks.requests() {
        assert_eq!((fetch.method.as_str(), fetch.path.as_str()), ("GET", "/jwks.json"));
        assert_eq!(fetch.header("host"), Some("idp"));
    }

    // 4. Rotation: right after a refresh, the server switches to key B only. The old keys serve
    //    until the next refresh (a `cache_duration` later, refreshed a tenth ahead): A is refused
    //    only once the server has served the new set, with the refresh after the last old one.
    //    Then each worker adopts it on its own tick, and A is refused and B passes everywhere.
    let published = log_count(&stack, PUBLISHED);
    assert!(
        wait_until(GUARD, || log_count(&stack, PUBLISHED) > published),
        "no refresh:\n{}",
        stack.envoy.log()
    );
    let old_answers = stack.jwks.switch_body(&jwks(&[(TestKey::RsaB, "rsa-b")]));
    let rotated = Instant::now();
    let mut refused_at = None;
    let refused = wait_until(GUARD, || {
        let r = stack.get("/api", Some(&token_a));
        match (r.status, r.body.as_str()) {
            (200, _) => false,
            (401, "jwt_unknown_kid") => {
                refused_at = Some(SystemTime::now());
                true
            }
            _ => panic!("the old key got {} {}", r.status, r.body),
        }
    });
    assert!(refused, "old key still used");
    eprintln!("rotation adopted after {:?}", rotated.elapsed());
    let answered = stack.jwks.answered_at();
    let (last_old, first_new) = (answered[old_answers - 1], answered.get(old_answers).copied());
    let first_new = first_new.unwrap_or_else(|| panic!("A refused before the server served the new set"));
    assert!(refused_at.is_some_and(|at| at > first_new), "A refused before the new set was served");
    let gap = first_new.duration_since(last_old).unwrap_or_default();
    assert!(gap + MS > REFRESH, "the new set fetched {gap:?} after the old one, before the refresh");
    until_every_worker_adopts(&stack, &token_b, published_after(&stack.envoy, first_new));
    assert!((0..4).all(|_| passes(&stack, &token_b) && refused_unknown_kid(&stack, &token_a)));

    // 5. A failed refresh keeps the last good keys (every kind of fault is in e2e_keys_faults.rs).
    stack.jwks.set_status(500);
    let line = "JWKS answer status 500; keeping the last good keys";
    assert!(wait_until(GUARD, || log_count(&stack, line) > 0), "no {line:?}:\n{}", stack.envoy.log());
    assert!((0..6).all(|_| passes(&stack, &token_b)), "keys lost after a failed refresh");

    // 6. And it recovers: a good answer again publishes a new version, which every worker adopts.
    stack.jwks.set_body(&jwks(&[(TestKey::RsaA, "rsa-a")]));
    let repaired = SystemTime::now();
    stack.jwks.set_status(200);
    until_every_worker_adopts(&stack, &token_a, published_after(&stack.envoy, repaired));
    assert!((0..4).all(|_| passes(&stack, &token_a) && refused_unknown_kid(&stack, &token_b)));
    stack.envoy.assert_no_wasm_failures();
}

/// The identity provider never comes up: a request waits `startup_hold_timeout`, then gets 503
/// with `Retry-After` (the client did nothing wrong); once the startup hold is over, at once.
/// Checks that need no keys are not held at all. Each hold is measured from the request's
/// sending to the filter's answer, as its log line is stamped.
#[test]
fn with_the_idp_down_from_the_start_requests_get_503_after_the_hold() {
    let hold = Duration::from_secs(2);
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
    held.push(post(stack.envoy.port(), "/held?n=valid-body", &valid, Some("valid")));
    held.push(post(stack.envoy.port(), "/held?n=forged-body", &forged, Some("forged")));

    // Meanwhile: no token, an expired one or another issuer's are refused without waiting for
    // keys, and `/healthz` passes.
    let expired =
        Token::new("RS256", TestKey::RsaA).kid("rsa-a").iss(ISSUER).aud(AUDIENCE).exp_in(-120).sign();
    let foreign =
        Token::new("RS256", TestKey::RsaA).kid("rsa-a").iss("https://x.example").aud(AUDIENCE).sign();
    for (bearer, reason) in
        [(None, "jwt_missing"), (Some(&expired), "jwt_expired"), (Some(&foreign), "jwt_issuer_not_allowed")]
    {
        let path = format!("/api?check={reason}");
        let sent = SystemTime::now();
        let r = stack.get(&path, bearer.map(String::as_str));
        assert_eq!((r.status, r.body.as_str()), (401, reason));
        let decided = logged_at(&stack.envoy, &format!("401 {path}: {reason}"), GUARD);
        assert_not_held(reason, sent, decided, hold);
    }
    assert_eq!(stack.get("/healthz", None).status, 200);
    // A requirement another provider satisfies does not wait for corp's keys (it passes, so the
    // filter logs nothing: its answer's arrival stands in for the decision).
    let local = Token::new("ES256", TestKey::P256B).kid("local-ec").iss(LOCAL_ISSUER).exp_in(60).sign();
    let sent = SystemTime::now();
    let r = stack.get_with("/any", &[("x-local-jwt", &local)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_not_held("requires_any", sent, SystemTime::now(), hold);

    // Each held request is answered at the end of its hold: not before it, by the filter's stamp,
    // and not long after it.
    for h in held {
        let e = h.join().unwrap();
        assert_unavailable(&e.response);
        let answered = logged_at(&stack.envoy, &format!("503 {}: jwks_unavailable", e.path), GUARD);
        let took = answered.duration_since(e.sent).unwrap_or_default();
        assert!(
            answered + MS > e.sent + hold,
            "{}: 503 {took:?} after it was sent, before the hold ran out",
            e.path
        );
        assert!(answered < e.sent + hold * 3, "{}: 503 only {took:?} after it was sent", e.path);
        assert!(e.received >= answered, "{}: answered before the filter's stamp", e.path);
    }
    let path = "/api?check=after-hold";
    let sent = SystemTime::now();
    assert_unavailable(&stack.get(path, Some(&valid)));
    let decided = logged_at(&stack.envoy, &format!("503 {path}: jwks_unavailable"), GUARD);
    assert_not_held("a request after the startup hold", sent, decided, hold);
    assert_eq!(stack.upstream.hits(), 2, "only /healthz and /any went upstream");
    assert_one_backoff(&stack, Duration::from_millis(200));

    // When it finally comes up, the next retry brings the keys and the same token passes.
    stack.jwks.set_body(&jwks(&[(TestKey::RsaA, "rsa-a")]));
    stack.jwks.start();
    assert!(wait_until(GUARD, || passes(&stack, &valid)), "{}", stack.envoy.log());
    stack.envoy.assert_no_wasm_failures();
}

/// One fetcher for the process, backing off from `first_retry`: each failed fetch announces the
/// next retry at twice the delay before, and none comes sooner than the delays announced before it
/// add up to, on the filter's clock from its first line (a VM configured, before any fetch). (A
/// dead upstream answers in a millisecond: VMs that each fetched would fail many times more.)
fn assert_one_backoff(stack: &Stack, first_retry: Duration) {
    let failures = log_lines(&stack.envoy, "fetch failed: ");
    let retry = |l: &str| l.split("retry in ").nth(1)?.strip_suffix(" ms")?.parse::<u64>().ok();
    let retries: Vec<u64> = failures.iter().map(|l| retry(l).unwrap_or_else(|| panic!("{l}"))).collect();
    // Doubling from the first, up to the filter's longest wait (30 s).
    let first = first_retry.as_millis() as u64;
    let doubling: Vec<u64> = (0..retries.len() as u32)
        .map(|i| first.saturating_mul(1u64.checked_shl(i).unwrap_or(u64::MAX)).min(30_000))
        .collect();
    assert!(
        !failures.is_empty() && retries == doubling,
        "failed fetches announced retries in {retries:?} ms"
    );
    let stamps = log_lines(&stack.envoy, "").iter().filter_map(|l| log_time(l)).min();
    let mut due = stamps.expect("the filter logged nothing");
    for (line, retry) in failures.iter().zip(retries) {
        assert!(line.contains("JWKS answer status 503; no keys yet"), "{line}");
        assert!(
            log_time(line).is_some_and(|at| at >= due),
            "a failed fetch before its retry was due ({due:?}): {line}"
        );
        due += Duration::from_millis(retry);
    }
}

fn assert_unavailable(r: &Response) {
    assert_eq!((r.status, r.body.as_str()), (503, "jwks_unavailable"));
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(r.header("www-authenticate"), None, "not the client's fault: no challenge");
}
