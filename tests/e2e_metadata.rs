//! Identity in Envoy filter state and requirements chosen per route, end to end: the built
//! `.wasm` in a real Envoy from `envoy/identity.yaml.tmpl` (an access log that prints the filter
//! state, an RBAC filter that reads it, routes carrying `filter_metadata.jwt_authn_wasm`), a JWKS
//! server and an echo upstream.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::config::{AUDIENCE, EnvoyConfig, Filter, ISSUER, corp_jwks, corp_token};
use support::envoy::TempDir;
use support::http::Response;
use support::mint::{TestKey, Token};
use support::servers::JwksServer;
use support::{Stack, upstream_headers, wait_until};

/// `corp` writes every identity entry; `requirement_map` makes the filter read route metadata.
fn policy() -> Value {
    json!({
        "providers": {
            "corp": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "remote_jwks": {"http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "5s"}},
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
                "payload_in_metadata": "jwt_payload",
                "header_in_metadata": "jwt_header",
                "failed_status_in_metadata": "jwt_failure",
                "claim_to_filter_state": [{"claim_name": "sub", "name": "jwt_sub"}]
            }
        },
        "requirement_map": {
            "strict": {"provider_and_audiences": {"provider_name": "corp", "audiences": ["strict.example"]}}
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]
    })
}

/// An Envoy from the identity template, logging to a file in `dir`.
fn start(policy: Value, dir: &TempDir) -> Option<(Stack, PathBuf)> {
    start_on(JwksServer::new(&corp_jwks()), policy, dir)
}

fn start_on(jwks: JwksServer, policy: Value, dir: &TempDir) -> Option<(Stack, PathBuf)> {
    let log = dir.path().join("access.log");
    let path = log.to_string_lossy().into_owned();
    let stack = Stack::start_on(Filter::Wasm, jwks, 2, |idp, upstream| {
        EnvoyConfig::new(policy, idp, upstream).template("identity.yaml.tmpl", &[("ACCESS_LOG_PATH", &path)])
    })?;
    Some((stack, log))
}

fn token() -> Token<'static> {
    corp_token("RS256", TestKey::RsaA, "rsa-a")
}

/// The access-log line of the request for `path` (each test request has a path of its own).
fn logged(log: &Path, path: &str) -> Value {
    let mut line = None;
    let found = wait_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        line = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|v| v["path"] == path);
        line.is_some()
    });
    assert!(found, "no access-log line for {path} in {}", std::fs::read_to_string(log).unwrap_or_default());
    line.unwrap_or_default()
}

fn body_is(r: &Response, status: u16, body: &str) -> bool {
    r.status == status && r.body == body
}

#[test]
fn the_verified_identity_reaches_the_access_log_and_rbac() {
    let dir = TempDir::new("identity");
    let Some((stack, log)) = start(policy(), &dir) else { return };
    let alice = token();

    // A verified token: payload and header as received, the subject on its own, no failure.
    assert_eq!(
        upstream_headers(&stack.get("/api/alice", Some(&alice.sign())))["x-jwt-sub"],
        json!(["alice"])
    );
    let line = logged(&log, "/api/alice");
    assert_eq!((line["route"].as_str(), line["status"].as_u64()), (Some("default"), Some(200)), "{line}");
    assert_eq!(line["sub"], "alice");
    let payload: Value = serde_json::from_str(line["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, serde_json::from_str::<Value>(&alice.payload_json()).unwrap());
    let header: Value = serde_json::from_str(line["header"].as_str().unwrap()).unwrap();
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("RS256"), Some("rsa-a")));
    assert!(line["failure"].is_null(), "{line}");

    // Envoy routes again on the claim headers the filter set: a verified ops-bot ends on `ops`.
    assert_eq!(stack.get("/api/ops", Some(&token().sub("ops-bot").sign())).status, 200);
    assert_eq!(logged(&log, "/api/ops")["route"], "ops");

    // A refused token: only the failure, as jwt_authn's {code, message}; no token: nothing.
    let r = stack.get("/api/expired", Some(&alice.exp_in(-120).sign()));
    assert!(body_is(&r, 401, "jwt_expired"), "{r:?}");
    let line = logged(&log, "/api/expired");
    let failure: Value = serde_json::from_str(line["failure"].as_str().unwrap()).unwrap();
    assert_eq!(failure, json!({"code": 401, "message": "jwt_expired"}));
    assert!(line["sub"].is_null() && line["payload"].is_null() && line["header"].is_null(), "{line}");
    assert_eq!(stack.get("/api/none", None).status, 401);
    let line = logged(&log, "/api/none");
    assert!(["sub", "payload", "header", "failure"].iter().all(|k| line[k].is_null()), "{line}");

    // RBAC after the filter reads the subject from filter state: /admin is alice's only.
    assert_eq!(stack.get("/admin/alice", Some(&token().sign())).status, 200);
    let r = stack.get("/admin/bob", Some(&token().sub("bob").sign()));
    assert!(body_is(&r, 403, "RBAC: access denied"), "a verified bob is not alice: {r:?}");
    let r = stack.get("/admin/forged", Some(&token().exp_in(-120).sign()));
    assert!(body_is(&r, 401, "jwt_expired"), "refused before RBAC: {r:?}");
    stack.envoy.assert_no_wasm_failures();
}

