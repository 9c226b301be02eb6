//! Tier 2: the whole request decision, `authn::decide`, natively (no Envoy). Configs are JSON as
//! an operator writes them, keys are the fixture keys' JWKS, tokens are signed by `mint`, the clock
//! is fixed; each test asserts the exact `Decision` (header changes, local reply, or hold) and the
//! events the filter turns into metrics. The harness is `authn_common`.
//!
//! This file: sender-constrained tokens (issue 17): DPoP proofs on every request (cache hits
//! too), recorded last and once per Envoy, the §7.1 answers, nonces, client certificates, report
//! mode, and that providers without bindings never ask for any of it.

mod authn_common;
mod support;

use authn_common::*;
use support::mint::{Key, dpop_proof};

/// The DPoP client's key (the token is bound to it) and another holder's.
const HOLDER: TestKey = TestKey::P256A;
const THIEF: TestKey = TestKey::P256B;
/// What `get("/api")` is, as a proof names it.
const HTU: &str = "https://api.example.com/api";

fn dpop_corp(dpop: Value) -> Value {
    corp_only(json!({"dpop": dpop}))
}

/// A `corp` token bound to `HOLDER`'s key.
fn bound_token() -> String {
    good().claim("cnf", json!({"jkt": HOLDER.thumbprint()})).sign()
}

/// A fresh proof by `key` for `GET HTU` with `token`, made at `NOW`.
fn proof(key: &'static Key, token: &str) -> support::mint::Token<'static> {
    dpop_proof(key, "GET", HTU, Some(token)).claim("iat", json!(NOW))
}

/// `GET /api` with `Authorization: DPoP token` and these `DPoP` headers.
fn dpop_get(token: &str, proofs: &[&str]) -> Req {
    let req = get("/api").header("authorization", &format!("DPoP {token}"));
    proofs.iter().fold(req, |req, p| req.header("dpop", p))
}

/// What an allowed DPoP request changes: the token and its proof are not sent upstream.
fn allowed_dpop() -> Decision<'static> {
    allow(&[STATUS, "authorization", "dpop"], &[])
}

const BEARER: &str = "Bearer realm=\"https://api.example.com/api\"";
const DPOP_ALGS: &str = "algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519\"";
const EXPOSED: (&str, &str) = ("access-control-expose-headers", "WWW-Authenticate, DPoP-Nonce");

/// The DPoP challenge, bare or with an error on it.
fn dpop_challenge(error: Option<(&str, &str)>) -> String {
    let realm = "DPoP realm=\"https://api.example.com/api\"";
    match error {
        None => format!("{realm}, {DPOP_ALGS}"),
        Some((code, reason)) => {
            format!("{realm}, error=\"{code}\", error_description=\"{reason}\", {DPOP_ALGS}")
        }
    }
}

/// A refusal by a provider with `dpop.mode: allowed`: both challenges, the error on `on`'s.
fn dpop_refusal(status: u32, on_dpop: bool, code: &str, reason: &'static str) -> Decision<'static> {
    let bearer_error = format!("{BEARER}, error=\"{code}\", error_description=\"{reason}\"");
    let (bearer, dpop) = match on_dpop {
        true => (BEARER.to_owned(), dpop_challenge(Some((code, reason)))),
        false => (bearer_error, dpop_challenge(None)),
    };
    let headers = pairs(&[("www-authenticate", &bearer), ("www-authenticate", &dpop), EXPOSED]);
    let filter_state = Entries::default();
    Decision::Deny(Reply { status, headers, body: reason.to_owned(), reason, filter_state })
}

fn binding(e: BindingError) -> AuthnError {
    AuthnError::Binding(e)
}

#[test]
fn a_bound_token_with_its_proof_passes_and_the_proof_is_checked_on_every_cache_hit() {
    let mut f = Filter::new(dpop_corp(json!({"mode": "allowed"})));
    let token = bound_token();
    let first = proof(&HOLDER, &token).sign();
    let (decision, events) = f.decide(&dpop_get(&token, &[&first]));
    assert_eq!(
        (decision, events),
        (allowed_dpop(), vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed])
    );
    assert_eq!(f.crypto_calls(), 2, "the token's signature and the proof's");
    // The token is a cache hit now; a new proof is still verified, the old one is a replay.
    let second = proof(&HOLDER, &token).sign();
    let (decision, events) = f.decide(&dpop_get(&token, &[&second]));
    assert_eq!((decision, events), (allowed_dpop(), vec![CacheHit(0), Verified(0), Allowed]));
    assert_eq!(f.crypto_calls(), 3, "the proof's signature only");
    let e = binding(BindingError::Replayed);
    let (decision, events) = f.decide(&dpop_get(&token, &[&first]));
    assert_eq!(decision, dpop_refusal(401, true, "invalid_dpop_proof", "dpop_proof_replayed"));
    assert_eq!(events, vec![CacheHit(0), Refused(0, e), Denied(e)]);
}

