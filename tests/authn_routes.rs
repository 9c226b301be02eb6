//! Tier 2: the whole request decision, `authn::decide`, natively (no Envoy). Configs are JSON as
//! an operator writes them, keys are the fixture keys' JWKS, tokens are signed by `mint`, the clock
//! is fixed; each test asserts the exact `Decision` (header changes, local reply, or hold) and the
//! events the filter turns into metrics. The harness is `authn_common`.
//!
//! This file: identity in filter state and requirements chosen by the route.

mod authn_common;
mod support;

use authn_common::*;

// ---- Identity in filter state ----------------------------------------------------------------

fn entries(list: &[(&str, &str)]) -> Entries {
    Entries(pairs(list))
}

#[test]
fn a_verified_identity_goes_to_filter_state_and_only_then() {
    let identity = json!({
        "payload_in_metadata": "jwt_payload",
        "header_in_metadata": "jwt_header",
        "failed_status_in_metadata": "jwt_failure",
        "claim_to_filter_state": [{"claim_name": "sub", "name": "jwt_sub"}]
    });
    let doc = json!({
        "providers": {"corp": corp(identity)},
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/lenient"}, "requires": {"allow_missing_or_failed": {}}}
        ]
    });
    let mut f = Filter::new(doc);
    let token = good().sign();
    let segment = |i: usize| {
        String::from_utf8(jwt_authn_wasm::token::b64url_decode(token.split('.').nth(i).unwrap()).unwrap())
            .unwrap()
    };
    let Decision::Allow(m) = f.decide(&get("/api").bearer(&token)).0 else { panic!("not allowed") };
    let expected = [("jwt_payload", segment(1)), ("jwt_header", segment(0)), ("jwt_sub", "alice".into())];
    let expected = Entries(expected.iter().map(|(n, v)| (n.to_string(), v.clone())).collect());
    assert_eq!(m.filter_state, expected);
    // A refused token: only its failure, in the refusal and in a request allowed anyway.
    let expired = expired_token();
    let failure = entries(&[("jwt_failure", r#"{"code":401,"message":"jwt_expired"}"#)]);
    let Decision::Deny(r) = f.decide(&get("/api").bearer(&expired)).0 else { panic!("not refused") };
    assert_eq!(r.filter_state, failure);
    let Decision::Allow(m) = f.decide(&get("/lenient").bearer(&expired)).0 else { panic!("not allowed") };
    assert_eq!(m.filter_state, failure);
    // No token: nothing at all, allowed or not.
    let Decision::Deny(r) = f.decide(&get("/api")).0 else { panic!("not refused") };
    assert!(r.filter_state.is_empty());
    let Decision::Allow(m) = f.decide(&get("/lenient")).0 else { panic!("not allowed") };
    assert!(m.filter_state.is_empty());
}

#[test]
fn a_token_that_verified_but_failed_the_requirement_writes_no_identity() {
    let identity = json!({"claim_to_filter_state": [{"claim_name": "sub", "name": "jwt_sub"}]});
    let both =
        json!({"requires_all": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}});
    let doc = json!({
        "providers": {"corp": corp(identity.clone()), "partner": partner(identity)},
        "rules": [{"match": {"prefix": "/"}, "requires": both}]
    });
    let (decision, _) = Filter::new(doc).decide(&get("/").bearer(&good().sign()));
    let Decision::Deny(r) = decision else { panic!("not refused: {decision:?}") };
    assert!(r.filter_state.is_empty(), "corp's token verified, but the request did not pass");
}

// ---- Requirements chosen by the route --------------------------------------------------------

/// `corp` on `/api` by rule; `requirement_map` has `corp` and `partner`.
fn per_route(extra: Value) -> Value {
    merged(
        json!({
            "providers": {"corp": corp(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]})), "partner": partner(json!({}))},
            "requirement_map": {"corp": {"provider_name": "corp"}, "partner": {"provider_name": "partner"}},
            "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}]
        }),
        extra,
    )
}

