//! Istio's delivery path, end to end: the filter's config reaches a real Envoy (`--concurrency 2`)
//! by ECDS from a watched file (`envoy/e2e-ecds.yaml.tmpl`), as istiod delivers a `WasmPlugin`,
//! and is replaced while traffic flows. Envoy keeps the VM of each thread across updates and
//! gives each new config a new root context in it.
//!
//! `policy_replaced_under_load_*`: a new policy pushed under load applies within seconds, with no
//! 5xx and nothing let in that both policies refuse. `keys_moved_*`: a provider's JWKS moves to
//! another cluster and key set (the old keys are refused after it, the new ones accepted, the old
//! source is no longer fetched), then invalid pushes are refused by Envoy and the policy in force
//! stays. `requests_held_*`: requests waiting for keys when an update comes are still answered.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::logged_at;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};
use support::config::{self, AUDIENCE, EnvoyConfig, corp_jwks, corp_token};
use support::ecds::{self, EcdsFile, Push};
use support::envoy::Envoy;
use support::http;
use support::mint::{TestKey, jwks};
use support::servers::{EchoUpstream, JwksServer};
use support::{Stack, require_envoy, require_wasm, wait_until};

/// The audience of the policy pushed under load.
const NEW_AUDIENCE: &str = "api-v2.example";
/// How soon after Envoy took an update every new request must follow it: the new root context
/// picks up the keys in shared data on its first tick (100 ms); the rest is a shared machine.
const SETTLE: Duration = Duration::from_secs(2);

/// An Envoy whose filter comes by ECDS from `file`, with a second identity provider `idp2`.
/// Fields drop in order: Envoy first.
struct Ecds {
    stack: Stack,
    idp2: JwksServer,
    file: EcdsFile,
}

impl Ecds {
    /// Serves `corp_jwks` from `idp` and `idp2_jwks` from `idp2`, and starts Envoy with `policy`
    /// in the ECDS file. `None` (the test skips) without Envoy or the module outside CI.
    fn start(policy: Value, idp2_jwks: &str) -> Option<Ecds> {
        require_envoy()?;
        require_wasm()?;
        let (jwks, idp2, upstream) =
            (JwksServer::new(&corp_jwks()), JwksServer::new(idp2_jwks), EchoUpstream::new());
        let config = EnvoyConfig::new(policy, jwks.port(), upstream.port());
        let file = EcdsFile::new(&config.ecds_resource());
        let envoy = Envoy::start(&config.ecds_bootstrap(file.path(), idp2.port()), 2);
        Some(Ecds { stack: Stack { envoy, jwks, upstream }, idp2, file })
    }

    /// Pushes `policy` as the filter's new configuration.
    fn push(&self, policy: Value) -> Push {
        self.push_text(&self.resource(policy))
    }

    /// Pushes this exact resource text.
    fn push_text(&self, resource: &str) -> Push {
        self.file.push(&self.stack.envoy, resource)
    }

    /// The ECDS resource with `policy`.
    fn resource(&self, policy: Value) -> String {
        EnvoyConfig::new(policy, self.stack.jwks.port(), self.stack.upstream.port()).ecds_resource()
    }

    /// Status and body of a GET of `/api` with this token (or none), marked with `kind` in
    /// `x-kind` so the test can tell which requests reached the upstream.
    fn get(&self, kind: &str, bearer: Option<&str>) -> (u16, String) {
        let r = send(self.stack.envoy.port(), kind, bearer)
            .unwrap_or_else(|e| panic!("GET /api ({kind}) on port {}: {e}", self.stack.envoy.port()));
        (r.status, r.body)
    }

    /// The `x-kind` of every request that reached the upstream, with how many.
    fn upstream_kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for r in self.stack.upstream.requests() {
            *kinds.entry(r.header("x-kind").unwrap_or("none").to_string()).or_default() += 1;
        }
        kinds
    }
}

fn send(port: u16, kind: &str, bearer: Option<&str>) -> Result<http::Response, String> {
    send_to(port, "/api", kind, bearer)
}

/// As `send`, to `path` (which names the request in the filter's log).
fn send_to(port: u16, path: &str, kind: &str, bearer: Option<&str>) -> Result<http::Response, String> {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("x-kind", kind)];
    headers.extend(auth.as_deref().map(|a| ("authorization", a)));
    http::request(port, "GET", path, &headers)
}

