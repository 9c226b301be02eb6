//! Routes, end to end: route metadata the filter cannot follow fails closed, a client's copy of a
//! header the filter writes, and two Envoys in a row (a gateway in front of a sidecar, both
//! running the filter). The built `.wasm` in a real Envoy from `envoy/e2e-routes.yaml.tmpl`, whose
//! routes each test writes, a JWKS server and an echo upstream.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::config::{AUDIENCE, EnvoyConfig, Filter, ISSUER, corp_jwks, corp_token};
use support::envoy::Envoy;
use support::http::{self, Response};
use support::mint::{TestKey, Token};
use support::{Stack, upstream_headers, wait_until};

/// `corp` with a claim header; `requirement_map` has `corp`, so routes are read; rules cover `/api`
/// only, so a route that fell back to the rules would need no token at all.
fn policy(extra: Value) -> Value {
    let mut policy = json!({
        "providers": {
            "corp": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "remote_jwks": {"http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "5s"}},
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            }
        },
        "requirement_map": {"corp": {"provider_name": "corp"}},
        "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}]
    });
    for (key, value) in extra.as_object().into_iter().flatten() {
        policy[key] = value.clone();
    }
    policy
}

/// A route to the upstream: `name`, matched on `prefix`, with `metadata` as its
/// `filter_metadata.jwt_authn_wasm` (none when null).
fn route(name: &str, prefix: &str, metadata: Value) -> Value {
    let mut route = json!({"name": name, "match": {"prefix": prefix}, "route": {"cluster": "upstream"}});
    if !metadata.is_null() {
        route["metadata"] = json!({"filter_metadata": {"jwt_authn_wasm": metadata}});
    }
    route
}

/// Envoy with `policy`, these routes and early header mutations (`[]` for none).
fn start(policy: Value, routes: Vec<Value>, early: Value, concurrency: u32) -> Option<Stack> {
    Stack::start_with(Filter::Wasm, &corp_jwks(), concurrency, |idp, upstream| {
        EnvoyConfig::new(policy, idp, upstream)
            .template_nodes("e2e-routes.yaml.tmpl", &[("ROUTES", json!(routes)), ("EARLY_HEADER_MUTATIONS", early)])
    })
}

/// HCM early header mutations removing `names` before Envoy matches the route.
fn remove_before_routing(names: &[&str]) -> Value {
    let mutations: Vec<Value> = names.iter().map(|n| json!({"remove": n})).collect();
    json!([{
        "name": "envoy.http.early_header_mutation.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
            "mutations": mutations
        }
    }])
}

fn token() -> Token<'static> {
    corp_token("RS256", TestKey::RsaA, "rsa-a")
}

fn body_is(r: &Response, status: u16, body: &str) -> bool {
    r.status == status && r.body == body
}

/// `filter_metadata.jwt_authn_wasm` values Envoy can hold that the filter cannot follow, and the
/// reason each is refused with. `null` makes Envoy answer the property read with a status
/// (SerializationFailure) instead of a value; the filter used to take that for "no metadata".
fn unfollowable() -> Vec<(&'static str, Value, &'static str)> {
    let invalid = "route_metadata_invalid";
    vec![
        ("null-name", json!({"requirement_name": null}), invalid),
        ("null-disabled", json!({"disabled": null}), invalid),
        ("null-beside", json!({"disabled": true, "note": null}), invalid),
        ("number-name", json!({"requirement_name": 5}), invalid),
        ("bool-name", json!({"requirement_name": true}), invalid),
        ("list-name", json!({"requirement_name": ["corp"]}), invalid),
        ("struct-name", json!({"requirement_name": {"name": "corp"}}), invalid),
        ("empty-name", json!({"requirement_name": ""}), invalid),
        ("string-disabled", json!({"disabled": "true"}), invalid),
        ("number-disabled", json!({"disabled": 1}), invalid),
        ("false-disabled", json!({"disabled": false}), invalid),
        ("empty", json!({}), invalid),
        ("unknown-member", json!({"requirement": "corp"}), invalid),
        ("both", json!({"disabled": true, "requirement_name": "corp"}), invalid),
        ("unknown-name", json!({"requirement_name": "nope"}), "route_unknown_requirement"),
    ]
}

