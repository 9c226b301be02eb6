//! The process-wide record of verified tokens end to end: real Envoy with two workers (two wasm
//! VMs), the JWKS server under the test's control. A token one worker verified is accepted by the
//! other without a second signature check; the record never vouches for a token under keys it was
//! not verified with, nor for another token with the same header and payload.

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use keys_common::{VmWatch, published_after};
use serde_json::json;
use std::time::Duration;
use support::config::{self, Filter, corp_jwks, corp_token};
use support::mint::{self, TestKey};
use support::{Stack, wait_until};

const COUNTERS: &str = "wasmcustom.jwt_authn_wasm.provider.corp.";
/// Requests without a token (`settle` sends them).
const MISSING: &str = "wasmcustom.jwt_authn_wasm.denied.missing";

/// The provider's counter as `/stats` shows it, once every count of what was sent has arrived.
fn counter(stack: &Stack, name: &str) -> u64 {
    settle(stack);
    stack.envoy.stat(&format!("{COUNTERS}{name}")).unwrap_or(0)
}

/// Per-request counts reach `/stats` on their VM's next tick (100 ms), everything the VM counted
/// since its tick before at once. So once requests sent to each worker after the ones counted have
/// their own counts in `/stats` (requests without a token: `denied.missing`, no provider counter),
/// every earlier count is there too.
fn settle(stack: &Stack) {
    let markers = || stack.envoy.stat(MISSING).unwrap_or(0);
    let before = markers();
    let sent = stack.on_both_workers(|| assert_eq!(stack.get("/settle", None).status, 401));
    let counted = wait_until(Duration::from_secs(10), || markers() >= before + sent as u64);
    assert!(counted, "{sent} requests without a token not counted: {} -> {}", before, markers());
}

/// Signature checks and shared hits so far.
fn verified_and_shared(stack: &Stack) -> (u64, u64) {
    (counter(stack, "jwt_verified"), counter(stack, "jwt_shared_hit"))
}

/// (a) The first worker to see a token verifies it; the other finds it in the shared record (one
/// shared hit), then in its own cache. Counted over both workers: one signature check per token.
#[test]
fn a_token_verified_on_one_worker_is_accepted_on_the_other_without_a_second_check() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &corp_jwks(), 2) else { return };
    let vms = VmWatch::new(&stack.envoy);
    // Keys first (the first request may be held for them), with a token of its own.
    let warm = corp_token("ES256", TestKey::P256A, "ec-a").claim("jti", json!("warm")).sign();
    assert_eq!(stack.get("/warm", Some(&warm)).status, 200, "{}", stack.envoy.log());
    let before = verified_and_shared(&stack);
    let hits_before = counter(&stack, "jwt_cache_hit");

    let token = corp_token("RS256", TestKey::RsaA, "rsa-a").claim("jti", json!("shared")).sign();
    let mut sent = 0u64;
    let rounds = stack.on_both_workers(|| {
        for _ in 0..4 {
            let r = stack.get("/api", Some(&token));
            assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
            sent += 1;
        }
    });
    let (verified, shared) = verified_and_shared(&stack);
    eprintln!(
        "{sent} requests in {rounds} round(s) over both workers: {} verification(s), {} shared hit(s)",
        verified - before.0,
        shared - before.1
    );
    assert_eq!(verified - before.0, 1, "one signature check for the whole Envoy");
    assert_eq!(shared - before.1, 1, "the other worker's first sighting is a shared hit");
    assert_eq!(
        counter(&stack, "jwt_cache_hit") - hits_before,
        sent - 2,
        "every later request: its worker's cache"
    );
    vms.assert_unbroken(&stack.envoy);
}

