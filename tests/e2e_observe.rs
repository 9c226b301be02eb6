//! Operability end to end, in a real Envoy (`--concurrency 2`): the metrics each outcome moves (read
//! from `/stats`, and their Prometheus names), report mode, claims out as headers, claims and scopes
//! in, CORS preflights, `stat_prefix`. One Envoy per config, many checks each: every request is
//! sent alone and the counters it moved are compared exactly (counters are process-wide, so the
//! difference of two `/stats` snapshots is what that one request did).

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::config::{AUDIENCE, Filter, ISSUER, corp_jwks, corp_token};
use support::http::{self, Response};
use support::mint::{self, TestKey, Token};
use support::{Stack, upstream_headers, wait_until};

const STATUS: &str = "x-jwt-authn-status";

/// Every output header of `observed_policy`: a client's copies must never arrive.
const OUTPUT_HEADERS: [&str; 8] = [
    STATUS,
    "x-jwt-payload",
    "x-jwt-sub",
    "x-jwt-roles",
    "x-jwt-roles-json",
    "x-jwt-tenant",
    "x-jwt-email",
    "x-audit-sub",
];

/// Request-level metrics after the prefix, then per provider after `provider.<name>.` (the
/// gauge `jwks_age_seconds` last). These names are an interface: dashboards and alerts use them.
const CATEGORIES: [&str; 20] = [
    "missing",
    "malformed",
    "alg_not_allowed",
    "bad_signature",
    "unknown_kid",
    "expired",
    "not_yet_valid",
    "lifetime",
    "issuer",
    "audience",
    "subject",
    "insufficient_scope",
    "keys_unavailable",
    "route",
    "dpop_binding",
    "dpop_proof",
    "dpop_replayed",
    "dpop_replay_unavailable",
    "dpop_nonce",
    "cnf",
];
const REQUEST_METRICS: [&str; 3] = ["allowed", "report.allowed", "cors_preflight_bypassed"];
const PROVIDER_METRICS: [&str; 10] = [
    "allowed",
    "jwks_fetch_success",
    "jwks_fetch_failed",
    "jwks_refetch_unknown_kid",
    "jwks_stale_served",
    "jwt_cache_hit",
    "jwt_cache_miss",
    "jwt_verified",
    "jwt_shared_hit",
    "jwks_age_seconds",
];
const GAUGE: &str = "jwks_age_seconds";
/// Per-request counts reach `/stats` on the filter's next tick (100 ms): how long to wait for a
/// request's counts to show, and then how long nothing more may move.
const FLUSHED: Duration = Duration::from_secs(5);
const SETTLE: Duration = Duration::from_millis(300);

/// Every metric name for these providers, without Envoy's `wasmcustom.` and the prefix.
fn metric_names(providers: &[&str]) -> Vec<String> {
    let denied = |prefix: &str| CATEGORIES.iter().map(|c| format!("{prefix}denied.{c}")).collect::<Vec<_>>();
    let mut names: Vec<String> = REQUEST_METRICS.iter().map(|m| m.to_string()).chain(denied("")).collect();
    for p in providers {
        let prefix = format!("provider.{p}.");
        names.extend(PROVIDER_METRICS.iter().map(|m| format!("{prefix}{m}")));
        names.extend(denied(&prefix));
    }
    names.sort();
    names
}

// ---- Tokens ----------------------------------------------------------------------------------

/// A valid token, unique (its own `jti`) so that the token cache has never seen it.
fn token() -> Token<'static> {
    static JTI: AtomicUsize = AtomicUsize::new(0);
    corp_token("RS256", TestKey::RsaA, "rsa-a").claim("jti", json!(JTI.fetch_add(1, Ordering::SeqCst)))
}

fn bearer(token: &str) -> (String, String) {
    ("authorization".into(), format!("Bearer {token}"))
}

// ---- Configs ---------------------------------------------------------------------------------

fn remote(path: &str) -> Value {
    json!({"http_uri": {"uri": format!("http://idp/{path}"), "cluster": "idp", "timeout": "5s"}, "cache_duration": "600s"})
}

