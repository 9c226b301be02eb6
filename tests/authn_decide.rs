//! Tier 2: the whole request decision, `authn::decide`, natively (no Envoy). Configs are JSON as
//! an operator writes them, keys are the fixture keys' JWKS, tokens are signed by `mint`, the clock
//! is fixed; each test asserts the exact `Decision` (header changes, local reply, or hold) and the
//! events the filter turns into metrics. The harness is `authn_common`.
//!
//! This file: allowed requests, report mode, CORS preflights, requirements.

mod authn_common;
mod support;

use authn_common::*;

// ---- Allowed requests: what goes upstream ----------------------------------------------------

#[test]
fn claims_and_payload_go_upstream_and_the_token_is_stripped() {
    let mut f = Filter::new(corp_only(json!({
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [
            {"header_name": "x-sub", "claim_name": "sub"},
            {"header_name": "x-roles", "claim_name": "realm.roles"},
            {"header_name": "x-roles-json", "claim_name": "realm.roles", "format": "json"},
            {"header_name": "x-tenant", "claim_name": "org.tenant.id"},
            {"header_name": "x-groups", "claim_name": "groups"},
            {"header_name": "x-admin", "claim_name": "admin"},
            {"header_name": "x-org", "claim_name": "org", "format": "json"},
            {"header_name": "x-email", "claim_name": "email"}
        ]
    })));
    let token = good()
        .claim("realm", json!({"roles": ["admin", "ops"]}))
        .claim("org", json!({"tenant": {"id": "acme"}}))
        .claim("groups", json!([1, "two", true]))
        .claim("admin", json!(false))
        .sign();
    let outputs = [
        STATUS,
        "x-jwt-payload",
        "x-sub",
        "x-roles",
        "x-roles-json",
        "x-tenant",
        "x-groups",
        "x-admin",
        "x-org",
        "x-email",
    ];
    let (decision, events) = f.decide(&get("/api").bearer(&token).spoofed(&outputs));
    let payload = payload_of(&token);
    let remove: Vec<&str> = outputs.iter().copied().chain(["authorization"]).collect();
    let expected = allow(
        &remove,
        &[
            ("x-jwt-payload", &payload),
            ("x-sub", "alice"),
            ("x-roles", "admin,ops"),
            ("x-roles-json", r#"["admin","ops"]"#),
            ("x-tenant", "acme"),
            ("x-groups", "1,two,true"),
            ("x-admin", "false"),
            ("x-org", r#"{"tenant":{"id":"acme"}}"#),
        ],
    );
    assert_eq!(decision, expected, "x-email: claim absent, so only removed");
    assert_eq!(events, [CacheMiss(0), SignatureChecked(0), Verified(0), Allowed]);
}

#[test]
fn the_payload_header_can_be_padded() {
    let mut f = Filter::new(corp_only(
        json!({"forward_payload_header": "x-jwt-payload", "pad_forward_payload_header": true}),
    ));
    for extra in ["", "x", "xy", "xyz"] {
        let token = good().claim("pad", json!(extra)).sign();
        let mut padded = payload_of(&token);
        while !padded.len().is_multiple_of(4) {
            padded.push('=');
        }
        let (decision, _) = f.decide(&get("/api").bearer(&token));
        let expected = allow(&[STATUS, "x-jwt-payload", "authorization"], &[("x-jwt-payload", &padded)]);
        assert_eq!(decision, expected, "{extra:?}");
    }
}

#[test]
fn tokens_are_stripped_from_header_parameter_and_cookie_unless_forwarded() {
    let locations = json!({
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token"}],
        "from_params": ["token"],
        "from_cookies": ["session"]
    });
    let t = good().sign();
    let cases: Vec<(&str, Req, Decision)> = vec![
        ("authorization", get("/api").bearer(&t), allow(&[STATUS, "authorization"], &[])),
        ("bare header", get("/api").header("x-token", &t), allow(&[STATUS, "x-token"], &[])),
        (
            "parameter among others",
            get(&format!("/api?a=1&token={t}&b=2")),
            allow(&[STATUS], &[(":path", "/api?a=1&b=2")]),
        ),
        ("parameter alone", get(&format!("/api?token={t}")), allow(&[STATUS], &[(":path", "/api")])),
        (
            "cookie among others",
            get("/api").header("cookie", &format!("a=1; session={t}; b=2")),
            allow(&[STATUS, "cookie"], &[("cookie", "a=1; b=2")]),
        ),
        (
            "cookie alone",
            get("/api").header("cookie", &format!("session={t}")),
            allow(&[STATUS, "cookie"], &[]),
        ),
        (
            "header and cookie, both stripped",
            get("/api").bearer(&t).header("cookie", &format!("session={t}; x=y")),
            allow(&[STATUS, "authorization", "cookie"], &[("cookie", "x=y")]),
        ),
    ];
    for (name, req, expected) in &cases {
        let mut f = Filter::new(corp_only(locations.clone()));
        assert_eq!(f.decide(req).0, *expected, "{name}");
        let mut kept = Filter::new(corp_only(merged(locations.clone(), json!({"forward": true}))));
        assert_eq!(kept.decide(req).0, allow(&[STATUS], &[]), "{name}, forward: true");
    }
}

#[test]
fn client_copies_of_output_headers_are_removed_on_every_route_kind() {
    let claims = json!([{"header_name": "x-sub", "claim_name": "sub"}, {"header_name": "x-email", "claim_name": "email"}]);
    let doc = json!({
        "bypass_cors_preflight": true,
        "providers": {
            "corp": corp(json!({"forward_payload_header": "x-jwt-payload", "claim_to_headers": claims})),
            "partner": partner(json!({"claim_to_headers": [{"header_name": "x-partner", "claim_name": "sub"}]})),
            "audit": corp(json!({"mode": "report", "forward_payload_header": "x-jwt-payload"}))
        },
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/open"}},
            {"match": {"prefix": "/public"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/lenient"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}}},
            {"match": {"prefix": "/audit"}, "requires": {"provider_name": "audit"}}
        ]
    });
    // Providers in name order: audit, corp, partner.
    let outputs = [STATUS, "x-jwt-payload", "x-sub", "x-email", "x-partner"];
    let good = good().sign();
    let expired = expired_token();
    let payload = payload_of(&good);
    let cases: Vec<(&str, Req, Headers)> = vec![
        (
            "provider, verified",
            get("/api").bearer(&good),
            pairs(&[("x-jwt-payload", &payload), ("x-sub", "alice")]),
        ),
        ("no requirement", get("/open").bearer(&good), vec![]),
        ("no rule", get("/elsewhere"), vec![]),
        ("allow_missing, no token", get("/public"), vec![]),
        ("allow_missing_or_failed, bad token", get("/lenient").bearer(&expired), vec![]),
        (
            "requires_any, partner",
            get("/any").bearer(&partner_token().sign()),
            pairs(&[("x-partner", "bob")]),
        ),
        (
            "CORS preflight",
            get("/api")
                .method("OPTIONS")
                .header("origin", "https://app")
                .header("access-control-request-method", "GET"),
            vec![],
        ),
        ("report mode, refused", get("/audit").bearer(&expired), pairs(&[(STATUS, "jwt_expired")])),
    ];
    for (name, req, set) in cases {
        let mut f = Filter::new(doc.clone());
        let Decision::Allow(m) = f.decide(&req.spoofed(&outputs)).0 else { panic!("{name}: not allowed") };
        assert_eq!(m.remove.get(..outputs.len()), Some(&outputs[..]), "{name}: every output header first");
        let set: Vec<(&str, String)> = set.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        assert_eq!(m.set, set, "{name}");
    }
}

// ---- Report mode -----------------------------------------------------------------------------

#[test]
fn report_mode_lets_every_request_through_with_its_status() {
    let claims = json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]});
    let doc = merged(corp_only(claims), json!({"mode": "report"}));
    let remove = [STATUS, "x-sub"];
    let e = |e: JwtError| jwt(e);
    let cases: Vec<(&str, Req, Decision, Vec<Event>)> = vec![
        (
            "valid: claims forwarded, token stripped, status ok",
            get("/api").bearer(&good().sign()),
            allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice"), (STATUS, "ok")]),
            vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed],
        ),
        (
            "expired: through, token kept",
            get("/api").bearer(&expired_token()),
            allow(&remove, &[(STATUS, "jwt_expired")]),
            vec![CacheMiss(0), Refused(0, e(JwtError::Expired)), Denied(e(JwtError::Expired)), Reported],
        ),
        (
            "missing",
            get("/api"),
            allow(&remove, &[(STATUS, "jwt_missing")]),
            vec![Denied(AuthnError::Missing), Reported],
        ),
        (
            "bad signature, and a forged status header",
            get("/api").bearer(&mint::tamper(&good().sign())).header(STATUS, "ok"),
            allow(&remove, &[(STATUS, "jwt_bad_signature")]),
            vec![
                CacheMiss(0),
                SignatureChecked(0),
                Refused(0, e(JwtError::BadSignature)),
                Denied(e(JwtError::BadSignature)),
                Reported,
            ],
        ),
    ];
    for (name, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
    let mut f = Filter::new(doc);
    f.set_keys("corp", Keys::Unavailable);
    let ka = AuthnError::KeysUnavailable;
    let (decision, events) = f.decide(&get("/api").bearer(&good().sign()));
    assert_eq!(decision, allow(&remove, &[(STATUS, "jwks_unavailable")]), "even without keys");
    assert_eq!(events, [CacheMiss(0), Refused(0, ka), Denied(ka), Reported]);
}

