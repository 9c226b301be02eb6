//! A token as a client sends it: compact JWS decoding, the claims of its payload, and full
//! verification against the demo keys at a fixed clock, under each fixture policy.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_authn_wasm::alg::AlgorithmSet;
use jwt_authn_wasm::claims::Claims;
use jwt_authn_wasm::token;
use jwt_authn_wasm::verify;
use jwt_authn_wasm_fuzz::{NOW, keys, policies};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach the filter as strings.
    let Ok(token) = std::str::from_utf8(data) else { return };
    if let Ok(jws) = token::decode_jws(token, AlgorithmSet::all(), usize::MAX) {
        // The signature covers exactly the first two segments as received, and base64url is
        // canonical: one encoding per byte string, so a signed token cannot be re-spelled.
        assert!(token.starts_with(jws.signing_input));
        assert_eq!(token.get(jws.signing_input.len()..jws.signing_input.len() + 1), Some("."));
        assert_eq!(URL_SAFE_NO_PAD.encode(&jws.payload), jws.payload_b64);
        assert!(jws.signing_input.ends_with(jws.payload_b64));
        if let Ok(claims) = Claims::parse(&jws.payload) {
            for policy in policies() {
                let _ = claims.check(policy, NOW);
            }
        }
    }
    for policy in policies() {
        if let Ok(verified) = verify::verify(token, keys(), policy, NOW) {
            // Whatever passes has passed every check on its own.
            assert_eq!(verified.claims.check(policy, NOW), Ok(()));
            assert!(keys().candidates(verified.header.alg, verified.header.kid.as_deref()).is_ok());
        }
    }
});