#[test]
fn a_proof_is_used_once_per_envoy_whichever_vm_sees_it() {
    let doc = dpop_corp(json!({"mode": "required"}));
    let mut first_vm = Filter::new(doc.clone());
    let mut second_vm = Filter::sharing(&first_vm, doc);
    let token = bound_token();
    let p = proof(&HOLDER, &token).sign();
    assert_eq!(first_vm.decide(&dpop_get(&token, &[&p])).0, allowed_dpop());
    let (decision, _) = second_vm.decide(&dpop_get(&token, &[&p]));
    assert!(matches!(decision, Decision::Deny(Reply { reason: "dpop_proof_replayed", .. })), "{decision:?}");
}

#[test]
fn another_holder_cannot_use_the_token() {
    let mut f = Filter::new(dpop_corp(json!({"mode": "allowed"})));
    let token = bound_token();
    let thief = proof(&THIEF, &token).sign();
    let cases: Vec<(Req, Decision)> = vec![
        (dpop_get(&token, &[&thief]), dpop_refusal(401, true, "invalid_dpop_proof", "dpop_jkt_mismatch")),
        (dpop_get(&token, &[]), dpop_refusal(401, true, "invalid_dpop_proof", "dpop_proof_missing")),
        (get("/api").bearer(&token), dpop_refusal(401, false, "invalid_token", "dpop_downgrade")),
        // RFC 9449 §7.2: a Bearer credential beside the DPoP one is a malformed request.
        (
            dpop_get(&token, &[&proof(&HOLDER, &token).sign()])
                .header("authorization", &format!("Bearer {token}")),
            {
                let reason = "dpop_bearer_and_dpop";
                let on_both = |challenge: &str| {
                    format!("{challenge}, error=\"invalid_request\", error_description=\"{reason}\"")
                };
                let dpop = dpop_challenge(Some(("invalid_request", reason)));
                let headers =
                    pairs(&[("www-authenticate", &on_both(BEARER)), ("www-authenticate", &dpop), EXPOSED]);
                Decision::Deny(Reply {
                    status: 400,
                    headers,
                    body: reason.into(),
                    reason,
                    filter_state: Entries::default(),
                })
            },
        ),
    ];
    for (req, expected) in cases {
        assert_eq!(f.decide(&req).0, expected);
    }
    // No credentials: both schemes are offered, bare.
    let bare = pairs(&[("www-authenticate", BEARER), ("www-authenticate", &dpop_challenge(None)), EXPOSED]);
    let (decision, _) = f.decide(&get("/api"));
    let missing = Reply {
        status: 401,
        headers: bare,
        body: "jwt_missing".into(),
        reason: "jwt_missing",
        filter_state: Entries::default(),
    };
    assert_eq!(decision, Decision::Deny(missing));
    // An unbound token still passes as Bearer under `allowed`, not under `required`.
    let unbound = good().sign();
    assert!(matches!(f.decide(&get("/api").bearer(&unbound)).0, Decision::Allow(_)));
    let mut required = Filter::new(dpop_corp(json!({"mode": "required"})));
    let (decision, _) = required.decide(&get("/api").bearer(&unbound));
    assert!(
        matches!(decision, Decision::Deny(Reply { reason: "dpop_bearer_not_allowed", .. })),
        "{decision:?}"
    );
}

