//! Wycheproof vectors through the public API of `jwks` and `crypto`:
//! - `json_web_key_test.json`: key sets that must be refused (or, tc 5, accepted);
//! - `ecdsa_secp256r1_sha256_p1363_test.json` as ES256 (raw R||S, as in a JWS);
//! - `rsa_signature_{2048,4096}_sha256_test.json` as RS256.
//!
//! Keys always enter through `KeySet::parse` (the vectors carry JWKs), so the key parser and the
//! signature backend are tested together. Run with `-- --nocapture` to see the per-file counts.

#[path = "common/wycheproof.rs"]
mod wycheproof;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::crypto::{Crypto, RustCrypto};
use jwt_authn_wasm::jwks::{Jwk, JwksError, KeySet, KeySkip, PublicKey};
use serde_json::{Value, json};
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
    let Some(vectors) = wycheproof::load("json_web_key_test.json") else {
        return;
    };
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

/// One key, from the group's JWK, through the public parser.
fn key_from_jwk(jwk: &Value) -> Result<Jwk, String> {
    let jwks = serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap();
    let parsed = KeySet::parse(&jwks).map_err(|e| e.to_string())?;
    Ok(parsed.keys.iter().next().unwrap().clone())
}

/// Runs every case of a signature file with `alg`; `jwk_of` gives the group's key as a JWK and
/// `same_key` cross-checks the key built from it against the group's other encoding.
fn signature_file(file: &str, alg: Algorithm, jwk_of: fn(&Value) -> Value, same_key: fn(&Value, &PublicKey)) {
    let Some(vectors) = wycheproof::load(file) else {
        return;
    };
    let mut tally = Tally::default();
    for group in wycheproof::groups(&vectors) {
        let tests = group["tests"].as_array().unwrap();
        let key = match key_from_jwk(&jwk_of(group)) {
            Ok(key) => key,
            Err(why) => {
                tests.iter().for_each(|_| tally.skip(&format!("key refused: {why}")));
                continue;
            }
        };
        same_key(group, &key.key);
        // The SPKI built for the host is byte for byte Wycheproof's DER encoding of the key.
        let der = wycheproof::hex(group["publicKeyDer"].as_str().unwrap());
        assert_eq!(key.spki(), Some(&der[..]), "{file}: SPKI");
        for test in tests {
            let expected = Expected::of(test);
            let msg = wycheproof::hex(test["msg"].as_str().unwrap());
            let sig = wycheproof::hex(test["sig"].as_str().unwrap());
            let accepted = RustCrypto.verify(alg, &key, &msg, &sig).is_ok();
            // "acceptable" (here only MissingNull in RSA DigestInfo) gets the strict answer: refused.
            assert_eq!(
                accepted,
                expected.must_accept(),
                "{file} tc {} {:?} {}",
                test["tcId"],
                expected,
                test["comment"]
            );
            tally.record(expected, accepted);
        }
    }
    println!("{file} via {alg}: {tally}");
    assert!(tally.skipped.is_empty(), "{file}: keys refused: {:?}", tally.skipped);
}

fn uncompressed_point(group: &Value) -> Vec<u8> {
    wycheproof::hex(group["publicKey"]["uncompressed"].as_str().unwrap())
}

/// The group's `publicKeyJwk`; 10 groups (tc 253-262) have none, so it is built from the point.
fn ec_jwk(group: &Value) -> Value {
    if group["publicKeyJwk"].is_object() {
        return group["publicKeyJwk"].clone();
    }
    let point = uncompressed_point(group);
    let (x, y) = point[1..].split_at(32);
    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
}

#[test]
fn ecdsa_p256_p1363_as_es256() {
    signature_file("ecdsa_secp256r1_sha256_p1363_test.json", Algorithm::ES256, ec_jwk, |group, key| {
        let direct = p256::ecdsa::VerifyingKey::from_sec1_bytes(&uncompressed_point(group)).unwrap();
        assert_eq!(key, &PublicKey::P256(direct));
    });
}

fn rsa_jwk(group: &Value) -> Value {
    group["keyJwk"].clone()
}

fn same_rsa_key(group: &Value, key: &PublicKey) {
    use rsa::pkcs8::DecodePublicKey;
    let der = wycheproof::hex(group["publicKeyDer"].as_str().unwrap());
    let direct = rsa::PublicKey::from_public_key_der(&der).unwrap();
    assert_eq!(key, &PublicKey::Rsa(direct));
}

#[test]
fn rsa_2048_pkcs1_sha256_as_rs256() {
    signature_file("rsa_signature_2048_sha256_test.json", Algorithm::RS256, rsa_jwk, same_rsa_key);
}

#[test]
fn rsa_4096_pkcs1_sha256_as_rs256() {
    signature_file("rsa_signature_4096_sha256_test.json", Algorithm::RS256, rsa_jwk, same_rsa_key);
}