#[test]
fn report_mode_per_provider() {
    let any = |a: &str, b: &str| json!({"requires_any": {"requirements": [{"provider_name": a}, {"provider_name": b}]}});
    let all = |a: &str, b: &str| json!({"requires_all": {"requirements": [{"provider_name": a}, {"provider_name": b}]}});
    let doc = json!({
        "providers": {"audit": partner(json!({"mode": "report"})), "corp": corp(json!({}))},
        "rules": [
            {"match": {"prefix": "/audit"}, "requires": {"provider_name": "audit"}},
            {"match": {"prefix": "/corp"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/any"}, "requires": any("audit", "corp")},
            {"match": {"prefix": "/all"}, "requires": all("audit", "corp")},
            {"match": {"prefix": "/public"}, "requires": {"allow_missing": {}}}
        ]
    });
    let through = |status: &str| allow(&[STATUS], &[(STATUS, status)]);
    let corp = good().sign();
    let audit = partner_token().sign();
    let cases: Vec<(&str, Req, Decision)> = vec![
        ("report provider, missing", get("/audit"), through("jwt_missing")),
        (
            "report provider, expired",
            get("/audit").bearer(&partner_token().claim("exp", json!(NOW - 600)).sign()),
            through("jwt_expired"),
        ),
        (
            "report provider, valid",
            get("/audit").bearer(&audit),
            allow(&[STATUS, "authorization"], &[(STATUS, "ok")]),
        ),
        ("enforcing provider, missing", get("/corp"), missing_on("/corp")),
        ("any: the enforcing one allows", get("/any").bearer(&corp), allow(&[STATUS, "authorization"], &[])),
        // The first denial of requires_all decides without asking corp: the report provider's
        // failure must not let through a request that corp (enforcing) was never asked about.
        ("all: missing", get("/all"), missing_on("/all")),
        (
            "all: a corp token only",
            get("/all").bearer(&corp),
            refusal_on("/all", 401, "invalid_token", "jwt_issuer_not_allowed"),
        ),
        ("any: missing", get("/any"), missing_on("/any")),
        (
            "allow_missing over both, a bad audit token",
            get("/public").bearer(&mint::tamper(&audit)),
            refusal_on("/public", 401, "invalid_token", "jwt_bad_signature"),
        ),
        // A requirement with an enforcing provider is enforced, whichever provider answered.
        ("any: the report one allows", get("/any").bearer(&audit), allow(&[STATUS, "authorization"], &[])),
    ];
    for (name, req, expected) in cases {
        let mut f = Filter::new(doc.clone());
        assert_eq!(f.decide(&req).0, expected, "{name}");
    }
}

// ---- CORS preflight ----------------------------------------------------------------------------

#[test]
fn cors_preflights_pass_without_a_token_only_when_configured() {
    let with_flag = merged(corp_only(json!({})), json!({"bypass_cors_preflight": true}));
    let options = || get("/api").method("OPTIONS");
    let preflight =
        || options().header("origin", "https://app.example").header("access-control-request-method", "POST");
    let missing = || missing_on("/api");
    let cases: Vec<(&str, &Value, Req, Decision, Vec<Event>)> = vec![
        ("preflight", &with_flag, preflight(), allow(&[STATUS], &[]), vec![Event::CorsBypassed]),
        (
            "without Origin",
            &with_flag,
            options().header("access-control-request-method", "POST"),
            missing(),
            vec![Denied(AuthnError::Missing)],
        ),
        (
            "without the method header",
            &with_flag,
            options().header("origin", "https://app.example"),
            missing(),
            vec![Denied(AuthnError::Missing)],
        ),
        ("not OPTIONS", &with_flag, preflight().method("GET"), missing(), vec![Denied(AuthnError::Missing)]),
    ];
    let without_flag = corp_only(json!({}));
    let cases = cases.into_iter().chain([(
        "flag off",
        &without_flag,
        preflight(),
        missing(),
        vec![Denied(AuthnError::Missing)],
    )]);
    for (name, doc, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
    let mut f = Filter::new(with_flag);
    let (decision, events) = f.decide(&preflight().bearer(&expired_token()));
    assert_eq!(decision, allow(&[STATUS], &[]), "a preflight's token is not looked at");
    assert_eq!(events, [Event::CorsBypassed]);
}

// ---- Requirements through the decision ---------------------------------------------------------

fn two_providers(requires: Value) -> Value {
    let sub = |h: &str| json!({"claim_to_headers": [{"header_name": h, "claim_name": "sub"}]});
    json!({
        "providers": {"corp": corp(sub("x-corp-sub")), "partner": partner(sub("x-partner-sub"))},
        "rules": [{"match": {"prefix": "/"}, "requires": requires}]
    })
}

#[test]
fn requires_any_with_two_providers_sharing_the_authorization_header() {
    let doc = two_providers(
        json!({"requires_any": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}}),
    );
    let with_auth = [STATUS, "x-corp-sub", "x-partner-sub", "authorization"];
    let e = |e: JwtError| jwt(e);
    let expired_partner = partner_token().claim("exp", json!(NOW - 600)).sign();
    let cases: Vec<(&str, Req, Decision, Vec<Event>)> = vec![
        (
            "corp's token",
            get("/api").bearer(&good().sign()),
            allow(&with_auth, &[("x-corp-sub", "alice")]),
            vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed],
        ),
        (
            "partner's token: corp sees another issuer, partner verifies and alone forwards",
            get("/api").bearer(&partner_token().sign()),
            allow(&with_auth, &[("x-partner-sub", "bob")]),
            vec![CacheMiss(0), CacheMiss(1), SignatureChecked(1), Verified(1), Allowed],
        ),
        (
            "partner's expired token: its error wins over another issuer",
            get("/api").bearer(&expired_partner),
            refusal(401, "invalid_token", "jwt_expired"),
            vec![CacheMiss(0), CacheMiss(1), Refused(1, e(JwtError::Expired)), Denied(e(JwtError::Expired))],
        ),
        (
            "nobody's issuer",
            get("/api").bearer(&good().iss("https://elsewhere.example").sign()),
            refusal(401, "invalid_token", "jwt_issuer_not_allowed"),
            vec![CacheMiss(0), CacheMiss(1), Denied(e(JwtError::IssuerNotAllowed))],
        ),
        ("missing", get("/api"), missing_on("/api"), vec![Denied(AuthnError::Missing)]),
    ];
    for (name, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
}

#[test]
fn allow_missing_and_allow_missing_or_failed() {
    let outputs = [STATUS, "x-corp-sub", "x-partner-sub"];
    let with_auth = [STATUS, "x-corp-sub", "x-partner-sub", "authorization"];
    let expired = expired_token();
    let forged = mint::tamper(&partner_token().sign());
    let e = |e: JwtError| jwt(e);
    let cases: Vec<(&str, Value, Req, Decision, Vec<Event>)> = vec![
        (
            "allow_missing, none",
            json!({"allow_missing": {}}),
            get("/api"),
            allow(&outputs, &[]),
            vec![Allowed],
        ),
        (
            "allow_missing, valid: claims forwarded",
            json!({"allow_missing": {}}),
            get("/api").bearer(&partner_token().sign()),
            allow(&with_auth, &[("x-partner-sub", "bob")]),
            vec![CacheMiss(0), CacheMiss(1), SignatureChecked(1), Verified(1), Allowed],
        ),
        (
            "allow_missing, expired: refused",
            json!({"allow_missing": {}}),
            get("/api").bearer(&expired),
            refusal(401, "invalid_token", "jwt_expired"),
            vec![CacheMiss(0), Refused(0, e(JwtError::Expired)), Denied(e(JwtError::Expired))],
        ),
        (
            "allow_missing_or_failed, none",
            json!({"allow_missing_or_failed": {}}),
            get("/api"),
            allow(&outputs, &[]),
            vec![Allowed],
        ),
        (
            "allow_missing_or_failed, forged: through, token kept, no claims",
            json!({"allow_missing_or_failed": {}}),
            get("/api").bearer(&forged),
            allow(&outputs, &[]),
            vec![
                CacheMiss(0),
                CacheMiss(1),
                SignatureChecked(1),
                Refused(1, e(JwtError::BadSignature)),
                Allowed,
            ],
        ),
        (
            "allow_missing_or_failed, valid: claims forwarded",
            json!({"allow_missing_or_failed": {}}),
            get("/api").bearer(&good().sign()),
            allow(&with_auth, &[("x-corp-sub", "alice")]),
            vec![CacheMiss(0), SignatureChecked(0), Verified(0), CacheMiss(1), Allowed],
        ),
        (
            "requires_any [corp, allow_missing], none",
            json!({"requires_any": {"requirements": [{"provider_name": "corp"}, {"allow_missing": {}}]}}),
            get("/api"),
            allow(&outputs, &[]),
            vec![Allowed],
        ),
        (
            "requires_any [corp, allow_missing], expired: refused",
            json!({"requires_any": {"requirements": [{"provider_name": "corp"}, {"allow_missing": {}}]}}),
            get("/api").bearer(&expired),
            refusal(401, "invalid_token", "jwt_expired"),
            vec![CacheMiss(0), Refused(0, e(JwtError::Expired)), Denied(e(JwtError::Expired))],
        ),
        (
            "requires_all [corp, partner], corp's token: partner finds another issuer",
            json!({"requires_all": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}}),
            get("/api").bearer(&good().sign()),
            refusal(401, "invalid_token", "jwt_issuer_not_allowed"),
            vec![
                CacheMiss(0),
                SignatureChecked(0),
                Verified(0),
                CacheMiss(1),
                Denied(e(JwtError::IssuerNotAllowed)),
            ],
        ),
        (
            "provider_and_audiences: the route's audience replaces the provider's",
            json!({"provider_and_audiences": {"provider_name": "corp", "audiences": ["admin.example"]}}),
            get("/api").bearer(&good().sign()),
            refusal(403, "invalid_token", "jwt_audience_not_allowed"),
            vec![
                CacheMiss(0),
                Refused(0, e(JwtError::AudienceNotAllowed)),
                Denied(e(JwtError::AudienceNotAllowed)),
            ],
        ),
    ];
    for (name, requires, req, expected, expected_events) in cases {
        let mut f = Filter::new(two_providers(requires));
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
}
