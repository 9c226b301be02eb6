//! Tier 2: the whole request decision, `authn::decide`, natively (no Envoy). Configs are JSON as
//! an operator writes them, keys are the fixture keys' JWKS, tokens are signed by `mint`, the clock
//! is fixed; each test asserts the exact `Decision` (header changes, local reply, or hold) and the
//! events the filter turns into metrics. The harness is `authn_common`.
//!
//! This file: the per-VM token cache and the shared record of verified tokens.

mod authn_common;
mod support;

use authn_common::*;

// ---- The token cache ---------------------------------------------------------------------------

#[test]
fn a_cached_token_skips_the_signature_but_not_the_claims() {
    let mut f =
        Filter::new(corp_only(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]})));
    let token = good().sign();
    let expected = allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
    let (first, events) = f.decide(&get("/api").bearer(&token));
    assert_eq!(
        (first, events, f.crypto_calls()),
        (expected, vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed], 1)
    );
    for _ in 0..3 {
        let (again, events) = f.decide(&get("/api").bearer(&token));
        let expected = allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
        assert_eq!((again, events, f.crypto_calls()), (expected, vec![CacheHit(0), Verified(0), Allowed], 1));
    }
    let e = jwt(JwtError::Expired);
    let (later, events) = f.decide(&get("/api").bearer(&token).at(NOW + 3600 + 61));
    assert_eq!(later, refusal(401, "invalid_token", "jwt_expired"), "time is checked on every hit");
    assert_eq!((events, f.crypto_calls()), (vec![CacheHit(0), Refused(0, e), Denied(e)], 1));
}

#[test]
fn a_cached_token_follows_the_state_of_its_keys() {
    let mut f = Filter::new(corp_only(json!({})));
    let token = good().sign();
    let set = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
    let (first, _) = f.decide(&get("/api").bearer(&token));
    assert!(matches!(first, Decision::Allow(_)));
    // Stale keys still serve the cached token, and say so.
    f.set_keys("corp", Keys::Ready(set, UnknownKid::Refuse, true, fixture_id()));
    let (stale, events) = f.decide(&get("/api").bearer(&token));
    assert!(matches!(stale, Decision::Allow(_)));
    assert_eq!(events, vec![CacheHit(0), StaleServed(0), Verified(0), Allowed]);
    // Past max_stale the cache does not keep the token alive: 503 as for any other token.
    f.set_keys("corp", Keys::Unavailable);
    let (expired, events) = f.decide(&get("/api").bearer(&token));
    assert!(matches!(expired, Decision::Deny(Reply { status: 503, .. })), "{expired:?}");
    let e = AuthnError::KeysUnavailable;
    assert_eq!(events, vec![CacheHit(0), Refused(0, e), Denied(e)]);
    assert_eq!(f.crypto_calls(), 1);
}

#[test]
fn a_forged_token_is_verified_once() {
    let mut f = Filter::new(corp_only(json!({})));
    let forged = mint::tamper(&good().sign());
    let e = jwt(JwtError::BadSignature);
    let (first, events) = f.decide(&get("/api").bearer(&forged));
    assert_eq!(first, refusal(401, "invalid_token", "jwt_bad_signature"));
    assert_eq!(
        (events, f.crypto_calls()),
        (vec![CacheMiss(0), SignatureChecked(0), Refused(0, e), Denied(e)], 1)
    );
    let (again, events) = f.decide(&get("/api").bearer(&forged));
    assert_eq!(again, refusal(401, "invalid_token", "jwt_bad_signature"));
    assert_eq!((events, f.crypto_calls()), (vec![CacheHit(0), Refused(0, e), Denied(e)], 1));
}

#[test]
fn a_disabled_cache_verifies_every_time_and_counts_no_lookups() {
    let mut f = Filter::new(corp_only(json!({"jwt_cache_config": {"disabled": true}})));
    let token = good().sign();
    for calls in 1..=2 {
        let (decision, events) = f.decide(&get("/api").bearer(&token));
        assert_eq!(decision, allow(&[STATUS, "authorization"], &[]));
        assert_eq!((events, f.crypto_calls()), (vec![SignatureChecked(0), Verified(0), Allowed], calls));
    }
}

// ---- The shared record of verified tokens (two VMs of one Envoy) --------------------------------

#[test]
fn a_token_verified_by_one_vm_is_not_verified_again_by_another() {
    let doc = corp_only(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}));
    let mut a = Filter::new(doc.clone());
    let mut b = Filter::sharing(&a, doc);
    let token = good().sign();
    let expected = || allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
    let (first, events) = a.decide(&get("/api").bearer(&token));
    assert_eq!((first, events), (expected(), vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed]));
    let (other, events) = b.decide(&get("/api").bearer(&token));
    assert_eq!((other, events), (expected(), vec![CacheMiss(0), SharedHit(0), Verified(0), Allowed]));
    assert_eq!((a.crypto_calls(), b.crypto_calls()), (1, 0));
    // The shared hit went into b's own cache: no shared read the next time.
    let (again, events) = b.decide(&get("/api").bearer(&token));
    assert_eq!((again, events), (expected(), vec![CacheHit(0), Verified(0), Allowed]));
}