/// `corp` on `/api` (claims out), `scoped` on `/scoped` (scopes and a claim in), `audit` in report
/// mode on `/report`, `/both` requires `audit` and `corp`; `/healthz` needs nothing, `/public` allows a missing token, `/elsewhere`
/// matches no rule. Each provider has its own JWKS URL, so each fetches once.
fn observed_policy() -> Value {
    let claims = json!([
        {"header_name": "x-jwt-sub", "claim_name": "sub"},
        {"header_name": "x-jwt-roles", "claim_name": "realm.roles"},
        {"header_name": "x-jwt-roles-json", "claim_name": "realm.roles", "format": "json"},
        {"header_name": "x-jwt-tenant", "claim_name": "org.tenant"},
        {"header_name": "x-jwt-email", "claim_name": "email"}
    ]);
    let provider = |jwks: &str, extra: Value| {
        let mut p = json!({"issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": remote(jwks)});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    json!({
        "bypass_cors_preflight": true,
        "providers": {
            "corp": provider("corp.json", json!({
                "algorithms": ["RS256", "ES256"],
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": claims
            })),
            "scoped": provider("scoped.json", json!({
                "required_scopes": ["read", "write"],
                "required_claims": [{"name": "org.tenant", "values": ["acme", "globex"]}]
            })),
            "audit": provider("audit.json", json!({
                "mode": "report",
                "claim_to_headers": [{"header_name": "x-audit-sub", "claim_name": "sub"}]
            }))
        },
        "rules": [
            {"match": {"prefix": "/healthz"}},
            {"match": {"prefix": "/public"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/scoped"}, "requires": {"provider_name": "scoped"}},
            {"match": {"prefix": "/report"}, "requires": {"provider_name": "audit"}},
            {"match": {"prefix": "/both"}, "requires": {"requires_all": {"requirements": [
                {"provider_name": "audit"}, {"provider_name": "corp"}
            ]}}},
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}
        ]
    })
}

// ---- Watching the counters -------------------------------------------------------------------

/// A stack and the metric prefix as `/stats` shows it (`wasmcustom.<stat_prefix>`).
struct Observed {
    stack: Stack,
    prefix: String,
}

impl Observed {
    fn start(policy: Value, stat_prefix: &str) -> Option<Observed> {
        let stack = Stack::start(Filter::Wasm, policy, &corp_jwks(), 2)?;
        Some(Observed { stack, prefix: format!("wasmcustom.{stat_prefix}") })
    }

    /// The filter's metrics by name without the prefix.
    fn metrics(&self) -> BTreeMap<String, u64> {
        let stats = self.stack.envoy.stats();
        let ours = stats.into_iter().filter_map(|(n, v)| Some((n.strip_prefix(&self.prefix)?.to_owned(), v)));
        ours.collect()
    }

    fn metric(&self, name: &str) -> u64 {
        self.metrics().get(name).copied().unwrap_or_else(|| panic!("no metric {}{name}", self.prefix))
    }

    /// The metrics once the counts of what was just sent have been flushed: after `done` holds
    /// (for at most `FLUSHED`), then `SETTLE` later, so a count that arrives late shows too.
    fn metrics_flushed(&self, done: impl Fn(&BTreeMap<String, u64>) -> bool) -> BTreeMap<String, u64> {
        wait_until(FLUSHED, || done(&self.metrics()));
        std::thread::sleep(SETTLE);
        self.metrics()
    }

    /// Sends one request and checks that it moved exactly these counters by these amounts (gauges
    /// left out).
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        moved: &[(&str, u64)],
    ) -> Response {
        let before = self.metrics();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let response = http::request(self.stack.envoy.port(), method, path, &headers)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let delta = |after: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            after
                .iter()
                .filter(|(n, _)| !n.ends_with(GAUGE))
                .filter_map(|(n, v)| Some((n.clone(), v - before.get(n)?)))
                .filter(|(_, d)| *d > 0)
                .collect()
        };
        let expected: BTreeMap<String, u64> = moved.iter().map(|(n, d)| (n.to_string(), *d)).collect();
        let after = self.metrics_flushed(|m| delta(m) == expected);
        let counters =
            |m: &BTreeMap<String, u64>| m.keys().filter(|n| !n.ends_with(GAUGE)).cloned().collect::<Vec<_>>();
        assert_eq!(counters(&before), counters(&after), "the set of metrics is fixed at start");
        let delta = delta(&after);
        assert_eq!(
            delta, expected,
            "{method} {path}: counters moved (status {}, {})",
            response.status, response.body
        );
        response
    }

    fn get(&self, path: &str, headers: &[(String, String)], moved: &[(&str, u64)]) -> Response {
        self.send("GET", path, headers, moved)
    }
}

