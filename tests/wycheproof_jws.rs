//! Wycheproof `json_web_signature_test.json` and `json_web_crypto_test.json` through the public
//! API: every JWS goes through `token::decode_jws` (all algorithms allowed) and
//! `verify::check_signature`, with the group's public JWK, parsed by `KeySet::parse`, as the whole
//! key set. The payloads are not JWT claim sets ("foo", RFC 7520's text), so `verify::verify` is not
//! used here: `tests/verify_rules.rs` covers claims.
//!
//! Scope: groups with an `oct` key (HS256), a P-521 key (ES512) or JWE tokens are out of scope.
//! For those the test shows that the signing keys are skipped by `KeySet::parse` and that every
//! token is refused by `decode_jws` already, before any key is looked up, and it names the groups
//! it leaves out. The files have no "acceptable" cases (Tally would count them as refused, the
//! strict answer). Where this verifier's policy refuses a Wycheproof "valid" case,
//! `File::policy_refusals` says which rule.
//!
//! Run with `-- --nocapture` to see the per-group counts and refusal reasons.

#[path = "common/wycheproof.rs"]
mod wycheproof;

use jwt_authn_wasm::alg::AlgorithmSet;
use jwt_authn_wasm::crypto::RustCrypto;
use jwt_authn_wasm::error::JwtError;
use jwt_authn_wasm::jwks::{JwksError, KeySet, KeySkip};
use jwt_authn_wasm::policy::DEFAULT_MAX_TOKEN_BYTES;
use jwt_authn_wasm::{token, verify};
use serde_json::{Value, json};
use wycheproof::{Expected, Tally};

/// A JWS file, with what is pinned for it (tc ids are per file).
struct File {
    name: &'static str,
    /// Wycheproof "valid" cases that this verifier refuses by its policy, and the rule that decides.
    policy_refusals: &'static [(u64, JwtError, &'static str)],
    /// Refusal reasons pinned where the reason itself is the point (the other cases only need to
    /// be refused; the per-group counts show their reasons).
    reasons: &'static [(u64, JwtError)],
    /// How many groups are out of scope.
    groups_left_out: usize,
}

const SIGNATURE_FILE: File = File {
    name: "json_web_signature_test.json",
    policy_refusals: &SIGNATURE_POLICY_REFUSALS,
    reasons: &SIGNATURE_REASONS,
    groups_left_out: 6,
};

const SIGNATURE_POLICY_REFUSALS: [(u64, JwtError, &str); 8] = [
    // Rule 1: three non-empty segments. A JWT payload is a JSON object, never empty.
    (259, JwtError::BadFormat, "rule 1: empty payload segment (RS256)"),
    (264, JwtError::BadFormat, "rule 1: empty payload segment (RS384)"),
    (268, JwtError::BadFormat, "rule 1: empty payload segment (RS512)"),
    (272, JwtError::BadFormat, "rule 1: empty payload segment (PS256)"),
    (320, JwtError::BadFormat, "rule 1: empty payload segment (PS384)"),
    (325, JwtError::BadFormat, "rule 1: empty payload segment (PS512)"),
    // Rule 5: a key's own `alg` binds it. These groups give RFC 7520's key `"alg": "PS256"` and its
    // PS384 token (RFC 7520 §4.2, Figure 20); the RFC's own key has no `alg` and verifies it
    // (rfc_vectors.rs, and below with the member removed).
    (346, JwtError::NoMatchingKey, "rule 5: JWK alg PS256, token alg PS384"),
    (350, JwtError::NoMatchingKey, "rule 5: JWK alg PS256, token alg PS384"),
];

const SIGNATURE_REASONS: [(u64, JwtError); 14] = [
    (17, JwtError::JsonSerialization), // a valid JWS in the JSON serialization
    (25, JwtError::UnknownKid),        // modified header: kid "Xid-ec-sign"
    (31, JwtError::AlgNotAllowed),     // HS256 with the EC public key's bytes as the MAC key
    (32, JwtError::BadSignature),      // signed by the attacker's key, embedded as `jwk`: never used
    (332, JwtError::NoMatchingKey),    // RS256 header, key bound to PS512
    // `alg: none` with an empty signature: the form (rule 1) fails before the header is read.
    (341, JwtError::BadFormat),
    (342, JwtError::BadFormat),
    (343, JwtError::BadFormat),
    (344, JwtError::BadFormat),
    (379, JwtError::BadSignature), // ES256 signature too long
    (380, JwtError::BadSignature), // ES256 signature with trailing zeros
    (385, JwtError::BadSignature), // ES256 "buffer overflow": a much longer signature
    (386, JwtError::BadSignature), // r = s = 0
    (401, JwtError::BadSignature), // r = s = n
];