#[test]
fn a_token_failure_on_a_dpop_credential_is_challenged_as_dpop() {
    let mut f = Filter::new(dpop_corp(json!({"mode": "allowed"})));
    let expired =
        good().claim("cnf", json!({"jkt": HOLDER.thumbprint()})).claim("exp", json!(NOW - 3600)).sign();
    let p = proof(&HOLDER, &expired).sign();
    let (decision, events) = f.decide(&dpop_get(&expired, &[&p]));
    assert_eq!(decision, dpop_refusal(401, true, "invalid_token", "jwt_expired"));
    let e = jwt(JwtError::Expired);
    assert_eq!(events, vec![CacheMiss(0), Refused(0, e), Denied(e)]);
}

#[test]
fn a_held_request_does_not_use_its_proof_up() {
    let doc = json!({"providers": {"corp": {"issuer": ISS, "audiences": [AUD], "dpop": {"mode": "required"},
        "remote_jwks": {"http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "5s"}}}},
        "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}]});
    let mut f = Filter::new(doc);
    let token = bound_token();
    let p = proof(&HOLDER, &token).sign();
    let (held, _) = f.decide(&dpop_get(&token, &[&p]));
    assert!(matches!(held, Decision::Wait(_)), "{held:?}");
    f.unknown_kid("corp", UnknownKid::Refuse);
    assert_eq!(f.decide(&dpop_get(&token, &[&p])).0, allowed_dpop(), "decided again once keys came");
}

#[test]
fn proofs_are_recorded_only_once_the_request_is_allowed() {
    // requires_all: the DPoP provider passes, the other fails: the proof is not used up.
    let doc = json!({"providers": {"corp": corp(json!({"dpop": {"mode": "required"}})), "partner": partner(json!({}))},
        "rules": [{"match": {"prefix": "/api"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "corp"}, {"provider_and_audiences": {"provider_name": "partner", "audiences": [AUD]}}]}}}]});
    let mut f = Filter::new(doc);
    let token = bound_token();
    let p = proof(&HOLDER, &token).sign();
    let (decision, _) = f.decide(&dpop_get(&token, &[&p]));
    assert!(
        matches!(decision, Decision::Deny(Reply { reason: "jwt_missing", status: 401, .. })),
        "{decision:?}"
    );
    // The same proof in a request that passes the whole requirement: accepted once.
    let doc = dpop_corp(json!({"mode": "required"}));
    let mut g = Filter::sharing(&f, doc);
    assert_eq!(g.decide(&dpop_get(&token, &[&p])).0, allowed_dpop());
}

#[test]
fn report_mode_reports_binding_failures_without_refusing() {
    let mut f = Filter::new(corp_only(json!({"mode": "report", "dpop": {"mode": "required"}})));
    let token = bound_token();
    let p = proof(&HOLDER, &token).sign();
    assert_eq!(
        f.decide(&dpop_get(&token, &[&p])).0,
        allow(&[STATUS, "authorization", "dpop"], &[(STATUS, "ok")])
    );
    let e = binding(BindingError::Replayed);
    let (decision, events) = f.decide(&dpop_get(&token, &[&p]));
    assert_eq!(decision, allow(&[STATUS], &[(STATUS, "dpop_proof_replayed")]));
    assert_eq!(events, vec![CacheHit(0), Refused(0, e), Denied(e), Reported]);
    let (decision, _) = f.decide(&get("/api").bearer(&token));
    assert_eq!(decision, allow(&[STATUS], &[(STATUS, "dpop_downgrade")]));
}

#[test]
fn server_nonces() {
    let mut f = Filter::new(dpop_corp(json!({"mode": "required", "nonce": {"step": "60s"}})));
    let nonces = f.binding.nonces[0].clone().unwrap();
    let token = bound_token();
    // No nonce: use_dpop_nonce with the current nonce (and a nonce on any refusal).
    let (decision, _) = f.decide(&dpop_get(&token, &[&proof(&HOLDER, &token).sign()]));
    let Decision::Deny(reply) = decision else { panic!("{decision:?}") };
    assert_eq!((reply.status, reply.reason), (401, "dpop_nonce_missing"));
    assert!(reply.headers.contains(&("dpop-nonce".to_owned(), nonces.current(NOW))), "{reply:?}");
    assert!(reply.headers[0].1.contains("error=\"use_dpop_nonce\""), "{reply:?}");
    // The current nonce passes; the previous step's passes and a new one is offered.
    let current = proof(&HOLDER, &token).claim("nonce", json!(nonces.current(NOW))).sign();
    assert_eq!(f.decide(&dpop_get(&token, &[&current])).0, allowed_dpop());
    let previous = proof(&HOLDER, &token).claim("nonce", json!(nonces.current(NOW - 60))).sign();
    let Decision::Allow(mutations) = f.decide(&dpop_get(&token, &[&previous])).0 else { panic!() };
    let offered = vec![("dpop-nonce", nonces.current(NOW)), (EXPOSED.0, EXPOSED.1.to_owned())];
    assert_eq!(mutations.response, offered);
}

#[test]
fn certificate_bound_tokens() {
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let x5t = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";
    let mut f = Filter::new(corp_only(json!({"certificate_bound": {"mode": "allowed"}})));
    let token = good().claim("cnf", json!({"x5t#S256": x5t})).sign();
    let refused = |reason: &'static str| refusal(401, "invalid_token", reason);
    assert_eq!(f.decide(&get("/api").bearer(&token)).0, refused("cnf_certificate_missing"));
    f.binding.peer = Some("60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752".into());
    assert_eq!(f.decide(&get("/api").bearer(&token)).0, refused("cnf_certificate_mismatch"));
    f.binding.peer = Some(digest.into());
    assert_eq!(f.decide(&get("/api").bearer(&token)).0, allow(&[STATUS, "authorization"], &[]));
    assert_eq!(f.binding.peer_reads.get(), 3, "once per request");
    // `required`: a token without the binding is refused.
    let mut required = Filter::new(corp_only(json!({"certificate_bound": {"mode": "required"}})));
    assert_eq!(required.decide(&get("/api").bearer(&good().sign())).0, refused("cnf_certificate_unbound"));
}

#[test]
fn providers_without_bindings_ignore_cnf_and_never_ask_the_host() {
    let mut f = Filter::new(corp_only(json!({})));
    let bound = good().claim("cnf", json!({"jkt": HOLDER.thumbprint(), "x5t#S256": "x"})).sign();
    assert_eq!(f.decide(&get("/api").bearer(&bound)).0, allow(&[STATUS, "authorization"], &[]));
    // A DPoP credential is no credential of theirs.
    assert_eq!(f.decide(&dpop_get(&bound, &[])).0, missing_on("/api"));
    assert_eq!(f.binding.peer_reads.get(), 0);
}

#[test]
fn the_thumbprint_goes_upstream_like_any_claim() {
    let claim_out = json!({"dpop": {"mode": "required"},
        "claim_to_headers": [{"header_name": "x-jkt", "claim_name": "cnf.jkt"}],
        "claim_to_filter_state": [{"claim_name": "cnf.jkt", "name": "jkt"}]});
    let mut f = Filter::new(corp_only(claim_out));
    let token = bound_token();
    let p = proof(&HOLDER, &token).sign();
    let Decision::Allow(mutations) = f.decide(&dpop_get(&token, &[&p])).0 else { panic!() };
    assert_eq!(mutations.set, [("x-jkt", HOLDER.thumbprint())]);
    assert_eq!(mutations.filter_state.0, pairs(&[("jkt", &HOLDER.thumbprint())]));
}