/// Every output header forged by the client.
fn spoofed(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.extend(OUTPUT_HEADERS.iter().map(|h| (h.to_string(), "forged".to_string())));
    headers
}

/// The output headers that arrived, with their values: only what the filter set.
fn outputs_that_arrived(r: &Response) -> BTreeMap<String, Value> {
    let headers = upstream_headers(r);
    OUTPUT_HEADERS.iter().filter_map(|h| Some((h.to_string(), headers.get(*h)?.clone()))).collect()
}

fn outputs(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(n, v)| (n.to_string(), json!([v]))).collect()
}

// ---- The tests -------------------------------------------------------------------------------

#[test]
fn every_outcome_moves_its_counters_and_the_upstream_sees_only_what_the_filter_set() {
    let start = Instant::now();
    let Some(o) = Observed::start(observed_policy(), "jwt_authn_wasm.") else { return };
    warm_up(&o);
    allowed_requests_carry_their_claims(&o);
    refusals_are_counted_by_category(&o);
    claims_and_scopes_in(&o);
    report_mode_per_provider(&o);
    cors_preflights(&o);
    spoofed_headers_never_arrive(&o);
    token_cache(&o);
    key_age_gauge(&o, start);
    unknown_kid_refetch(&o);
    metric_names_in_stats_and_prometheus(&o, "jwt_authn_wasm", &["audit", "corp", "scoped"]);
}

/// Every provider fetches its keys once at start, for both workers (so no request below is held
/// for first keys).
fn warm_up(o: &Observed) {
    let fetched = || {
        let m = o.metrics();
        ["corp", "scoped", "audit"]
            .iter()
            .all(|p| m.get(&format!("provider.{p}.jwks_fetch_success")) == Some(&1))
    };
    assert!(wait_until(Duration::from_secs(10), fetched), "{:?}\n{}", o.metrics(), o.stack.envoy.log());
    assert_eq!(o.stack.get("/api/warm", Some(&token().sign())).status, 200);
    assert_eq!(o.stack.jwks.hits(), 3, "one fetch per provider for the whole process");
    // Its counts must not land in the next request's window.
    let counted = o.metrics_flushed(|m| m.get("allowed") == Some(&1));
    assert_eq!(counted.get("allowed"), Some(&1), "{counted:?}");
}

