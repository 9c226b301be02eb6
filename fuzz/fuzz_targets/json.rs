//! The strict JSON object parser behind token headers, claim sets and JWKS documents, at several
//! depth limits, against serde_json as the reference.
#![no_main]

use jwt_authn_wasm::json::{self, StrictJsonError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Below, at and above the limit tokens use; all under serde_json's own recursion limit (128).
const DEPTHS: [usize; 5] = [0, 1, 2, json::MAX_DEPTH, 64];

fuzz_target!(|data: &[u8]| {
    let lax = serde_json::from_slice::<Value>(data);
    let mut accepted_at = None;
    for depth in DEPTHS {
        match json::parse_object(data, depth) {
            Ok(map) => {
                // Strict accepts only what serde_json accepts, with the same value.
                assert_eq!(lax.as_ref().ok(), Some(&Value::Object(map)));
                accepted_at.get_or_insert(depth);
            }
            Err(e) => {
                // A bigger depth limit never turns an accepted document into a refused one.
                assert!(accepted_at.is_none(), "accepted at depth {accepted_at:?}, then {e:?} at {depth}");
                // "Invalid" means serde_json refuses it too, or it is JSON but not an object. (The
                // other errors may be met before a syntax error, so nothing more holds.)
                if e == StrictJsonError::Invalid {
                    assert!(!matches!(lax, Ok(Value::Object(_))), "an object refused as invalid");
                }
            }
        }
    }
});