/// Each case is a route of its own; none is covered by a rule, so before this was failing closed
/// the `null` cases reached the upstream without a token.
#[test]
fn route_metadata_the_filter_cannot_follow_refuses_its_requests() {
    let cases = unfollowable();
    let mut routes: Vec<Value> = cases.iter().map(|(name, meta, _)| route(name, &format!("/{name}"), meta.clone())).collect();
    routes.push(route("health", "/healthz", json!({"disabled": true})));
    routes.push(route("named", "/named", json!({"requirement_name": "corp"})));
    routes.push(route("default", "/", Value::Null));
    let Some(stack) = start(policy(json!({})), routes, json!([]), 1) else { return };
    let good = token().sign();
    // Controls: the metadata the filter follows.
    assert_eq!(stack.get("/healthz", None).status, 200);
    assert!(body_is(&stack.get("/named", None), 401, "jwt_missing"));
    assert_eq!(stack.get("/named", Some(&good)).status, 200);
    assert_eq!(stack.get("/open", None).status, 200, "no metadata and no rule: no token needed");

    let hits = stack.upstream.hits();
    for (name, metadata, reason) in &cases {
        for attempt in ["with a token", "without"] {
            let token = (attempt == "with a token").then_some(good.as_str());
            let r = stack.get(&format!("/{name}"), token);
            let case = format!("{name} {metadata} {attempt}: {r:?}");
            // The operator's configuration is at fault, not the token: no challenge (as jwt_authn).
            assert!(body_is(&r, 403, reason), "{case}");
            assert!(r.header("www-authenticate").is_none(), "{case}");
        }
    }
    assert_eq!(stack.upstream.hits(), hits, "nothing reached the upstream");

    // Counted, and each route named in the log once with its reason.
    let refused = 2 * cases.len() as u64;
    let counted = || stack.envoy.stat("wasmcustom.jwt_authn_wasm.denied.route");
    assert!(wait_until(Duration::from_secs(5), || counted() == Some(refused)), "{:?}", counted());
    let log = stack.envoy.log();
    for (name, _, _) in &cases {
        let mention = format!("route `{name}`: filter_metadata.jwt_authn_wasm cannot be followed");
        assert_eq!(log.lines().filter(|l| l.contains(&mention)).count(), 1, "{name}:\n{log}");
    }
    let null = log.lines().find(|l| l.contains("route `null-name`")).unwrap_or_default();
    assert!(null.contains("status 3: serialization failure"), "{null}");
    let list = log.lines().find(|l| l.contains("route `list-name`")).unwrap_or_default();
    assert!(list.contains("`requirement_name` must be a non-empty string"), "{list}");
    let unknown = log.lines().find(|l| l.contains("route `unknown-name`")).unwrap_or_default();
    assert!(unknown.contains("requirement_name `nope` is not in requirement_map"), "{unknown}");
    stack.envoy.assert_no_wasm_failures();
}

/// With every provider in report mode nothing is refused, not even a route the filter cannot
/// follow: the upstream is told why it would have been.
#[test]
fn in_report_mode_an_unfollowable_route_is_reported() {
    let routes = vec![route("null-name", "/null", json!({"requirement_name": null})), route("default", "/", Value::Null)];
    let Some(stack) = start(policy(json!({"mode": "report"})), routes, json!([]), 1) else { return };
    let headers = upstream_headers(&stack.get("/null", None));
    assert_eq!(headers["x-jwt-authn-status"], json!(["route_metadata_invalid"]), "{headers}");
    assert!(wait_until(Duration::from_secs(5), || stack.envoy.log().contains("its requests are reported (report mode)")));
    stack.envoy.assert_no_wasm_failures();
}