#[test]
fn routes_choose_the_requirement_and_fail_closed_when_misconfigured() {
    let dir = TempDir::new("routes");
    let Some((stack, _log)) = start(policy(), &dir) else { return };
    let expired = token().exp_in(-120).sign();

    // `disabled`: no token needed, a bad one is not looked at; elsewhere the rules still hold.
    assert_eq!(stack.get("/healthz", None).status, 200);
    assert_eq!(stack.get("/healthz", Some(&expired)).status, 200);
    assert!(body_is(&stack.get("/api", None), 401, "jwt_missing"));

    // `requirement_name`: requirement_map["strict"] wants the audience strict.example.
    let r = stack.get("/strict", Some(&token().sign()));
    assert!(body_is(&r, 403, "jwt_audience_not_allowed"), "{r:?}");
    let strict = token().aud("strict.example").sign();
    assert_eq!(upstream_headers(&stack.get("/strict", Some(&strict)))["x-jwt-sub"], json!(["alice"]));

    // An unknown requirement name and metadata the filter cannot follow: 403 (the configuration is
    // at fault, not the token), and the log names the route and why.
    let good = token().sign();
    assert!(body_is(&stack.get("/unknown", Some(&good)), 403, "route_unknown_requirement"));
    assert!(body_is(&stack.get("/bad", Some(&good)), 403, "route_metadata_invalid"));
    let warned =
        |text: &str| stack.envoy.log().lines().any(|l| l.contains("jwt_authn_wasm") && l.contains(text));
    assert!(wait_until(Duration::from_secs(5), || warned("route `unknown_requirement`: ")));
    assert!(wait_until(Duration::from_secs(5), || warned("`disabled` must be the boolean true")));
    stack.envoy.assert_no_wasm_failures();
}

/// Envoy matches the route on the request as it arrived, and matches again once the filter changes
/// a header. The route `ops` is chosen by `x-jwt-sub: ops-bot` and needs no token, so the template
/// removes the client's copies of the filter's headers before Envoy matches a route (early header
/// mutation): a client that sends `x-jwt-sub: ops-bot` itself lands on `default`, which needs a
/// token (tests/e2e_routes.rs shows what happens without that, and the other defence).
#[test]
fn a_client_sent_output_header_cannot_pick_an_unprotected_route() {
    let dir = TempDir::new("forged");
    let Some((stack, log)) = start(policy(), &dir) else { return };
    let forged = [("x-jwt-sub", "ops-bot")];
    let r = stack.get_with("/api/forged", &forged);
    assert!(body_is(&r, 401, "jwt_missing"), "{r:?}");
    assert_eq!(logged(&log, "/api/forged")["route"], "default");
    let bearer = format!("Bearer {}", token().sign());
    let headers = upstream_headers(&stack.get_with("/api/forged-with-token", &[forged[0], ("authorization", &bearer)]));
    assert_eq!(headers["x-jwt-sub"], json!(["alice"]), "{headers}");
    assert_eq!(logged(&log, "/api/forged-with-token")["route"], "default");
    stack.envoy.assert_no_wasm_failures();
}

/// A request held for first keys is decided again later from the root context, which reads the
/// route again: it must still be the request's route. Here `strict` accepts the audience
/// strict.example that the rules refuse, so a request decided by the wrong route would get 403.
#[test]
fn a_request_held_for_keys_keeps_its_route_requirement_and_identity() {
    let dir = TempDir::new("held");
    let Some((mut stack, log)) = start_on(JwksServer::reserve(), policy(), &dir) else { return };
    let port = stack.envoy.port();
    let send = |path: &'static str, token: String| {
        std::thread::spawn(move || support::http::get(port, path, Some(&token)))
    };
    let strict = send("/strict/held", token().aud("strict.example").sign());
    let rules = send("/api/held", token().sign());
    let active = || stack.envoy.stat("http.ingress_http.downstream_rq_active");
    assert!(wait_until(Duration::from_secs(5), || active() == Some(2)), "held: {:?}", active());
    stack.jwks.set_body(&corp_jwks());
    stack.jwks.start();
    for (held, path) in [(strict, "/strict/held"), (rules, "/api/held")] {
        assert_eq!(upstream_headers(&held.join().unwrap())["x-jwt-sub"], json!(["alice"]), "{path}");
        assert_eq!(logged(&log, path)["sub"], "alice", "{path}");
    }
    stack.envoy.assert_no_wasm_failures();
}