fn policy_with_audience(audience: &str) -> Value {
    let mut p = config::corp_policy();
    p["providers"]["corp"]["audiences"] = json!([audience]);
    p
}

/// The requests of the load: two that one policy each accepts, three that both refuse.
const KINDS: [&str; 5] = ["old", "new", "forged", "neither", "missing"];
/// Kinds both policies refuse: they must never pass, nor reach the upstream.
const REFUSED_BY_BOTH: [&str; 3] = ["forged", "neither", "missing"];

/// The pause of each load client between requests.
const PAUSE: Duration = Duration::from_millis(2);

/// One request of the load: its kind, when it was sent and when answered (since the load began),
/// and its status (`Err` when the connection failed).
struct Sent {
    kind: &'static str,
    at: Duration,
    done: Duration,
    status: Result<u16, String>,
}

/// The tokens of each kind: `old` passes the first policy (audience `AUDIENCE`), `new` the pushed
/// one (`NEW_AUDIENCE`); `forged` is signed by a key not in the set under a known `kid`,
/// `neither` is for a third audience, `missing` has no token.
fn tokens() -> BTreeMap<&'static str, Option<String>> {
    let corp = |aud: &str| corp_token("RS256", TestKey::RsaA, "rsa-a").aud(aud).sign();
    BTreeMap::from([
        ("old", Some(corp(AUDIENCE))),
        ("new", Some(corp(NEW_AUDIENCE))),
        ("forged", Some(corp_token("RS256", TestKey::RsaB, "rsa-a").sign())),
        ("neither", Some(corp("elsewhere.example"))),
        ("missing", None),
    ])
}

/// Load: `clients` threads send the `KINDS` in turn, each request on its own connection with a
/// pause of `PAUSE` after it (a few hundred requests a second each: the machine is shared),
/// until `stop` is set, `deadline` passes or each has sent `max_each`. Each answered request goes
/// into `sent` at once, so the test can watch the load's progress.
fn load(
    port: u16,
    (clients, max_each): (usize, usize),
    (deadline, stop): (Instant, &AtomicBool),
    began: Instant,
    sent: &Mutex<Vec<Sent>>,
) {
    let tokens = tokens();
    thread::scope(|scope| {
        for client in 0..clients {
            let tokens = &tokens;
            scope.spawn(move || {
                for i in 0..max_each {
                    if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    let kind = KINDS[(i + client) % KINDS.len()];
                    let at = began.elapsed();
                    let status = send(port, kind, tokens[kind].as_deref()).map(|r| r.status);
                    let done = began.elapsed();
                    sent.lock().unwrap().push(Sent { kind, at, done, status });
                    thread::sleep(PAUSE);
                }
            });
        }
    });
}

/// The statuses of `kind` among the requests sent from `from` on and answered before `by`.
fn statuses(sent: &[Sent], kind: &str, from: Duration, by: Duration) -> Vec<u16> {
    let window = sent.iter().filter(|s| s.kind == kind && s.at >= from && s.done < by);
    window.filter_map(|s| s.status.clone().ok()).collect()
}

/// Waits (until `deadline`) for `MIN_PER_WINDOW` answers of each of the kinds the policies tell
/// apart among the requests sent from `from` on and answered before `by` (see `statuses`).
fn wait_for_answers(sent: &Mutex<Vec<Sent>>, from: Duration, by: impl Fn() -> Duration, deadline: Instant) {
    wait_until(deadline.saturating_duration_since(Instant::now()), || {
        let sent = sent.lock().unwrap();
        ["old", "new"].iter().all(|kind| statuses(&sent, kind, from, by()).len() >= MIN_PER_WINDOW)
    });
}

/// How many requests of each kind the policies tell apart the test wants answered under the
/// first policy, and under the pushed one.
const MIN_PER_WINDOW: usize = 10;