/// Routes that match on a header the filter writes: the route `ops` (no token needed) is chosen
/// by `x-jwt-sub: ops-bot`. Envoy matches the route with the client's copy, the filter removes it,
/// and Envoy routes the request again without it (ABI 0.2.1 clears the route cache on any header
/// change), to `default`, whose requirement was never checked. Hence the two defences: remove the
/// header before routing (Envoy's early header mutation), or `output_headers_from_client: reject`.
#[test]
fn a_client_copy_of_an_output_header_cannot_pick_a_route_with_a_defence_in_place() {
    let routes = || {
        let ops = json!({"name": "ops", "match": {"prefix": "/", "headers": [{"name": "x-jwt-sub", "string_match": {"exact": "ops-bot"}}]},
            "route": {"cluster": "upstream"}, "metadata": {"filter_metadata": {"jwt_authn_wasm": {"disabled": true}}}});
        vec![ops, route("default", "/", json!({"requirement_name": "corp"}))]
    };
    let forged = [("x-jwt-sub", "ops-bot")];

    // No defence: the hazard, as README describes it (the request ends on `default`, unchecked).
    let Some(stack) = start(policy(json!({})), routes(), json!([]), 1) else { return };
    let headers = upstream_headers(&stack.get_with("/api/forged", &forged));
    assert!(headers.get("x-jwt-sub").is_none(), "the client's copy is removed: {headers}");
    drop(stack);

    // Removed before routing: the request is matched to `default` and needs a token there.
    let early = remove_before_routing(&["x-jwt-sub", "x-jwt-payload", "x-jwt-authn-status"]);
    let Some(stack) = start(policy(json!({})), routes(), early, 1) else { return };
    assert!(body_is(&stack.get_with("/api/forged", &forged), 401, "jwt_missing"));
    let bearer = format!("Bearer {}", token().sign());
    let headers = upstream_headers(&stack.get_with("/api/forged", &[forged[0], ("authorization", &bearer)]));
    assert_eq!(headers["x-jwt-sub"], json!(["alice"]), "{headers}");
    let ops = format!("Bearer {}", token().sub("ops-bot").sign());
    let headers = upstream_headers(&stack.get_with("/api/ops", &[("authorization", &ops)]));
    assert_eq!(headers["x-jwt-sub"], json!(["ops-bot"]), "a verified ops-bot still reaches `ops`");
    stack.envoy.assert_no_wasm_failures();
    drop(stack);

    // Opted in: refused outright, token or not.
    let reject = policy(json!({"output_headers_from_client": "reject"}));
    let Some(stack) = start(reject, routes(), json!([]), 1) else { return };
    let hits = stack.upstream.hits();
    assert!(body_is(&stack.get_with("/api/forged", &forged), 400, "output_header_from_client"));
    let r = stack.get_with("/api/forged", &[forged[0], ("authorization", &bearer)]);
    assert!(body_is(&r, 400, "output_header_from_client"), "{r:?}");
    assert_eq!(stack.upstream.hits(), hits);
    stack.envoy.assert_no_wasm_failures();
}

/// A gateway in front of a sidecar, both running the filter with the defaults: the edge verifies
/// the token (forwarding it) and writes its identity headers; the inner Envoy, with per-route
/// requirements of its own, verifies the token again, removes the edge's copies and writes its
/// own. Here the edge writes `x-jwt-sub` from `azp` and the inner from `sub`, so the upstream shows
/// whose value it got.
#[test]
fn two_envoys_in_a_row_each_verify_and_the_inner_one_writes_the_identity() {
    let inner_routes = vec![
        route("health", "/healthz", json!({"disabled": true})),
        route("api", "/api", json!({"requirement_name": "corp"})),
        route("default", "/", Value::Null),
    ];
    let inner_policy = |extra| {
        let mut p = policy(extra);
        p["rules"] = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]);
        p
    };
    let edge_policy = |extra| {
        let mut p = inner_policy(extra);
        p["providers"]["corp"]["forward"] = json!(true);
        p["providers"]["corp"]["claim_to_headers"] = json!([{"header_name": "x-jwt-sub", "claim_name": "azp"}]);
        p
    };
    let alice = token().claim("azp", json!("gateway-client")).sign();
    for (inner_mode, edge_mode) in [(json!({}), json!({})), (json!({"mode": "report"}), json!({"mode": "report"}))] {
        let report = inner_mode != json!({});
        let Some(inner) = start(inner_policy(inner_mode), inner_routes.clone(), json!([]), 1) else { return };
        let edge_yaml = EnvoyConfig::new(edge_policy(edge_mode), inner.jwks.port(), inner.envoy.port()).yaml(Filter::Wasm);
        let edge = Envoy::start(&edge_yaml, 1);
        let get = |path: &str, token: Option<&str>| http::get(edge.port(), path, token);

        for path in ["/api/orders", "/other"] {
            let headers = upstream_headers(&get(path, Some(&alice)));
            assert_eq!(headers["x-jwt-sub"], json!(["alice"]), "{path}, report {report}: {headers}");
            assert_eq!(headers["x-jwt-payload"].as_array().map(Vec::len), Some(1), "{headers}");
            assert!(headers["authorization"].is_null(), "the inner Envoy strips the token: {headers}");
            let status = if report { json!(["ok"]) } else { Value::Null };
            assert_eq!(headers["x-jwt-authn-status"], status, "the inner Envoy's own verdict: {headers}");
        }
        // A route needing no token at the inner Envoy: the edge's identity headers are still removed.
        let headers = upstream_headers(&get("/healthz", Some(&alice)));
        assert!(headers["x-jwt-sub"].is_null() && headers["x-jwt-payload"].is_null(), "{headers}");
        if !report {
            assert!(body_is(&get("/api/orders", None), 401, "jwt_missing"), "the edge refuses first");
        }
        edge.assert_no_wasm_failures();
        inner.envoy.assert_no_wasm_failures();
    }
}