fn allowed_requests_carry_their_claims(o: &Observed) {
    let t = token()
        .claim("realm", json!({"roles": ["admin", "ops"]}))
        .claim("org", json!({"tenant": "acme"}))
        .sign();
    let moved = [
        ("allowed", 1),
        ("provider.corp.allowed", 1),
        ("provider.corp.jwt_cache_miss", 1),
        ("provider.corp.jwt_verified", 1),
    ];
    let r = o.get("/api/claims", &[bearer(&t)], &moved);
    let headers = upstream_headers(&r);
    assert_eq!(headers.get("authorization"), None, "the token is stripped");
    let payload = t.split('.').nth(1).unwrap();
    let expected = outputs(&[
        ("x-jwt-payload", payload),
        ("x-jwt-sub", "alice"),
        ("x-jwt-roles", "admin,ops"),
        ("x-jwt-roles-json", r#"["admin","ops"]"#),
        ("x-jwt-tenant", "acme"),
    ]);
    assert_eq!(outputs_that_arrived(&r), expected, "x-jwt-email: the claim is absent");
}

fn refusals_are_counted_by_category(o: &Observed) {
    let ps256 = Token::new("PS256", TestKey::RsaA).kid("rsa-a").iss(ISSUER).aud(AUDIENCE).exp_in(60);
    // (what, token, status, category, whether corp refused the token rather than finding it
    // another issuer's)
    let cases = [
        ("expired", token().exp_in(-120).sign(), 401, "expired", true),
        ("not yet valid", token().nbf_in(600).sign(), 401, "not_yet_valid", true),
        ("bad signature", mint::tamper(&token().sign()), 401, "bad_signature", true),
        ("audience", token().aud("other.example").sign(), 403, "audience", true),
        ("not a JWT", "abc".to_string(), 401, "malformed", true),
        ("algorithm", ps256.sign(), 401, "alg_not_allowed", true),
        ("another issuer", token().iss("https://elsewhere.example").sign(), 401, "issuer", false),
    ];
    for (name, t, status, category, by_corp) in cases {
        let (denied, by_provider) =
            (format!("denied.{category}"), format!("provider.corp.denied.{category}"));
        let mut moved = vec![(denied.as_str(), 1), ("provider.corp.jwt_cache_miss", 1)];
        if by_corp {
            moved.push((by_provider.as_str(), 1));
        }
        if category == "bad_signature" {
            moved.push(("provider.corp.jwt_verified", 1)); // the only one that reached the signature
        }
        let r = o.get("/api/refused", &[bearer(&t)], &moved);
        assert_eq!(r.status, status, "{name}: {}", r.body);
    }
    let r = o.get("/api/refused", &[], &[("denied.missing", 1)]);
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some("Bearer realm=\"http://localhost/api/refused\""))
    );
    let two = [bearer("a"), bearer("b")];
    let r = o.get("/api/refused", &two, &[("denied.malformed", 1), ("provider.corp.denied.malformed", 1)]);
    // Envoy folds a repeated Authorization header into one comma-joined value: malformed.
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_location_malformed"));
}

