//! DPoP: a proof as a client sends it (`binding::proof::verify_proof` against RFC 9449's Figure 13
//! request), a URI as a proof's `htu` names it (`uri::HttpUri::parse`), and a replay-record bucket
//! as another worker, or another module version, left it (`binding::replay`). Input: a selector
//! byte, then the value.
#![no_main]

use jwt_authn_wasm::binding::memo::ProofMemo;
use jwt_authn_wasm::binding::proof::{ProofRequest, VerifiedProof, verify_proof};
use jwt_authn_wasm::binding::replay::{ReplayRecord, SEED_BYTES};
use jwt_authn_wasm::binding::thumbprint::access_token_hash;
use jwt_authn_wasm::binding::BindingError;
use jwt_authn_wasm::claims::NumericDate;
use jwt_authn_wasm::config::{BindingMode, DpopConfig};
use jwt_authn_wasm::crypto::RustCrypto;
use jwt_authn_wasm::namespace::NAMESPACE;
use jwt_authn_wasm::shared_record::{MemStore, Store};
use jwt_authn_wasm::uri::HttpUri;
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// One memo for every input, as one VM's for every request.
    static MEMO: ProofMemo = ProofMemo::default();
}

/// RFC 9449 Figure 13's request: its proof (the seed) verifies at this clock.
const NOW: i64 = 1_562_262_618;
const TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const HTU: &str = "https://resource.example.org/protectedresource";

fuzz_target!(|data: &[u8]| {
    let Some((selector, value)) = data.split_first() else { return };
    match selector % 3 {
        0 => proof(value),
        1 => uri(value),
        _ => bucket(value),
    }
});

fn config() -> DpopConfig {
    DpopConfig { mode: BindingMode::Allowed, ..DpopConfig::default() }
}

/// Whatever the header value, an answer comes out; a proof that passes names the request and was
/// made within the window, and passes again (the check is a pure function).
fn proof(value: &[u8]) {
    let Ok(text) = std::str::from_utf8(value) else { return };
    let target = HttpUri::parse(HTU);
    let headers = [text];
    let request =
        ProofRequest { headers: &headers, method: "GET", target: target.as_ref(), access_token: TOKEN, now: NOW };
    let config = config();
    let outcome = verify_proof(&RustCrypto, &ProofMemo::default(), &request, &config);
    if let Ok(verified) = &outcome {
        assert!(!verified.jti.is_empty() && !text.contains(','));
        assert!(verified.iat.floor() >= NOW - 60 && verified.iat.ceil() <= NOW + 10);
    }
    // A memo that lives across inputs, as a VM's across requests: what it kept from earlier
    // proofs never changes a verdict.
    MEMO.with(|memo| assert_eq!(verify_proof(&RustCrypto, memo, &request, &config), outcome));
}

/// Normalising twice changes nothing, and what parses prints as an absolute http(s) URI.
fn uri(value: &[u8]) {
    let Ok(text) = std::str::from_utf8(value) else { return };
    if let Some(uri) = HttpUri::parse(text) {
        let printed = uri.to_string();
        assert!(printed.starts_with("http://") || printed.starts_with("https://"), "{printed}");
        assert_eq!(HttpUri::parse(&printed).as_ref(), Some(&uri), "{printed}");
    }
}

/// From any bucket value, recording a proof either refuses it or records it so that it is
/// refused as replayed next time; the bucket stays readable either way.
fn bucket(value: &[u8]) {
    let store = MemStore::default();
    store.put(&format!("{NAMESPACE}/dpop-jti/corp/1/0"), value);
    let config = DpopConfig { replay_cache_size: 16, ..config() };
    let record = ReplayRecord::new(&store, &[1; SEED_BYTES], [("corp", &config)]);
    let proof = VerifiedProof {
        jkt: access_token_hash("key"),
        jti: "jti".into(),
        iat: NumericDate::from_secs(NOW),
        nonce: None,
    };
    let clock = || NOW as u64 * 1000;
    match record.record(0, &proof, &clock) {
        Ok(()) => assert_eq!(record.record(0, &proof, &clock), Err(BindingError::Replayed)),
        Err(BindingError::Replayed | BindingError::ReplayFull | BindingError::ReplayUnavailable) => {}
        Err(other) => panic!("{other}"),
    }
    assert!(store.get(&format!("{NAMESPACE}/dpop-jti/corp/1/0")).1.is_some());
}
