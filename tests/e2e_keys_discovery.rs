//! OIDC discovery end to end (real Envoy, `--concurrency 2`): the filter fetches
//! `<issuer>/.well-known/openid-configuration`, then the JWKS it names, and refuses a document that
//! names another issuer or aims the JWKS fetch at a host that is neither the issuer's nor in
//! `allowed_jwks_hosts`.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::{VmWatch, log_lines, log_time, logged_at, policy, published_after, wait_log};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use support::config::{ISSUER, PROVIDER, corp_jwks, corp_token};
use support::mint::{self, TestKey};
use support::servers::{JwksServer, Request};

const DISCOVERY: &str = "/.well-known/openid-configuration";
/// Guards against a hang, never a verdict.
const GUARD: Duration = Duration::from_secs(10);

fn document(issuer: &str, jwks_uri: &str) -> Option<String> {
    Some(json!({"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["code"]}).to_string())
}

/// Discovery through the `idp` cluster, `keys.example` allowed besides the issuer's host; keys
/// fresh 1 s (so re-discovered every second), retries from 200 ms, first keys awaited 1 s.
fn discovery_policy() -> Value {
    let mut policy = policy(
        json!({"http_uri": null, "cache_duration": "1s", "async_fetch": {"failed_refetch_duration": "0.2s"}}),
        json!({"startup_hold_timeout": "1s"}),
    );
    policy["providers"][PROVIDER]["oidc_discovery"] =
        json!({"cluster": "idp", "timeout": "1s", "allowed_jwks_hosts": ["keys.example"]});
    policy
}

/// The JWKS requests the server saw (anything but the discovery document), as (host, path).
fn jwks_requests(server: &JwksServer) -> Vec<(String, String)> {
    let host = |r: &Request| r.header("host").unwrap_or_default().to_string();
    server.requests().iter().filter(|r| r.path != DISCOVERY).map(|r| (host(r), r.path.clone())).collect()
}

#[test]
fn discovery_refuses_tampered_documents_and_follows_good_ones() {
    let server = JwksServer::new(r#"{"error":"no such document"}"#);
    server.set_path_body(DISCOVERY, document("https://evil.example", &format!("{ISSUER}/keys")).as_deref());
    server.set_path_body("/keys", Some(&corp_jwks()));
    let rotated = mint::jwks(&[(TestKey::RsaA, "rsa-a"), (TestKey::RsaB, "rsa-b")]);
    server.set_path_body("/other-keys", Some(&rotated));
    let Some(stack) = keys_common::start(server, discovery_policy()) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let valid = corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    // 503 at once, or at the end of the startup hold (1 s) for a request that came during it: the
    // filter's answer is stamped within 2 s of the sending.
    let unavailable = |why: &str| {
        let path = format!("/?why={why}");
        let sent = SystemTime::now();
        let r = stack.get(&path, Some(&valid));
        assert_eq!((r.status, r.body.as_str()), (503, "jwks_unavailable"), "{why}");
        let answered = logged_at(&stack.envoy, &format!("503 {path}: jwks_unavailable"), GUARD);
        let held = answered.duration_since(sent).unwrap_or_default();
        assert!(held < Duration::from_secs(2), "{why}: held {held:?}");
    };

    // Another issuer's document: refused, its jwks_uri never fetched.
    let line = wait_log(&stack.envoy, "names issuer \"https://evil.example\"", 0, Duration::from_secs(5));
    assert!(line.is_some_and(|l| l.contains("fetch failed: discovery")), "{}", stack.envoy.log());
    unavailable("wrong-issuer");
    let first = stack.jwks.requests()[0].clone();
    assert_eq!((first.path.as_str(), first.header("host")), (DISCOVERY, Some("issuer.example")));
    assert_eq!(jwks_requests(&stack.jwks), [], "a JWKS was fetched for a refused document");

    // The right issuer, but the JWKS on a host neither the issuer's nor allowed.
    stack.jwks.set_path_body(DISCOVERY, document(ISSUER, "https://evil.example/keys").as_deref());
    let line = wait_log(&stack.envoy, "jwks_uri host \"evil.example\"", 0, Duration::from_secs(5));
    assert!(line.is_some(), "{}", stack.envoy.log());
    unavailable("jwks-uri-on-another-host");
    assert_eq!(jwks_requests(&stack.jwks), [], "a JWKS was fetched for a refused document");

    // A good document: the JWKS on the issuer's host.
    stack.jwks.set_path_body(DISCOVERY, document(ISSUER, &format!("{ISSUER}/keys")).as_deref());
    let passed = support::wait_until(Duration::from_secs(5), || stack.get("/", Some(&valid)).status == 200);
    assert!(passed, "a good discovery document gave no keys\n{}", stack.envoy.log());
    assert!(jwks_requests(&stack.jwks).contains(&("issuer.example".into(), "/keys".into())));

    // The JWKS moves to an allowed host: re-discovered on the next refresh, fetched from there.
    stack.jwks.set_path_body(DISCOVERY, document(ISSUER, "https://keys.example/other-keys").as_deref());
    let moved = support::wait_until(Duration::from_secs(5), || {
        jwks_requests(&stack.jwks).contains(&("keys.example".into(), "/other-keys".into()))
    });
    assert!(moved, "the allowed host was not used: {:?}", jwks_requests(&stack.jwks));
    // A key only the allowed host serves passes on each worker once it adopted those keys (until
    // then, an unknown kid there), and from then on.
    let only_there = corp_token("RS256", TestKey::RsaB, "rsa-b").sign();
    // Fetches take turns, so the server's requests and answers line up.
    let fetch = stack.jwks.requests().iter().position(|r| r.path == "/other-keys").expect("fetched");
    let published = published_after(&stack.envoy, stack.jwks.answered_at()[fetch]);
    let request = || stack.get("/", Some(&only_there));
    stack.envoy.until_every_worker_answers(published, request, (401, Some("jwt_unknown_kid")), (200, None));

    // A tampered document later: the refresh fails, and each retry (0.2 s, then 0.4 s later)
    // discovers again and fails again; no JWKS is fetched, the last good keys serve.
    let failed = "fetch failed: discovery";
    let refused = log_lines(&stack.envoy, failed).len();
    stack
        .jwks
        .set_path_body(DISCOVERY, document("https://evil.example", "https://evil.example/keys").as_deref());
    assert!(wait_log(&stack.envoy, failed, refused, GUARD).is_some(), "the tampered document taken");
    let fetched = jwks_requests(&stack.jwks).len();
    assert!(wait_log(&stack.envoy, failed, refused + 2, GUARD).is_some(), "re-discovery not retried twice");
    assert_eq!(jwks_requests(&stack.jwks).len(), fetched, "a JWKS was fetched for a refused document");
    let stamps: Vec<SystemTime> =
        log_lines(&stack.envoy, failed).iter().filter_map(|l| log_time(l)).collect();
    let retried = stamps[refused + 1].duration_since(stamps[refused]).unwrap_or_default();
    assert!(retried < Duration::from_millis(1500), "re-discovery retried {retried:?} after the failure");
    assert_eq!(stack.get("/", Some(&valid)).status, 200, "the last good keys still serve");
    assert!(!jwks_requests(&stack.jwks).iter().any(|(host, _)| host == "evil.example"));
    vms.assert_unbroken(&stack.envoy);
}
