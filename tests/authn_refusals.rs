//! Tier 2: the whole request decision, `authn::decide`, natively (no Envoy). Configs are JSON as
//! an operator writes them, keys are the fixture keys' JWKS, tokens are signed by `mint`, the clock
//! is fixed; each test asserts the exact `Decision` (header changes, local reply, or hold) and the
//! events the filter turns into metrics. The harness is `authn_common`.
//!
//! This file: refused requests (status, challenge, body) and requests without usable keys.

mod authn_common;
mod support;

use authn_common::*;

// ---- Refused requests: the local reply -------------------------------------------------------

#[test]
fn failures_answer_with_their_status_challenge_and_body() {
    use JwtError::*;
    let doc = corp_only(json!({
        "algorithms": ["RS256", "ES256"],
        "required_scopes": ["read"],
        "required_claims": [{"name": "tenant", "values": ["acme", "globex"]}]
    }));
    let ok = || good().claim("scope", json!("read write")).claim("tenant", json!("acme"));
    assert_eq!(
        Filter::new(doc.clone()).decide(&get("/api").bearer(&ok().sign())).0,
        allow(&[STATUS, "authorization"], &[])
    );
    let token = |t: Token<'static>| get("/api").bearer(&t.sign());
    let miss_refused_denied = |e: AuthnError| vec![CacheMiss(0), Refused(0, e), Denied(e)];
    // Refused at or after the signature check.
    let checked_refused_denied =
        |e: AuthnError| vec![CacheMiss(0), SignatureChecked(0), Refused(0, e), Denied(e)];
    let cases: Vec<(&str, Req, Decision, Vec<Event>)> = vec![
        (
            "missing: no error code (RFC 6750 §3.1)",
            get("/api"),
            missing_on("/api"),
            vec![Denied(AuthnError::Missing)],
        ),
        (
            "expired",
            token(ok().claim("exp", json!(NOW - 61))),
            refusal(401, "invalid_token", "jwt_expired"),
            miss_refused_denied(jwt(Expired)),
        ),
        (
            "not yet valid",
            token(ok().claim("nbf", json!(NOW + 61))),
            refusal(401, "invalid_token", "jwt_not_yet_valid"),
            miss_refused_denied(jwt(NotYetValid)),
        ),
        (
            "bad signature",
            get("/api").bearer(&mint::tamper(&ok().sign())),
            refusal(401, "invalid_token", "jwt_bad_signature"),
            checked_refused_denied(jwt(BadSignature)),
        ),
        (
            "algorithm not allowed",
            token(
                Token::new("PS256", TestKey::RsaA)
                    .kid("rsa-a")
                    .iss(ISS)
                    .aud(AUD)
                    .claim("exp", json!(NOW + 60)),
            ),
            refusal(401, "invalid_token", "jwt_alg_not_allowed"),
            miss_refused_denied(jwt(AlgNotAllowed)),
        ),
        (
            "not a JWT",
            get("/api").bearer("abc"),
            refusal(401, "invalid_token", "jwt_bad_format"),
            miss_refused_denied(jwt(BadFormat)),
        ),
        (
            "two tokens in the header",
            get("/api").header("authorization", "Bearer a b"),
            refusal(401, "invalid_token", "jwt_location_malformed"),
            vec![Refused(0, AuthnError::MalformedLocation), Denied(AuthnError::MalformedLocation)],
        ),
        (
            "the header twice",
            get("/api").bearer(&ok().sign()).bearer(&ok().sign()),
            refusal(401, "invalid_token", "jwt_location_repeated"),
            vec![Refused(0, AuthnError::RepeatedLocation), Denied(AuthnError::RepeatedLocation)],
        ),
        (
            "another issuer: not this provider's token, no provider refusal",
            token(ok().iss("https://elsewhere.example")),
            refusal(401, "invalid_token", "jwt_issuer_not_allowed"),
            vec![CacheMiss(0), Denied(jwt(IssuerNotAllowed))],
        ),
        (
            "audience: 403 as jwt_authn",
            token(ok().aud("other.example")),
            refusal(403, "invalid_token", "jwt_audience_not_allowed"),
            miss_refused_denied(jwt(AudienceNotAllowed)),
        ),
        (
            "no audience: 403",
            token(ok().remove_claim("aud")),
            refusal(403, "invalid_token", "jwt_missing_audience"),
            miss_refused_denied(jwt(MissingAudience)),
        ),
        (
            "a scope missing: 403 insufficient_scope",
            token(ok().claim("scope", json!("write"))),
            refusal(403, "insufficient_scope", "jwt_insufficient_scope"),
            checked_refused_denied(jwt(InsufficientScope)),
        ),
        (
            "scp instead of scope works, a missing one does not",
            token(ok().remove_claim("scope").claim("scp", json!(["write"]))),
            refusal(403, "insufficient_scope", "jwt_insufficient_scope"),
            checked_refused_denied(jwt(InsufficientScope)),
        ),
        (
            "required claim with another value: 403 insufficient_scope",
            token(ok().claim("tenant", json!("initech"))),
            refusal(403, "insufficient_scope", "jwt_required_claim_mismatch"),
            checked_refused_denied(jwt(ClaimMismatch)),
        ),
        (
            "required claim absent",
            token(ok().remove_claim("tenant")),
            refusal(403, "insufficient_scope", "jwt_required_claim_mismatch"),
            checked_refused_denied(jwt(ClaimMismatch)),
        ),
    ];
    for (name, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
    let scp = good().claim("scp", json!(["read"])).claim("tenant", json!("globex")).sign();
    assert!(
        matches!(Filter::new(doc).decide(&get("/api").bearer(&scp)).0, Decision::Allow(_)),
        "scp, any-of values"
    );
}

#[test]
fn the_realm_is_the_url_without_query_and_unsafe_characters() {
    let mut f = Filter::new(
        json!({"providers": {"corp": corp(json!({}))}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]}),
    );
    for (path, realm_path) in [("/api?token=x#frag", "/api"), ("/a\"b\\c", "/abc"), ("/", "/")] {
        assert_eq!(f.decide(&get(path)).0, missing_on(realm_path), "{path}");
    }
}