/// A policy pushed while four clients send requests: Envoy takes it, no request fails or gets a
/// 5xx, requests that both policies refuse never pass nor reach the upstream, requests answered
/// before the push follow the old policy and those sent from `SETTLE` after Envoy took it follow
/// the new one. The load runs until each window has `MIN_PER_WINDOW` answers of each kind.
#[test]
fn policy_replaced_under_load_applies_within_seconds_without_errors_or_leaks() {
    let Some(ecds) = Ecds::start(policy_with_audience(AUDIENCE), &corp_jwks()) else { return };
    let tokens = tokens();
    assert_eq!(ecds.get("old", tokens["old"].as_deref()).0, 200, "the first policy serves");

    let (stop, began, sent) = (AtomicBool::new(false), Instant::now(), Mutex::new(Vec::new()));
    // Hard bounds, whatever happens to the push: 30 s, 4 × 5,000 requests.
    let deadline = began + Duration::from_secs(30);
    let port = ecds.stack.envoy.port();
    let (pushed_at, taken_at) = thread::scope(|scope| {
        scope.spawn(|| load(port, (4, 5_000), (deadline, &stop), began, &sent));
        wait_for_answers(&sent, Duration::ZERO, || began.elapsed(), deadline);
        let pushed_at = began.elapsed();
        let push = ecds.push(policy_with_audience(NEW_AUDIENCE));
        let taken_at = began.elapsed();
        wait_for_answers(&sent, taken_at + SETTLE, || Duration::MAX, deadline);
        stop.store(true, Ordering::SeqCst);
        assert_eq!(push, Push::Accepted, "the new policy was refused");
        (pushed_at, taken_at)
    });
    let sent = sent.into_inner().unwrap();

    let failed: Vec<String> = sent
        .iter()
        .filter(|s| s.status.as_ref().map_or(true, |status| *status >= 500))
        .map(|s| format!("{} at {:?}: {:?}", s.kind, s.at, s.status))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        sent.len(),
        &failed[..failed.len().min(10)]
    );
    for kind in REFUSED_BY_BOTH {
        let let_in = statuses(&sent, kind, Duration::ZERO, Duration::MAX);
        assert!(let_in.iter().all(|s| [401, 403].contains(s)), "{kind}: {let_in:?}");
    }
    let upstream = ecds.upstream_kinds();
    assert!(upstream.keys().all(|k| k == "old" || k == "new"), "the upstream saw {upstream:?}");

    // A request answered before the push began was decided under the first policy. One sent
    // before it but answered later may meet either (Envoy takes a file within milliseconds, and a
    // request on a loaded machine waits a while before the filter sees it).
    let before = |kind| statuses(&sent, kind, Duration::ZERO, pushed_at);
    let after = |kind| statuses(&sent, kind, taken_at + SETTLE, Duration::MAX);
    // The first policy: audience `AUDIENCE`; the pushed one `NEW_AUDIENCE`; another is a 403.
    for (kind, old_policy, new_policy) in [("old", 200, 403), ("new", 403, 200)] {
        let (b, a) = (before(kind), after(kind));
        assert!(
            b.len() >= MIN_PER_WINDOW && a.len() >= MIN_PER_WINDOW,
            "{kind}: too few requests ({} before, {} after)",
            b.len(),
            a.len()
        );
        assert!(b.iter().all(|s| *s == old_policy), "{kind} answered before the push: {b:?}");
        assert!(a.iter().all(|s| *s == new_policy), "{kind} from {SETTLE:?} after the update: {a:?}");
    }
    let passed: Vec<(&str, Duration)> =
        sent.iter().filter(|s| s.status == Ok(200)).map(|s| (s.kind, s.at)).collect();
    let passed =
        |kind: &str| passed.iter().filter(|(k, _)| *k == kind).map(|(_, at)| *at).collect::<Vec<_>>();
    eprintln!(
        "{} requests in {:?}; pushed at {pushed_at:?}, taken at {taken_at:?}; last `old` passed at {:?}, first `new` at {:?}",
        sent.len(),
        began.elapsed(),
        passed("old").into_iter().max(),
        passed("new").into_iter().min(),
    );
    assert_eq!(upstream.values().sum::<usize>(), sent.iter().filter(|s| s.status == Ok(200)).count() + 1);
    ecds.stack.envoy.assert_no_wasm_failures();
}

/// The key set served from `idp2`: `RsaB` under the `kid` that names `RsaA` in `corp_jwks`, and
/// `P256B` as `ec-b`.
fn moved_jwks() -> String {
    jwks(&[(TestKey::RsaB, "rsa-a"), (TestKey::P256B, "ec-b")])
}

