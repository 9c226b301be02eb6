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
                let strict = Value::Object(map);
                if !names_raw_value_token(&strict) {
                    assert_eq!(lax.as_ref().ok(), Some(&strict));
                }
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

/// serde_json's `raw_value` feature (which the crate enables) gives a member with this name a
/// meaning of its own when serde_json builds a `Value`: it parses the member's string as JSON. Plain
/// JSON gives the name no meaning, and neither does the strict parser (it builds its values
/// itself), so serde_json is no reference for such documents. (Found by this target.)
fn names_raw_value_token(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.contains_key("$serde_json::private::RawValue") || map.values().any(names_raw_value_token)
        }
        Value::Array(items) => items.iter().any(names_raw_value_token),
        _ => false,
    }
}