/// (b) After a key-set change, a token verified (and recorded) under the old set whose key is
/// gone is refused on every worker; a token whose key stayed is verified once more under the new
/// set (the change retired its entry) and then shared again.
#[test]
fn after_a_key_set_change_a_token_whose_key_is_gone_is_refused() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &corp_jwks(), 2) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let (gone, kept) = (
        corp_token("RS256", TestKey::RsaA, "rsa-a").claim("jti", json!("gone")).sign(),
        corp_token("ES256", TestKey::P256A, "ec-a").claim("jti", json!("kept")).sign(),
    );
    for token in [&gone, &kept] {
        stack.on_both_workers(|| {
            let r = stack.get("/warm", Some(token));
            assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
        });
    }
    assert_eq!(verified_and_shared(&stack), (2, 2), "both tokens verified once, shared once");

    // The IdP replaces rsa-a with rsa-b; the first rsa-b token fetches the new set (unknown-kid
    // refetch: cache_duration is 600 s, so no other refresh comes during the test), and each
    // worker adopts it on its next tick: until then `gone` still passes there from its cache
    // (no signature check, no shared hit), never after.
    let old_answers =
        stack.jwks.switch_body(&mint::jwks(&[(TestKey::P256A, "ec-a"), (TestKey::RsaB, "rsa-b")]));
    let new = corp_token("RS256", TestKey::RsaB, "rsa-b").claim("jti", json!("new")).sign();
    let r = stack.get("/new", Some(&new));
    assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
    let published = published_after(&stack.envoy, stack.jwks.answered_at()[old_answers]);
    let request = || stack.get("/gone", Some(&gone));
    let adopted = (401, Some("jwt_unknown_kid"));
    stack.envoy.until_every_worker_answers(published, request, (200, None), adopted);

    let before = verified_and_shared(&stack);
    stack.on_both_workers(|| {
        let r = stack.get("/gone", Some(&gone));
        assert_eq!((r.status, r.body.as_str()), (401, "jwt_unknown_kid"), "{}", stack.envoy.log());
    });
    assert_eq!(verified_and_shared(&stack), before, "no key to try, and never a shared hit");
    stack.on_both_workers(|| assert_eq!(stack.get("/kept", Some(&kept)).status, 200));
    let after = verified_and_shared(&stack);
    assert_eq!(after.0 - before.0, 1, "the kept token is verified once under the new set");
    assert_eq!(after.1 - before.1, 1, "and shared with the other worker");
    vms.assert_unbroken(&stack.envoy);
}

/// (c) While a genuine token is in the shared record (both workers accepted it), tokens with its
/// header (same `kid`) and payload but another signature are refused on every worker: a flipped
/// bit, and a valid signature by another key.
#[test]
fn a_forged_signature_is_refused_while_the_genuine_token_is_recorded() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &corp_jwks(), 2) else { return };
    let vms = VmWatch::new(&stack.envoy);
    let claims = corp_token("RS256", TestKey::RsaA, "rsa-a").claim("jti", json!("genuine"));
    let genuine = claims.sign();
    let other_key = mint::sign(&claims.header_json(), &claims.payload_json(), TestKey::RsaB.key(), "RS256");
    let (prefix, _) = genuine.rsplit_once('.').unwrap();
    assert!(other_key.starts_with(&format!("{prefix}.")), "same header and payload");
    stack.on_both_workers(|| {
        let r = stack.get("/genuine", Some(&genuine));
        assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
    });
    let shared = verified_and_shared(&stack).1;
    assert_eq!(shared, 1, "the genuine token is in the shared record");
    for forged in [mint::tamper(&genuine), other_key] {
        stack.on_both_workers(|| {
            for _ in 0..2 {
                let r = stack.get("/forged", Some(&forged));
                assert_eq!((r.status, r.body.as_str()), (401, "jwt_bad_signature"));
            }
        });
    }
    assert_eq!(verified_and_shared(&stack).1, shared, "no shared hit for a forged token");
    assert_eq!(stack.get("/genuine", Some(&genuine)).status, 200);
    vms.assert_unbroken(&stack.envoy);
}
