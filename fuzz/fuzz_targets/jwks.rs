//! A JWKS document as a fetch returns it: parsing, key selection for every algorithm and kid, and
//! the seed tokens verified against whatever keys came out (odd moduli, exponents and points
//! reach the signature code this way).
#![no_main]

use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::jwks::KeySet;
use jwt_authn_wasm::policy::Policy;
use jwt_authn_wasm::verify;
use jwt_authn_wasm_fuzz::{NOW, TOKENS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = KeySet::parse(data) else { return };
    let keys = &parsed.keys;
    assert!(!keys.is_empty());
    // Skips are reported in document order, each index at most once.
    assert!(parsed.skipped.windows(2).all(|w| w[0].index < w[1].index));
    for key in keys.iter() {
        if let Some(kid) = key.kid.as_deref() {
            assert!(keys.contains_kid(kid));
        }
        for alg in Algorithm::ALL {
            if let Ok(candidates) = keys.candidates(alg, key.kid.as_deref()) {
                assert!(candidates.iter().all(|k| k.fits(alg) && (key.kid.is_none() || k.kid == key.kid)));
            }
        }
    }
    let policy = Policy::default();
    for token in TOKENS {
        let _ = verify::verify(token, keys, &policy, NOW);
    }
});