#[test]
fn strip_failure_response_leaves_out_the_reason() {
    let doc =
        merged(corp_only(json!({"required_scopes": ["read"]})), json!({"strip_failure_response": true}));
    let realm = realm("/api");
    let bare = |code: &str| format!("Bearer realm=\"{realm}\", error=\"{code}\"");
    let cases = [
        (get("/api"), 401, format!("Bearer realm=\"{realm}\""), "jwt_missing"),
        (get("/api").bearer(&expired_token()), 401, bare("invalid_token"), "jwt_expired"),
        (get("/api").bearer(&good().aud("x").sign()), 403, bare("invalid_token"), "jwt_audience_not_allowed"),
        (get("/api").bearer(&good().sign()), 403, bare("insufficient_scope"), "jwt_insufficient_scope"),
    ];
    for (req, status, header, reason) in cases {
        let mut f = Filter::new(doc.clone());
        assert_eq!(f.decide(&req).0, reply(status, ("www-authenticate", &header), "", reason), "{reason}");
    }
}

// ---- Keys not there: 503 or hold ---------------------------------------------------------------

#[test]
fn without_usable_keys_the_answer_is_503_with_retry_after() {
    let retry = RETRY_AFTER_SECONDS.to_string();
    let unavailable = reply(503, ("retry-after", &retry), "jwks_unavailable", "jwks_unavailable");
    let e = AuthnError::KeysUnavailable;
    let cases = [
        ("unavailable", Keys::Unavailable, get("/api").bearer(&good().sign())),
        (
            "unavailable, not allowed to wait either",
            Keys::Unavailable,
            get("/api").bearer(&good().sign()).no_wait_keys(),
        ),
        ("pending, may not wait", Keys::Pending, get("/api").bearer(&good().sign()).no_wait_keys()),
    ];
    for (name, keys, req) in cases {
        let mut f = Filter::new(corp_only(json!({})));
        f.set_keys("corp", keys);
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, unavailable, "{name}");
        assert_eq!(events, [CacheMiss(0), Refused(0, e), Denied(e)], "{name}");
    }
    let mut f = Filter::new(corp_only(json!({})));
    f.set_keys("corp", Keys::Unavailable);
    let expired = f.decide(&get("/api").bearer(&expired_token())).0;
    assert_eq!(
        expired,
        refusal(401, "invalid_token", "jwt_expired"),
        "keyless checks first: the client's fault"
    );
    let missing = f.decide(&get("/api")).0;
    assert!(matches!(missing, Decision::Deny(Reply { status: 401, .. })), "{missing:?}");
}