fn claims_and_scopes_in(o: &Observed) {
    let scoped = || token().claim("scope", json!("read write")).claim("org", json!({"tenant": "globex"}));
    let ok = [
        ("allowed", 1),
        ("provider.scoped.allowed", 1),
        ("provider.scoped.jwt_cache_miss", 1),
        ("provider.scoped.jwt_verified", 1),
    ];
    let r = o.get("/scoped", &[bearer(&scoped().sign())], &ok);
    assert_eq!(r.status, 200, "{}", r.body);
    let scp = token().claim("scp", json!(["write", "read"])).claim("org", json!({"tenant": "acme"}));
    assert_eq!(o.get("/scoped", &[bearer(&scp.sign())], &ok).status, 200, "scp works as scope");
    let denied = [
        ("denied.insufficient_scope", 1),
        ("provider.scoped.denied.insufficient_scope", 1),
        ("provider.scoped.jwt_cache_miss", 1),
        ("provider.scoped.jwt_verified", 1), // scopes and claims are checked after the signature
    ];
    let challenge = |reason: &str| {
        format!(
            "Bearer realm=\"http://localhost/scoped\", error=\"insufficient_scope\", error_description=\"{reason}\""
        )
    };
    for (name, t, reason) in [
        ("a scope missing", scoped().claim("scope", json!("read")), "jwt_insufficient_scope"),
        ("no scope at all", scoped().remove_claim("scope"), "jwt_insufficient_scope"),
        (
            "another tenant",
            scoped().claim("org", json!({"tenant": "initech"})),
            "jwt_required_claim_mismatch",
        ),
        ("no tenant", scoped().remove_claim("org"), "jwt_required_claim_mismatch"),
    ] {
        let r = o.get("/scoped", &[bearer(&t.sign())], &denied);
        assert_eq!(r.status, 403, "{name}: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some(challenge(reason).as_str()), "{name}");
        assert_eq!(r.body, reason, "{name}");
    }
}

fn report_mode_per_provider(o: &Observed) {
    let expired = token().exp_in(-120).sign();
    let moved = [
        ("denied.expired", 1),
        ("report.allowed", 1),
        ("provider.audit.denied.expired", 1),
        ("provider.audit.jwt_cache_miss", 1),
    ];
    let r = o.get("/report", &spoofed(vec![bearer(&expired)]), &moved);
    assert_eq!(outputs_that_arrived(&r), outputs(&[(STATUS, "jwt_expired")]), "only the filter's status");
    assert_eq!(upstream_headers(&r)["authorization"], json!([format!("Bearer {expired}")]), "not stripped");
    let r = o.get("/report", &[], &[("denied.missing", 1), ("report.allowed", 1)]);
    assert_eq!(outputs_that_arrived(&r), outputs(&[(STATUS, "jwt_missing")]));
    let moved = [
        ("allowed", 1),
        ("provider.audit.allowed", 1),
        ("provider.audit.jwt_cache_miss", 1),
        ("provider.audit.jwt_verified", 1),
    ];
    let r = o.get("/report", &[bearer(&token().sign())], &moved);
    assert_eq!(outputs_that_arrived(&r), outputs(&[(STATUS, "ok"), ("x-audit-sub", "alice")]));
    let r = o.get("/api/enforced", &[], &[("denied.missing", 1)]);
    assert_eq!(r.status, 401, "corp enforces on its own routes");
    let r = o.get("/both", &[], &[("denied.missing", 1)]);
    assert_eq!(r.status, 401, "and wherever a requirement names it, even after a report provider");
}

fn cors_preflights(o: &Observed) {
    let origin = ("origin".to_string(), "https://app.example".to_string());
    let method = ("access-control-request-method".to_string(), "POST".to_string());
    let r = o.send("OPTIONS", "/api/x", &[origin.clone(), method.clone()], &[("cors_preflight_bypassed", 1)]);
    assert_eq!((r.status, r.json()["method"].as_str()), (200, Some("OPTIONS")), "{}", r.body);
    let r = o.send("OPTIONS", "/api/x", &[origin], &[("denied.missing", 1)]);
    assert_eq!(r.status, 401, "an OPTIONS that is not a preflight needs a token");
    let r = o.send("GET", "/api/x", &[method], &[("denied.missing", 1)]);
    assert_eq!(r.status, 401);
}

fn spoofed_headers_never_arrive(o: &Observed) {
    let preflight = vec![
        ("origin".to_string(), "https://app.example".to_string()),
        ("access-control-request-method".to_string(), "GET".to_string()),
    ];
    let t = token().sign();
    let none: &[(&str, u64)] = &[];
    let cases = [
        ("no requirement", "GET", "/healthz", vec![bearer(&t)], none),
        ("no rule", "GET", "/elsewhere", vec![], none),
        ("allow_missing, no token", "GET", "/public", vec![], &[("allowed", 1)]),
        ("CORS preflight", "OPTIONS", "/api/x", preflight, &[("cors_preflight_bypassed", 1)]),
    ];
    for (name, method, path, headers, moved) in cases {
        let r = o.send(method, path, &spoofed(headers), moved);
        assert_eq!(outputs_that_arrived(&r), BTreeMap::new(), "{name}");
    }
    let moved = [
        ("allowed", 1),
        ("provider.corp.allowed", 1),
        ("provider.corp.jwt_cache_miss", 1),
        ("provider.corp.jwt_verified", 1),
    ];
    let r = o.get(
        "/api/spoofed",
        &spoofed(vec![bearer(&token().claim("email", json!("a@example.com")).sign())]),
        &moved,
    );
    let arrived = outputs_that_arrived(&r);
    assert_eq!((arrived.get("x-jwt-email"), arrived.get(STATUS)), (Some(&json!(["a@example.com"])), None));
    assert!(
        arrived.values().all(|v| v.as_array().is_some_and(|a| a.len() == 1 && a[0] != "forged")),
        "{arrived:?}"
    );
}

/// The same token again is a cache hit on the worker that saw it (each worker VM has its own
/// cache, and which worker takes a connection is up to the kernel); the other worker's first
/// sighting finds it in the shared record. One signature check in all.
fn token_cache(o: &Observed) {
    let t = token().sign();
    let before = o.metrics();
    for _ in 0..6 {
        assert_eq!(o.stack.get("/api/cached", Some(&t)).status, 200);
    }
    let after = o.metrics_flushed(|m| m["allowed"] - before["allowed"] >= 6);
    let moved = |n: &str| after[n] - before[n];
    let (hits, misses) = (moved("provider.corp.jwt_cache_hit"), moved("provider.corp.jwt_cache_miss"));
    assert_eq!((hits + misses, moved("allowed"), moved("provider.corp.allowed")), (6, 6, 6));
    assert!((1..=2).contains(&misses), "at most one miss per worker: {misses}");
    let (verified, shared) = (moved("provider.corp.jwt_verified"), moved("provider.corp.jwt_shared_hit"));
    assert_eq!((verified, shared), (1, misses - 1), "one check; the other worker's miss is a shared hit");
}

/// The age of the keys in use, in seconds, as a gauge per provider.
fn key_age_gauge(o: &Observed, start: Instant) {
    let age = || o.metric("provider.scoped.jwks_age_seconds");
    assert!(wait_until(Duration::from_secs(3), || age() >= 1), "the gauge follows the clock: {}", age());
    assert!(age() <= start.elapsed().as_secs() + 1, "{} s", age());
}

/// A token naming a key the set lacks: one refetch, then refused; counted once although the
/// request was held.
fn unknown_kid_refetch(o: &Observed) {
    let moved = [
        ("provider.corp.jwks_refetch_unknown_kid", 1),
        ("provider.corp.jwks_fetch_success", 1),
        ("provider.corp.jwt_cache_miss", 1),
        ("provider.corp.denied.unknown_kid", 1),
        ("denied.unknown_kid", 1),
    ];
    let r = o.get("/api/rotated", &[bearer(&token().kid("rotated").sign())], &moved);
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_unknown_kid"));
}

/// `/stats` shows exactly the documented names under `wasmcustom.<prefix>.`; Prometheus output
/// shows them with `_` for `.`, counters and gauges typed as such.
fn metric_names_in_stats_and_prometheus(o: &Observed, prefix: &str, providers: &[&str]) {
    let names: Vec<String> = o.metrics().into_keys().collect();
    assert_eq!(names, metric_names(providers));
    let prometheus = o.stack.envoy.admin("/stats/prometheus").unwrap().body;
    for name in &names {
        let kind = if name.ends_with(GAUGE) { "gauge" } else { "counter" };
        let line = format!("# TYPE {prefix}_{} {kind}", name.replace('.', "_"));
        assert!(prometheus.lines().any(|l| l == line), "{line} not in:\n{prometheus}");
    }
}

#[test]
fn stat_prefix_and_top_level_report_mode() {
    let policy = json!({
        "stat_prefix": "edge.authn",
        "mode": "report",
        "providers": {"corp": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "remote_jwks": remote("jwks.json"),
            "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]
    });
    let Some(o) = Observed::start(policy, "edge.authn.") else { return };
    let fetched = || o.metrics().get("provider.corp.jwks_fetch_success") == Some(&1);
    assert!(wait_until(Duration::from_secs(10), fetched), "{}", o.stack.envoy.log());
    let stats = o.stack.envoy.stats();
    assert!(!stats.keys().any(|n| n.starts_with("wasmcustom.jwt_authn_wasm.")), "the default prefix is gone");
    metric_names_in_stats_and_prometheus(&o, "edge_authn", &["corp"]);

    let forged = mint::tamper(&token().sign());
    let moved = [
        ("denied.bad_signature", 1),
        ("report.allowed", 1),
        ("provider.corp.denied.bad_signature", 1),
        ("provider.corp.jwt_cache_miss", 1),
        ("provider.corp.jwt_verified", 1),
    ];
    let r = o.get("/x", &[bearer(&forged), (STATUS.into(), "ok".into())], &moved);
    let headers = upstream_headers(&r);
    assert_eq!((&headers[STATUS], headers.get("x-jwt-sub")), (&json!(["jwt_bad_signature"]), None));
    let r = o.get("/x", &[], &[("denied.missing", 1), ("report.allowed", 1)]);
    assert_eq!(upstream_headers(&r)[STATUS], json!(["jwt_missing"]));
    let moved = [
        ("allowed", 1),
        ("provider.corp.allowed", 1),
        ("provider.corp.jwt_cache_miss", 1),
        ("provider.corp.jwt_verified", 1),
    ];
    let r = o.get("/x", &[bearer(&token().sign())], &moved);
    let headers = upstream_headers(&r);
    assert_eq!((&headers[STATUS], &headers["x-jwt-sub"]), (&json!(["ok"]), &json!(["alice"])));
}