/// `corp_policy` with its keys from `idp2`.
fn moved_policy() -> Value {
    let mut p = config::corp_policy();
    p["providers"]["corp"]["remote_jwks"]["http_uri"] =
        json!({"uri": "http://idp2/moved/jwks.json", "cluster": "idp2", "timeout": "2s"});
    p
}

/// A provider's keys move to another cluster and another key set, in one update: afterwards
/// tokens of the old keys are refused (even one whose `kid` the new set reuses for another key,
/// and one the filter had verified and cached before), tokens of the new keys pass, on both
/// workers, and the old source is no longer fetched. Then three invalid pushes: a misspelt field and a requirement naming no provider
/// (the filter refuses its configuration), and an unknown wasm runtime (Envoy refuses the
/// resource). Envoy 1.40 rejects each (`update_rejected`) and keeps the policy in force: the new
/// keys still pass and no request without a token reaches the upstream. Envoy before 1.40
/// (1.36.4, 1.37.0 and 1.39.3 tested) takes the unknown runtime (`update_success`, nothing
/// logged) and goes on answering as before; the policy in force stays all the same.
#[test]
fn keys_moved_to_another_cluster_apply_and_invalid_pushes_keep_the_policy_in_force() {
    // Keys refreshed every second, so a config left running after the update would show.
    let mut first = config::corp_policy();
    first["providers"]["corp"]["remote_jwks"]["cache_duration"] = json!("1s");
    let Some(ecds) = Ecds::start(first, &moved_jwks()) else { return };
    let old_rsa = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    let old_ec = corp_token("ES256", TestKey::P256A, "ec-a").sign();
    let new_rsa = corp_token("RS256", TestKey::RsaB, "rsa-a").sign();
    let new_ec = corp_token("ES256", TestKey::P256B, "ec-b").sign();
    let expect = |kind: &str, token: Option<&str>, status: u16, body: &str| {
        let (got, got_body) = ecds.get(kind, token);
        let shown = if got == 200 { "(passed)" } else { got_body.as_str() };
        assert_eq!((got, shown), (status, body), "{kind}");
    };
    let old_keys_only = || {
        expect("old-rsa", Some(&old_rsa), 200, "(passed)");
        expect("old-ec", Some(&old_ec), 200, "(passed)");
        expect("new-rsa", Some(&new_rsa), 401, "jwt_bad_signature");
    };
    ecds.stack.on_both_workers(old_keys_only);
    assert_eq!(ecds.idp2.hits(), 0, "idp2 is not in the first policy");

    assert_eq!(ecds.push(moved_policy()), Push::Accepted);
    let moved = wait_until(Duration::from_secs(10), || ecds.get("new-rsa", Some(&new_rsa)).0 == 200);
    assert!(moved, "the new keys never passed");
    let (moved_at, idp_hits) = (Instant::now(), ecds.stack.jwks.hits());
    // Marked `moved:`, so the upstream shows which of them passed after the move.
    let new_keys_only = || {
        expect("moved:new-rsa", Some(&new_rsa), 200, "(passed)");
        expect("moved:new-ec", Some(&new_ec), 200, "(passed)");
        expect("moved:old-rsa", Some(&old_rsa), 401, "jwt_bad_signature");
        expect("moved:old-ec", Some(&old_ec), 401, "jwt_unknown_kid");
        expect("moved:missing", None, 401, "jwt_missing");
    };
    ecds.stack.on_both_workers(new_keys_only);
    assert!(ecds.idp2.hits() >= 1, "the keys were not fetched from idp2");
    assert!(ecds.idp2.requests().iter().all(|r| r.path == "/moved/jwks.json"));
    ecds.stack.envoy.assert_no_wasm_failures();

    let mut misspelt = moved_policy();
    misspelt["providers"]["corp"]["audience"] = json!(["anyone"]);
    let mut dangling = moved_policy();
    dangling["rules"][0]["requires"]["provider_name"] = json!("nobody");
    let unknown_runtime =
        ecds.resource(moved_policy()).replace("envoy.wasm.runtime.v8", "envoy.wasm.runtime.nope");
    let runtime_refused = support::envoy_version() >= (1, 40, 0);
    let invalid = [
        (ecds.resource(misspelt), "invalid configuration at `providers.corp.audience`: unknown field"),
        (
            ecds.resource(dangling),
            "invalid configuration at `rules[0].requires.provider_name`: unknown provider `nobody`",
        ),
        (unknown_runtime, "Failed to create Wasm VM using envoy.wasm.runtime.nope runtime"),
    ];
    let mut rejected = 0;
    for (i, (resource, logged)) in invalid.iter().enumerate() {
        let upstream_before = ecds.stack.upstream.hits();
        let pushed = ecds.push_text(resource);
        if i == 2 && !runtime_refused {
            assert_eq!(pushed, Push::Accepted, "Envoy before 1.40 took an unknown runtime until now");
        } else {
            assert_eq!(pushed, Push::Rejected, "invalid push {i} was taken");
            assert!(
                ecds.stack.envoy.log().contains(logged),
                "invalid push {i}: Envoy's log lacks {logged:?}"
            );
            rejected += 1;
        }
        ecds.stack.on_both_workers(new_keys_only);
        assert_eq!(ecds::counter(&ecds.stack.envoy, "update_rejected"), rejected, "invalid push {i}");
        assert!(ecds.stack.upstream.hits() > upstream_before, "the policy in force let nothing in");
    }
    let upstream = ecds.upstream_kinds();
    let refused = ["moved:old-rsa", "moved:old-ec", "moved:missing"];
    assert!(refused.iter().all(|k| !upstream.contains_key(*k)), "the upstream saw {upstream:?}");
    let taken = if runtime_refused { 2 } else { 3 };
    assert_eq!(ecds::counter(&ecds.stack.envoy, "update_success"), taken, "the first config and the move");
    // The first config's root contexts are gone with it: its source, due every second, is not
    // fetched any more (one fetch may have been in flight at the move).
    thread::sleep(Duration::from_secs(3).saturating_sub(moved_at.elapsed()));
    assert!(
        ecds.stack.jwks.hits() <= idp_hits + 1,
        "idp still fetched: {idp_hits} -> {}",
        ecds.stack.jwks.hits()
    );
}