/// JWS and JWE, compact and JSON: the same attacks as above on other keys, and encrypted tokens.
const CRYPTO_FILE: File = File {
    name: "json_web_crypto_test.json",
    policy_refusals: &[],
    reasons: &[
        (31, JwtError::AlgNotAllowed), // HS256 with the EC public key's bytes as the MAC key
        (32, JwtError::BadSignature),  // signed by the attacker's key, embedded as `jwk`
        (50, JwtError::Jwe),           // a valid JWE (AES key wrap)
        (66, JwtError::JsonSerialization), // a valid JWE in the JSON serialization
        (67, JwtError::Jwe),           // a valid JWE (ECDH-ES)
    ],
    groups_left_out: 5,
};

/// Decodes one compact JWS and checks its signature against `keys`.
fn check(jws: &str, keys: &KeySet) -> Result<(), JwtError> {
    let jws = token::decode_jws(jws, AlgorithmSet::all(), DEFAULT_MAX_TOKEN_BYTES)?;
    verify::check_signature(&RustCrypto, &jws, keys)
}

/// The reasons `KeySet::parse` skips the keys of `key` (one JWK, or a set) for.
fn skips(key: &Value) -> Vec<KeySkip> {
    let set = if key["keys"].is_array() { key.clone() } else { json!({ "keys": [key] }) };
    match KeySet::parse(&serde_json::to_vec(&set).unwrap()) {
        Ok(parsed) => parsed.skipped.iter().map(|s| s.reason).collect(),
        Err(JwksError::NoUsableKey(skipped)) => skipped.iter().map(|s| s.reason).collect(),
        Err(e) => panic!("{key}: {e}"),
    }
}

/// A one-key set through the public parser: the set, or why the key was skipped.
fn key_set(jwk: &Value) -> Result<KeySet, KeySkip> {
    match KeySet::parse(&serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()) {
        Ok(parsed) => {
            assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
            Ok(parsed.keys)
        }
        Err(JwksError::NoUsableKey(skipped)) => match skipped.as_slice() {
            [skip] => Err(skip.reason),
            more => panic!("one key, several skips: {more:?}"),
        },
        Err(e) => panic!("{jwk}: {e}"),
    }
}

/// `jwk` without the named members.
fn without(jwk: &Value, members: &[&str]) -> Value {
    let mut jwk = jwk.clone();
    for name in members {
        jwk.as_object_mut().unwrap().remove(*name);
    }
    jwk
}

/// The group's key (or key set): the public one, or, for the HMAC and JWE groups, the secret one
/// (their only key).
fn group_key(group: &Value) -> &Value {
    if group["public"].is_object() { &group["public"] } else { &group["private"] }
}

fn is_jwe(group: &Value) -> bool {
    cases(group).iter().any(|test| test.get("jwe").is_some())
}

/// Why a group is out of scope, or `None` when it is in scope.
fn out_of_scope(group: &Value) -> Option<&'static str> {
    let key = group_key(group);
    let has_oct = |key: &Value| key["kty"] == "oct";
    if is_jwe(group) {
        Some("JWE: an encrypted token, never a signed one")
    } else if has_oct(key) || key["keys"].as_array().is_some_and(|keys| keys.iter().any(has_oct)) {
        Some("HMAC (HS256, oct key): a shared secret has no place in a public key set")
    } else if key["crv"] == "P-521" {
        Some("ES512 on P-521: not supported")
    } else {
        None
    }
}

fn cases(group: &Value) -> &[Value] {
    group["tests"].as_array().unwrap()
}

fn tc(test: &Value) -> u64 {
    test["tcId"].as_u64().unwrap()
}

/// The token: a compact serialization as it is, a JSON serialization as its text.
fn jws(test: &Value) -> String {
    let token = if test.get("jwe").is_some() { &test["jwe"] } else { &test["jws"] };
    token.as_str().map_or_else(|| token.to_string(), str::to_owned)
}

fn group_name(index: usize, group: &Value) -> String {
    let tests = cases(group);
    let (first, last) = (tc(&tests[0]), tc(&tests[tests.len() - 1]));
    format!("group {index} {} (tc {first}-{last})", group["comment"])
}

/// Asserts a pinned reason, if the case has one.
fn assert_pinned_reason<T: std::fmt::Debug>(file: &File, test: &Value, outcome: &Result<T, JwtError>) {
    if let Some((_, reason)) = file.reasons.iter().find(|(id, _)| *id == tc(test)) {
        assert_eq!(outcome.as_ref().err(), Some(reason), "tc {} {}", tc(test), test["comment"]);
    }
}

/// An in-scope group: each case is refused or accepted as Wycheproof says, but for the file's
/// policy refusals.
fn run_in_scope(file: &File, group: &Value) -> Tally {
    let key = &group["public"];
    let mut tally = Tally::default();
    let keys = match key_set(key) {
        Ok(keys) => keys,
        Err(skip) => return run_with_refused_key(group, skip),
    };
    for test in cases(group) {
        let expected = Expected::of(test);
        let outcome = check(&jws(test), &keys);
        match file.policy_refusals.iter().find(|(id, ..)| *id == tc(test)) {
            Some((_, reason, rule)) => {
                assert_eq!(expected, Expected::Valid, "tc {}", tc(test));
                assert_eq!(outcome, Err(*reason), "tc {}: {rule}", tc(test));
                if *reason == JwtError::NoMatchingKey {
                    // Only the key's binding refuses it: without its `alg` the key verifies the token.
                    let unbound = key_set(&without(key, &["alg"])).unwrap();
                    assert_eq!(check(&jws(test), &unbound), Ok(()), "tc {}", tc(test));
                }
            }
            None => assert_eq!(
                outcome.is_ok(),
                expected.must_accept(),
                "tc {} {:?} {}: {outcome:?}",
                tc(test),
                expected,
                test["comment"]
            ),
        }
        assert_pinned_reason(file, test, &outcome);
        tally.outcome(expected, &outcome);
    }
    tally
}

