//! One request's binding checks as `authn` runs them, over an in-memory host: the proof checked,
//! the decision, the proof recorded last (once), the certificate read at most once.

use super::*;
use crate::binding::BindingError::*;
use crate::binding::nonce::{KEY_BYTES, Nonces};
use crate::binding::replay::{ReplayRecord, SEED_BYTES, SETTLE_MS};
use crate::binding::testing::mint::TestKey;
use crate::binding::testing::{NOW, TOKEN, proof};
use crate::binding::thumbprint::{Thumbprint, jwk_thumbprint};
use crate::config::{DpopConfig, NonceConfig};
use crate::crypto::RustCrypto;
use crate::jwks::Jwk;
use crate::shared_record::MemStore;
use serde_json::{Value, json};
use std::cell::Cell;

const CERT_HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// One worker's view of the proxy: its own replay record over the shared store, the nonces, a
/// connection with `peer` as its client certificate, and how often that was read.
struct Host<'s> {
    replay: ReplayRecord<&'s MemStore>,
    nonces: Option<Nonces>,
    peer: Option<&'static str>,
    peer_reads: Cell<usize>,
    memo: ProofMemo,
}

impl BindingHost for Host<'_> {
    fn nonces(&self, _: ProviderId) -> Option<&Nonces> {
        self.nonces.as_ref()
    }

    fn peer_certificate(&self) -> Option<String> {
        self.peer_reads.set(self.peer_reads.get() + 1);
        self.peer.map(str::to_owned)
    }

    fn record(&self, provider: ProviderId, proof: &VerifiedProof) -> Result<(), BindingError> {
        self.replay.record(provider, proof, &|| NOW as u64 * 1000)
    }

    fn memo(&self) -> &ProofMemo {
        &self.memo
    }
}

fn binding(dpop: BindingMode, certificate: BindingMode) -> TokenBinding {
    let nonce = None;
    TokenBinding { dpop: DpopConfig { mode: dpop, nonce, ..DpopConfig::default() }, certificate }
}

/// Workers of one Envoy: one store, the record prepared by the first.
fn workers<'s>(store: &'s MemStore, binding: &TokenBinding, peer: Option<&'static str>) -> [Host<'s>; 2] {
    let hosts = [1u8, 2].map(|seed| Host {
        replay: ReplayRecord::new(store, &[seed; SEED_BYTES], [("corp", &binding.dpop)]),
        nonces: None,
        peer,
        peer_reads: Cell::new(0),
        memo: ProofMemo::default(),
    });
    hosts[0].replay.prepare(0, &|| NOW as u64 * 1000 - SETTLE_MS);
    hosts
}

fn thumbprint_of(key: TestKey) -> Thumbprint {
    jwk_thumbprint(&Jwk::from_object(key.jwk("k", None).as_object().unwrap()).unwrap().key)
}

/// The test minter's thumbprints (what tests put in `cnf.jkt`) are RFC 7638's, as this module
/// computes them (a second implementation, by hand).
#[test]
fn the_minters_thumbprints_agree() {
    for key in [TestKey::RsaA, TestKey::Rsa3072, TestKey::P256A, TestKey::P384, TestKey::Ed25519] {
        assert_eq!(key.thumbprint(), thumbprint_of(key).to_b64(), "{key:?}");
    }
}

fn claims(cnf: Value) -> Claims {
    Claims::parse(json!({"sub": "alice", "cnf": cnf}).to_string().as_bytes()).unwrap()
}

/// `GET https://api.example/v1/items` (the proofs' `htu`) with these `DPoP` headers.
fn headers(proofs: &[&'static str]) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "api.example"),
        (":path", "/v1/items?x=1"),
    ];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    headers
}

/// The checks of one request presenting `TOKEN` (with `claims`) as `scheme`, then the record.
fn request(
    host: &Host<'_>,
    binding: &TokenBinding,
    scheme: Scheme,
    claims: &Claims,
    proofs: &[&'static str],
) -> Result<Bindings, BindingError> {
    let headers = headers(proofs);
    let parts = RequestParts { headers: &headers, now: NOW };
    let token = Presentation { token: TOKEN, scheme, claims };
    let mut bindings = Bindings::default();
    bindings.check(host, &RustCrypto, 0, binding, &token, &parts)?;
    bindings.record(host).map_err(|(_, e)| e)?;
    Ok(bindings)
}

fn leak(proof: String) -> &'static str {
    Box::leak(proof.into_boxed_str())
}

#[test]
fn a_dpop_request_checked_and_recorded_once_per_envoy() {
    let binding = binding(BindingMode::Required, BindingMode::Disabled);
    let claims = claims(json!({"jkt": thumbprint_of(TestKey::P256A).to_b64()}));
    let store = MemStore::default();
    let [first, second] = workers(&store, &binding, None);
    let genuine = leak(proof(TestKey::P256A).sign());
    assert!(request(&first, &binding, Scheme::Dpop, &claims, &[genuine]).is_ok());
    assert_eq!(request(&first, &binding, Scheme::Dpop, &claims, &[genuine]).err(), Some(Replayed));
    assert_eq!(
        request(&second, &binding, Scheme::Dpop, &claims, &[genuine]).err(),
        Some(Replayed),
        "another worker"
    );
    // A new proof by the same key passes; one by another key (a stolen token) does not.
    let fresh = leak(proof(TestKey::P256A).claim("jti", json!("another")).sign());
    assert!(request(&second, &binding, Scheme::Dpop, &claims, &[fresh]).is_ok());
    let thief = leak(proof(TestKey::Ed25519).claim("jti", json!("thief")).sign());
    assert_eq!(request(&second, &binding, Scheme::Dpop, &claims, &[thief]).err(), Some(JktMismatch));
    // No proof, two proofs, the token sent as Bearer.
    assert_eq!(request(&second, &binding, Scheme::Dpop, &claims, &[]).err(), Some(ProofMissing));
    assert_eq!(request(&second, &binding, Scheme::Dpop, &claims, &[fresh, fresh]).err(), Some(ProofRepeated));
    assert_eq!(request(&second, &binding, Scheme::Bearer, &claims, &[]).err(), Some(Downgrade));
}