/// Requests held for keys when an update comes (the first config's JWKS server never answers)
/// stay with the config they started under: its root context lives on while they do and
/// answers them 503 at the end of its `startup_hold_timeout`, while new requests already pass
/// under the new config. None hangs, none passes. Each hold is measured from the request's
/// sending to the filter's answer, as its log line is stamped.
#[test]
fn requests_held_for_keys_across_an_update_are_answered_by_their_own_config() {
    let hold = Duration::from_secs(3);
    let mut first = moved_policy();
    first["startup_hold_timeout"] = json!("3s");
    let Some(ecds) = Ecds::start(first, &moved_jwks()) else { return };
    ecds.idp2.set_hang(true);
    let port = ecds.stack.envoy.port();
    let token = corp_token("RS256", TestKey::RsaB, "rsa-a").sign();
    let held: Vec<_> = (0..4)
        .map(|i| {
            let (token, path) = (token.clone(), format!("/api?held={i}"));
            thread::spawn(move || {
                let sent = SystemTime::now();
                (send_to(port, &path, "held", Some(&token)), path, sent)
            })
        })
        .collect();
    let active = || ecds.stack.envoy.stat("http.ingress_http.downstream_rq_active");
    assert!(wait_until(Duration::from_secs(5), || active() == Some(4)), "held: {:?}", active());

    assert_eq!(ecds.push(config::corp_policy()), Push::Accepted);
    let corp = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    assert_eq!(ecds.get("after", Some(&corp)).0, 200, "the new config serves while the old holds");
    for h in held {
        let (answer, path, sent) = h.join().unwrap();
        let r = answer.unwrap_or_else(|e| panic!("a held request failed: {e}"));
        assert_eq!((r.status, r.body.as_str()), (503, "jwks_unavailable"), "held");
        // The filter answers at the request's arrival plus the hold at the earliest, on its clock
        // in whole milliseconds.
        let answered =
            logged_at(&ecds.stack.envoy, &format!("503 {path}: jwks_unavailable"), ecds::PUSH_TIMEOUT);
        let took = answered.duration_since(sent).unwrap_or_default();
        assert!(
            answered + Duration::from_millis(1) > sent + hold,
            "{path} answered {took:?} after it was sent"
        );
        assert!(answered < sent + Duration::from_secs(10), "{path} answered only {took:?} after it was sent");
    }
    assert!(!ecds.upstream_kinds().contains_key("held"));
}
