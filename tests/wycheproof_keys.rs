//! Wycheproof `json_web_key_test.json` through the public API of `jwks` and `crypto`: key sets
//! that must be refused (or, tc 5, accepted). The signature suites, with keys from their JWKs, are
//! in `wycheproof_signatures.rs`. Run with `-- --nocapture` to see the counts.

#[path = "common/wycheproof.rs"]
mod wycheproof;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::crypto::{Crypto, RustCrypto};
use jwt_authn_wasm::jwks::{Jwk, JwksError, KeySet, KeySkip};
use serde_json::Value;
use wycheproof::{Expected, Tally};

/// Verifies a compact JWS against a JWKS document the way the filter will: parse the set,
/// pick candidates by the header's `alg` and `kid`, try each. `Err` says why it was refused.
fn verify_compact(jwks: &[u8], jws: &str) -> Result<(), String> {
    let set = KeySet::parse(jwks).map_err(|e| e.to_string())?.keys;
    let [header, payload, signature] = jws.split('.').collect::<Vec<_>>()[..] else {
        return Err("not three segments".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| format!("base64url: {e}"));
    let header_json: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let alg_name = header_json["alg"].as_str().unwrap_or_default();
    let alg = Algorithm::from_name(alg_name).ok_or(format!("alg {alg_name} not supported"))?;
    let kid = header_json.get("kid").and_then(Value::as_str);
    let candidates = set.candidates(alg, kid).map_err(|e| e.reason().to_owned())?;
    let signature = decode(signature)?;
    let input = format!("{header}.{payload}");
    let verifies = |jwk: &Jwk| RustCrypto.verify(alg, jwk, input.as_bytes(), &signature).is_ok();
    if candidates.iter().any(|jwk| verifies(jwk)) { Ok(()) } else { Err("jwt_bad_signature".into()) }
}

/// Why each in-scope case of `json_web_key_test.json` must be refused (tc 5 is the one valid
/// token: a 2048-bit RS256 key, accepted).
const JWK_REFUSALS: [(u64, &str); 10] = [
    (6, "use_not_sig"),           // RSA1_5, use: enc
    (7, "rsa_roca_vulnerable"),   // ROCA fingerprint (the key is 2049 bits, so size alone passes)
    (8, "rsa_modulus_too_small"), // 1024 bits
    (9, "rsa_bad_exponent"),      // e = 1
    (19, "unknown_alg"),          // ES521 on a P-256 key
    (20, "unknown_alg"),          // ES224 on a P-256 key
    (21, "use_not_sig"),          // ES256 key with use: enc
    (22, "invalid_point"),        // y modified: off the curve
    (23, "bad_key_length"),       // P-256 coordinates under crv P-384
    (24, "missing_member"),       // kty RSA with EC members: no n
];

fn has_oct_key(set: &Value) -> bool {
    set["keys"].as_array().unwrap().iter().any(|k| k["kty"] == "oct")
}

#[test]
fn json_web_key_test() {
    let vectors = wycheproof::load("json_web_key_test.json");
    let mut in_scope = Tally::default();
    let mut out_of_scope = Tally::default();
    let mut out_of_scope_groups = Vec::new();
    for group in wycheproof::groups(&vectors) {
        // The JWKS a verifier fetches is the public one; the symmetric groups only have "private".
        let set = if group["public"].is_object() { &group["public"] } else { &group["private"] };
        let jwks = serde_json::to_vec(set).unwrap();
        let oct = has_oct_key(set);
        if oct {
            let ids: Vec<String> =
                group["tests"].as_array().unwrap().iter().map(|t| t["tcId"].to_string()).collect();
            out_of_scope_groups.push(format!(
                "{} (tc {})",
                group["comment"].as_str().unwrap(),
                ids.join(",")
            ));
        } else {
            assert_private_set_refused(&group["private"]);
        }
        for test in group["tests"].as_array().unwrap() {
            let tc = test["tcId"].as_u64().unwrap();
            let expected = Expected::of(test);
            let outcome = verify_compact(&jwks, test["jws"].as_str().unwrap());
            if oct {
                // HMAC/AES keys are out of scope: whatever Wycheproof expects for a MAC, the set's
                // shared secrets are never used, so every one of these tokens is refused. In tc 1
                // (MixedKeySet) the EC key is kept beside the skipped oct key; its HS256 token is
                // refused for its alg, so the set is usable but the token is not.
                let why = outcome.as_ref().expect_err("an oct-key token was accepted");
                assert!(why.contains("symmetric_key") || why.contains("alg HS"), "tc {tc}: {why}");
                out_of_scope.record(expected, false);
                continue;
            }
            match JWK_REFUSALS.iter().find(|(id, _)| *id == tc) {
                None => {
                    assert!(expected.must_accept(), "tc {tc} has no stated refusal");
                    assert_eq!(outcome, Ok(()), "tc {tc}");
                }
                Some((_, reason)) => {
                    assert!(!expected.must_accept(), "tc {tc}");
                    let why = outcome.expect_err("refused");
                    assert!(why.contains(reason), "tc {tc}: expected {reason}, got {why}");
                }
            }
            in_scope.record(expected, expected.must_accept());
        }
    }
    println!("json_web_key_test.json, RSA and EC groups: {in_scope}");
    println!(
        "json_web_key_test.json, oct (HMAC/AES) groups, out of scope and all refused: {out_of_scope}; groups: {}",
        out_of_scope_groups.join(", ")
    );
    assert_eq!((in_scope.accepted, in_scope.refused), (1, JWK_REFUSALS.len()));
    assert_eq!(out_of_scope.refused, 15);
}

/// The "private" set of an RSA/EC group carries `d` (and the CRT members): every key is skipped,
/// because an identity provider that publishes private keys is not trusted.
fn assert_private_set_refused(private: &Value) {
    let Err(JwksError::NoUsableKey(skipped)) = KeySet::parse(&serde_json::to_vec(private).unwrap()) else {
        panic!("a private key set was accepted: {private}");
    };
    assert!(skipped.iter().all(|s| s.reason == KeySkip::PrivateKeyMaterial), "{skipped:?}");
}