#[test]
fn proofs_wait_for_the_record_and_are_recorded_once() {
    let binding = binding(BindingMode::Allowed, BindingMode::Disabled);
    let claims = claims(json!({"jkt": thumbprint_of(TestKey::P256A).to_b64()}));
    let store = MemStore::default();
    let [host, _] = workers(&store, &binding, None);
    let genuine = leak(proof(TestKey::P256A).sign());
    let headers = headers(&[genuine]);
    let parts = RequestParts { headers: &headers, now: NOW };
    let token = Presentation { token: TOKEN, scheme: Scheme::Dpop, claims: &claims };
    // A request asking its provider twice (`provider_and_audiences`) and held for keys: its
    // checks record nothing. Decided again, it records the proof once, which then is used up.
    let decide = || {
        let mut bindings = Bindings::default();
        bindings.check(&host, &RustCrypto, 0, &binding, &token, &parts).map(|()| bindings)
    };
    for _ in 0..2 {
        let mut bindings = decide().unwrap();
        bindings.check(&host, &RustCrypto, 0, &binding, &token, &parts).unwrap();
        assert_eq!(bindings.proofs.len(), 1);
    }
    assert_eq!(decide().unwrap().record(&host), Ok(()));
    assert_eq!(decide().unwrap().record(&host), Err((0, Replayed)));
}

#[test]
fn the_certificate_is_read_once_and_only_for_certificate_binding() {
    let x5t = Thumbprint::from_hex(CERT_HEX).unwrap().to_b64();
    let store = MemStore::default();
    let bound = claims(json!({"x5t#S256": x5t}));
    let off = binding(BindingMode::Disabled, BindingMode::Disabled);
    let on = binding(BindingMode::Disabled, BindingMode::Allowed);
    let [with_cert, _] = workers(&store, &on, Some(CERT_HEX));
    let headers = headers(&[]);
    let parts = RequestParts { headers: &headers, now: NOW };
    let token = Presentation { token: TOKEN, scheme: Scheme::Bearer, claims: &bound };
    let mut bindings = Bindings::default();
    bindings.check(&with_cert, &RustCrypto, 0, &off, &token, &parts).unwrap();
    assert_eq!(with_cert.peer_reads.get(), 0, "no certificate binding, no host call");
    bindings.check(&with_cert, &RustCrypto, 0, &on, &token, &parts).unwrap();
    bindings.check(&with_cert, &RustCrypto, 0, &on, &token, &parts).unwrap();
    assert_eq!(with_cert.peer_reads.get(), 1, "read once per request");
    let [without_cert, _] = workers(&store, &on, None);
    assert_eq!(request(&without_cert, &on, Scheme::Bearer, &bound, &[]).err(), Some(CertificateMissing));
    let [other_cert, _] =
        workers(&store, &on, Some("60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"));
    assert_eq!(request(&other_cert, &on, Scheme::Bearer, &bound, &[]).err(), Some(CertificateMismatch));
}

#[test]
fn nonces_are_checked_and_a_new_one_offered() {
    let step = NonceConfig { step_seconds: 60 };
    let mut binding = binding(BindingMode::Required, BindingMode::Disabled);
    binding.dpop.nonce = Some(step);
    let claims = claims(json!({"jkt": thumbprint_of(TestKey::P256A).to_b64()}));
    let store = MemStore::default();
    let [mut host, _] = workers(&store, &binding, None);
    let without = leak(proof(TestKey::P256A).sign());
    assert_eq!(request(&host, &binding, Scheme::Dpop, &claims, &[without]).err(), Some(NonceUnavailable));
    host.nonces = Nonces::from_shared(&[9; KEY_BYTES], &step);
    let nonces = host.nonces.clone().unwrap();
    assert_eq!(request(&host, &binding, Scheme::Dpop, &claims, &[without]).err(), Some(NonceMissing));
    let current = leak(proof(TestKey::P256A).claim("nonce", json!(nonces.current(NOW))).sign());
    assert_eq!(request(&host, &binding, Scheme::Dpop, &claims, &[current]).unwrap().offer_nonce(), None);
    let previous = nonces.current(NOW - 60);
    let old = leak(proof(TestKey::P256A).claim("jti", json!("j2")).claim("nonce", json!(previous)).sign());
    let offered = request(&host, &binding, Scheme::Dpop, &claims, &[old]).unwrap();
    assert_eq!(offered.offer_nonce(), Some(nonces.current(NOW).as_str()));
}

#[test]
fn the_challenger_is_the_first_provider_asked_that_accepts_dpop() {
    let mut bindings = Bindings::default();
    bindings.asked(0, &binding(BindingMode::Disabled, BindingMode::Allowed));
    assert_eq!(bindings.challenger(), None);
    bindings.asked(1, &binding(BindingMode::Allowed, BindingMode::Disabled));
    bindings.asked(2, &binding(BindingMode::Required, BindingMode::Disabled));
    assert_eq!(bindings.challenger(), Some(1));
}