#[test]
fn a_route_requirement_replaces_the_rules() {
    let mut f = Filter::new(per_route(json!({})));
    assert!(f.config.route_metadata, "on by default with a requirement_map");
    let partner = partner_token().sign();
    let by_name = |name: &str| RouteChoice::Requirement(name.into());
    assert_eq!(
        f.decide(&get("/api").bearer(&partner)).0,
        refusal(401, "invalid_token", "jwt_issuer_not_allowed")
    );
    let routed = get("/api").bearer(&partner).route(by_name("partner"));
    assert_eq!(f.decide(&routed).0, allow(&[STATUS, "x-sub", "authorization"], &[]));
    // Disabled: no token needed, even where a rule wants one; output headers still go.
    assert_eq!(f.decide(&get("/api").route(RouteChoice::Disabled)).0, allow(&[STATUS, "x-sub"], &[]));
    // Fails closed: an unknown name, metadata it cannot follow. 403 without a challenge, as
    // jwt_authn answers a wrong requirement_name: the route's configuration is at fault, not the
    // token.
    let unknown = route_refusal("route_unknown_requirement");
    assert_eq!(f.decide(&get("/api").bearer(&partner).route(by_name("nope"))).0, unknown);
    let (invalid, events) = f.decide(&get("/api").route(RouteChoice::Invalid("x".into())));
    assert_eq!(invalid, route_refusal("route_metadata_invalid"));
    assert_eq!(events, [Denied(AuthnError::BadRouteMetadata)]);
}

fn route_refusal(reason: &'static str) -> Decision<'static> {
    Decision::Deny(Reply {
        status: 403,
        headers: vec![],
        body: reason.into(),
        reason,
        filter_state: Entries::default(),
    })
}

#[test]
fn with_every_provider_in_report_mode_a_route_it_cannot_follow_is_reported() {
    let mut f = Filter::new(per_route(json!({"mode": "report"})));
    let (decision, events) = f.decide(&get("/api").route(RouteChoice::Invalid("x".into())));
    assert_eq!(decision, allow(&[STATUS, "x-sub"], &[(STATUS, "route_metadata_invalid")]));
    assert_eq!(events, [Denied(AuthnError::BadRouteMetadata), Reported]);
    // One provider enforcing: the route could have asked for it, so the request is refused.
    let mut doc = per_route(json!({}));
    doc["providers"]["partner"]["mode"] = json!("report");
    let (decision, _) = Filter::new(doc).decide(&get("/api").route(RouteChoice::Invalid("x".into())));
    assert_eq!(decision, route_refusal("route_metadata_invalid"));
}

/// A request another Envoy verified and annotated (a gateway in front of a sidecar): its copies of
/// the headers this filter writes are removed, the token is verified again under this filter's
/// own policy, and this filter's values are set; on every kind of route, in report mode too.
#[test]
fn by_default_a_client_copy_of_an_output_header_is_replaced() {
    let token = good().sign();
    let annotated = || get("/api").bearer(&token).header("x-sub", "edge-value").header(STATUS, "ok");
    let mut f = Filter::new(per_route(json!({})));
    let verified = allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
    assert_eq!(f.decide(&annotated()).0, verified, "rules");
    let routed = annotated().route(RouteChoice::Requirement("corp".into()));
    assert_eq!(f.decide(&routed).0, verified, "route requirement_name");
    let disabled = annotated().route(RouteChoice::Disabled);
    assert_eq!(f.decide(&disabled).0, allow(&[STATUS, "x-sub"], &[]), "route disabled");
    let mut report = Filter::new(per_route(json!({"mode": "report"})));
    let reported = allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice"), (STATUS, "ok")]);
    assert_eq!(report.decide(&annotated()).0, reported, "report mode");
}

#[test]
fn opted_in_a_client_copy_of_an_output_header_is_refused() {
    // For routes that match on these headers: the route was matched with the forged header, and
    // Envoy routes the request again once the filter removes it, so the route read is not the
    // route taken.
    let reject = json!({"output_headers_from_client": "reject"});
    let forged = get("/api").header("x-sub", "admin").route(RouteChoice::Disabled);
    let (decision, events) = Filter::new(per_route(reject.clone())).decide(&forged);
    assert_eq!(decision, refusal(400, "invalid_request", "output_header_from_client"));
    assert_eq!(events, [Denied(AuthnError::OutputHeaderSent)]);
    // With routes not read, too: the option says what the routes match on.
    let mut rules_only = Filter::new(per_route(merged(reject, json!({"route_metadata": false}))));
    let (decision, _) = rules_only.decide(&get("/open").header("x-sub", "admin"));
    assert_eq!(decision, refusal_on("/open", 400, "invalid_request", "output_header_from_client"));
    assert_eq!(rules_only.decide(&get("/open")).0, allow(&[STATUS, "x-sub"], &[]));
}