#[test]
fn pending_keys_hold_the_request_and_count_nothing_yet() {
    let mut f = Filter::new(corp_only(json!({})));
    f.set_keys("corp", Keys::Pending);
    let (decision, events) = f.decide(&get("/api").bearer(&good().sign()));
    assert_eq!(decision, Decision::Wait(Wait { refetch: vec![], for_kid: false }));
    assert_eq!(events, [], "a held request is decided again, and counted then, once");
    let (decision, events) = f.decide(&get("/api"));
    assert!(matches!(decision, Decision::Deny(Reply { status: 401, .. })), "no token: nothing to wait for");
    assert_eq!(events, [Denied(AuthnError::Missing)]);
}

#[test]
fn an_unknown_kid_waits_for_a_refetch_or_is_refused() {
    let unknown = good().kid("rotated").sign();
    let refused = || refusal(401, "invalid_token", "jwt_unknown_kid");
    let wait = |refetch: bool| {
        Decision::Wait(Wait { refetch: if refetch { vec![0] } else { vec![] }, for_kid: true })
    };
    let cases = [
        (UnknownKid::Refetch, true, wait(true)),
        (UnknownKid::Wait, true, wait(false)),
        (UnknownKid::Refuse, true, refused()),
        (UnknownKid::Refetch, false, refused()),
        (UnknownKid::Wait, false, refused()),
    ];
    for (answer, may_wait, expected) in cases {
        let mut f = Filter::new(corp_only(json!({})));
        f.unknown_kid("corp", answer);
        let req = get("/api").bearer(&unknown);
        let (decision, events) = f.decide(&if may_wait { req } else { req.no_wait_kid() });
        let e = jwt(JwtError::UnknownKid);
        let expected_events = if matches!(expected, Decision::Wait(_)) {
            vec![]
        } else {
            vec![CacheMiss(0), Refused(0, e), Denied(e)]
        };
        assert_eq!(decision, expected, "{answer:?}, may wait: {may_wait}");
        assert_eq!(events, expected_events, "{answer:?}, may wait: {may_wait}");
    }
}

#[test]
fn a_known_kid_verifies_while_a_refetch_would_be_allowed() {
    let mut f = Filter::new(corp_only(json!({})));
    f.unknown_kid("corp", UnknownKid::Refetch);
    assert_eq!(f.decide(&get("/api").bearer(&good().sign())).0, allow(&[STATUS, "authorization"], &[]));
}

#[test]
fn stale_keys_still_verify_and_say_so() {
    let mut f = Filter::new(corp_only(json!({})));
    let set = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
    f.set_keys("corp", Keys::Ready(set, UnknownKid::Refuse, true, fixture_id()));
    let (decision, events) = f.decide(&get("/api").bearer(&good().sign()));
    assert_eq!(decision, allow(&[STATUS, "authorization"], &[]));
    assert_eq!(events, [CacheMiss(0), SignatureChecked(0), StaleServed(0), Verified(0), Allowed]);
}