#[test]
fn a_shared_hit_skips_only_the_signature() {
    let doc = corp_only(json!({"required_scopes": ["read"]}));
    let mut a = Filter::new(doc.clone());
    let token = good().claim("scope", json!("read")).sign();
    assert!(matches!(a.decide(&get("/api").bearer(&token)).0, Decision::Allow(_)));
    // Too late for this token: its time is checked before the record is even asked.
    let mut b = Filter::sharing(&a, doc.clone());
    let (late, events) = b.decide(&get("/api").bearer(&token).at(NOW + 3600 + 61));
    let e = jwt(JwtError::Expired);
    assert_eq!(
        (late, events),
        (refusal(401, "invalid_token", "jwt_expired"), vec![CacheMiss(0), Refused(0, e), Denied(e)])
    );
    // Another VM whose rule wants another scope: the claims are checked after the shared hit.
    let stricter = corp_only(json!({"required_scopes": ["write"]}));
    let mut c = Filter::sharing(&a, stricter);
    // (Its config differs, so its local keys are another key set: give it a's.)
    c.keys = std::mem::take(&mut b.keys);
    let (refused, events) = c.decide(&get("/api").bearer(&token));
    let e = jwt(JwtError::InsufficientScope);
    assert_eq!(refused, refusal(403, "insufficient_scope", "jwt_insufficient_scope"));
    assert_eq!(events, vec![CacheMiss(0), SharedHit(0), Refused(0, e), Denied(e)]);
    assert_eq!((b.crypto_calls(), c.crypto_calls()), (0, 0));
}

#[test]
fn a_forged_signature_is_refused_while_the_genuine_token_is_recorded() {
    let doc = corp_only(json!({}));
    let mut a = Filter::new(doc.clone());
    let mut b = Filter::sharing(&a, doc);
    let genuine = good().sign();
    assert!(matches!(a.decide(&get("/api").bearer(&genuine)).0, Decision::Allow(_)));
    // The same header and payload with another signature is another token.
    let forged = mint::tamper(&genuine);
    let (decision, events) = b.decide(&get("/api").bearer(&forged));
    let e = jwt(JwtError::BadSignature);
    assert_eq!(decision, refusal(401, "invalid_token", "jwt_bad_signature"));
    assert_eq!(
        (events, b.crypto_calls()),
        (vec![CacheMiss(0), SignatureChecked(0), Refused(0, e), Denied(e)], 1)
    );
    let (genuine_on_b, events) = b.decide(&get("/api").bearer(&genuine));
    assert!(matches!(genuine_on_b, Decision::Allow(_)));
    assert_eq!(events, vec![CacheMiss(0), SharedHit(0), Verified(0), Allowed]);
}

#[test]
fn a_token_recorded_under_older_keys_is_verified_with_the_new_ones() {
    let mut a = Filter::new(corp_only(json!({})));
    a.unknown_kid("corp", UnknownKid::Refuse);
    let token = good().sign();
    assert!(matches!(a.decide(&get("/api").bearer(&token)).0, Decision::Allow(_)));
    // b has adopted the next key set, which no longer has rsa-a: the record does not vouch for
    // the token, b's keys refuse it.
    let mut b = Filter::sharing(&a, corp_only(json!({})));
    let without_rsa = mint::jwks(&[(TestKey::P256A, "ec-a")]);
    let next_id = KeySetId::remote("corp", "idp/jwks.json", CryptoMode::Auto, without_rsa.as_bytes());
    let next = KeySet::parse(without_rsa.as_bytes()).unwrap().keys;
    b.set_keys("corp", Keys::Ready(next, UnknownKid::Refuse, false, next_id));
    let (decision, events) = b.decide(&get("/api").bearer(&token));
    let e = jwt(JwtError::UnknownKid);
    assert_eq!(decision, refusal(401, "invalid_token", "jwt_unknown_kid"));
    assert_eq!(events, vec![CacheMiss(0), Refused(0, e), Denied(e)]);
    // Even the same keys under another identity (a re-published set) verify afresh.
    let mut c = Filter::sharing(&a, corp_only(json!({})));
    let same = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
    c.set_keys("corp", Keys::Ready(same, UnknownKid::Refuse, false, next_id));
    let (decision, events) = c.decide(&get("/api").bearer(&token));
    assert!(matches!(decision, Decision::Allow(_)));
    assert_eq!(
        (events, c.crypto_calls()),
        (vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed], 1)
    );
}

#[test]
fn a_zero_shared_cache_size_shares_nothing() {
    let doc = corp_only(json!({"jwt_cache_config": {"shared_cache_size": 0}}));
    let mut a = Filter::new(doc.clone());
    let mut b = Filter::sharing(&a, doc);
    let token = good().sign();
    for f in [&mut a, &mut b] {
        let (decision, events) = f.decide(&get("/api").bearer(&token));
        assert!(matches!(decision, Decision::Allow(_)));
        assert_eq!(
            (events, f.crypto_calls()),
            (vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed], 1)
        );
    }
    assert!(a.store.names().is_empty());
}