/// The groups whose key is skipped, so there is no key to verify with and every case is refused:
/// the encryption keys (`use: enc`, `key_ops: [encrypt]`), where only the intended use refuses
/// them (the same key without `use`/`key_ops` verifies each token), and the ROCA-weak key.
fn run_with_refused_key(group: &Value, skip: KeySkip) -> Tally {
    let signing_key = match skip {
        KeySkip::UseNotSig | KeySkip::KeyOpsWithoutVerify => {
            Some(key_set(&without(&group["public"], &["use", "key_ops"])).unwrap())
        }
        KeySkip::RsaRocaVulnerable => None,
        other => panic!("{}: key skipped: {other}", group["comment"]),
    };
    let mut tally = Tally::default();
    for test in cases(group) {
        let expected = Expected::of(test);
        assert!(!expected.must_accept(), "tc {}", tc(test));
        if let Some(signing_key) = &signing_key {
            assert_eq!(check(&jws(test), signing_key), Ok(()), "tc {}", tc(test));
        }
        tally.outcome(expected, &Err(format!("key skipped: {skip}")));
    }
    tally
}

/// An out-of-scope group: its signing keys are skipped (a JWE group's key is a decryption key,
/// never in a JWKS) and every token is refused before a key is needed.
fn run_out_of_scope(file: &File, group: &Value) -> Tally {
    if !is_jwe(group) {
        let skips = skips(group_key(group));
        // The ES521 groups give the key `"alg": "ES521"`, an unknown name, which is checked before
        // the curve; RFC 7520's own P-521 key (no alg) is skipped as unsupported_curve in
        // rfc_vectors.rs. A mixed set keeps its EC key: only the oct key is skipped.
        let expected = |s: &KeySkip| {
            matches!(s, KeySkip::SymmetricKey | KeySkip::UnsupportedCurve | KeySkip::UnknownAlg)
        };
        assert!(!skips.is_empty() && skips.iter().all(expected), "{skips:?}");
    }
    let mut tally = Tally::default();
    for test in cases(group) {
        let outcome = token::decode_jws(&jws(test), AlgorithmSet::all(), DEFAULT_MAX_TOKEN_BYTES).map(|_| ());
        assert!(outcome.is_err(), "tc {} decoded", tc(test));
        assert_pinned_reason(file, test, &outcome);
        tally.outcome(Expected::of(test), &outcome);
    }
    tally
}

fn run_file(file: &File) {
    let vectors = wycheproof::load(file.name);
    let file_name = file.name;
    let (mut in_scope, mut out_of_scope_total) = (Tally::default(), Tally::default());
    let mut left_out = Vec::new();
    for (index, group) in wycheproof::groups(&vectors).iter().enumerate() {
        let name = group_name(index, group);
        let tally = match out_of_scope(group) {
            None => {
                let tally = run_in_scope(file, group);
                in_scope.absorb(&tally);
                tally
            }
            Some(why) => {
                left_out.push(format!("{name}: {why}"));
                let tally = run_out_of_scope(file, group);
                out_of_scope_total.absorb(&tally);
                tally
            }
        };
        eprintln!("{file_name} {name}: {tally}");
    }
    eprintln!("{file_name}, in scope: {in_scope}");
    eprintln!("{file_name}, out of scope, all refused: {out_of_scope_total}");
    eprintln!("{file_name}, groups left out:\n  {}", left_out.join("\n  "));

    // Every in-scope "valid" case is accepted, but the policy refusals; nothing else is.
    let valid_in_scope = wycheproof::groups(&vectors)
        .iter()
        .filter(|g| out_of_scope(g).is_none())
        .flat_map(cases)
        .filter(|t| Expected::of(t) == Expected::Valid)
        .count();
    assert_eq!(in_scope.accepted, valid_in_scope - file.policy_refusals.len());
    assert_eq!(out_of_scope_total.accepted, 0);
    assert_eq!(
        in_scope.accepted + in_scope.refused + out_of_scope_total.refused,
        wycheproof::tests(&vectors).count()
    );
    assert_eq!(left_out.len(), file.groups_left_out, "{left_out:?}");
}

#[test]
fn json_web_signature_test() {
    run_file(&SIGNATURE_FILE);
}

#[test]
fn json_web_crypto_test() {
    run_file(&CRYPTO_FILE);
}
