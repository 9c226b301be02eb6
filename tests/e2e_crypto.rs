//! The filter end to end with each signature backend (`crypto`: `host`, `wasm`, and the default
//! `auto`): the same tokens get the same answers, for the algorithms the host verifies (RS256,
//! ES256, ES384) and for those that always stay in Rust (PS256, EdDSA). The load log shows which
//! backend each VM chose.

mod support;

use serde_json::{Value, json};
use support::Stack;
use support::config::{self, Filter, corp_token};
use support::mint::{self, TestKey};

/// (alg, key, kid): every algorithm family, with a key of the set.
const SIGNERS: [(&str, TestKey, &str); 5] = [
    ("RS256", TestKey::RsaA, "rsa-a"),
    ("ES256", TestKey::P256A, "ec-a"),
    ("ES384", TestKey::P384, "ec-384"),
    ("PS256", TestKey::RsaA, "rsa-a"),
    ("EdDSA", TestKey::Ed25519, "ed"),
];

fn jwks() -> String {
    mint::jwks(&[
        (TestKey::RsaA, "rsa-a"),
        (TestKey::P256A, "ec-a"),
        (TestKey::P384, "ec-384"),
        (TestKey::Ed25519, "ed"),
    ])
}

fn policy(crypto: Option<&str>) -> Value {
    let mut policy = config::corp_policy();
    if let Some(crypto) = crypto {
        policy["crypto"] = json!(crypto);
    }
    policy
}

/// Valid tokens of every algorithm pass; tampered ones, tokens signed by another key and requests
/// without a token are refused. `log_says` must appear in Envoy's log (the backend chosen).
fn smoke(crypto: Option<&str>, log_says: &str) {
    let Some(stack) = Stack::start(Filter::Wasm, policy(crypto), &jwks(), 2) else { return };
    for (alg, key, kid) in SIGNERS {
        let token = corp_token(alg, key, kid).sign();
        let r = stack.get("/hello", Some(&token));
        assert_eq!(r.status, 200, "{crypto:?} {alg}: {}\n{}", r.body, stack.envoy.log());
        assert_eq!(r.json()["headers"]["x-jwt-sub"], json!(["alice"]), "{crypto:?} {alg}");

        let r = stack.get("/hello", Some(&mint::tamper(&token)));
        assert_eq!(
            (r.status, r.body.contains("jwt_bad_signature")),
            (401, true),
            "{crypto:?} {alg} tampered"
        );
    }
    // A key of the right kind that is not the named one's: the signature does not verify.
    let wrong_key = corp_token("RS256", TestKey::RsaB, "rsa-a").sign();
    let r = stack.get("/hello", Some(&wrong_key));
    assert_eq!((r.status, r.body.contains("jwt_bad_signature")), (401, true), "{crypto:?} wrong key");
    let wrong_ec_key = corp_token("ES256", TestKey::P256B, "ec-a").sign();
    let r = stack.get("/hello", Some(&wrong_ec_key));
    assert_eq!((r.status, r.body.contains("jwt_bad_signature")), (401, true), "{crypto:?} wrong EC key");
    assert_eq!(stack.get("/hello", None).status, 401);
    let log = stack.envoy.log();
    assert!(log.contains(log_says), "{crypto:?}: no {log_says:?} in the log:\n{log}");
    // The host imported every key: none was set aside for Rust.
    assert!(!log.contains("the host cannot use it"), "{crypto:?}:\n{log}");
}

const HOST_CHOSEN: &str = "crypto: RS256/384/512 and ES256/384 are verified by the host";

#[test]
fn crypto_host() {
    smoke(Some("host"), HOST_CHOSEN);
}

#[test]
fn crypto_wasm() {
    smoke(Some("wasm"), "crypto: \"wasm\", every signature is verified in wasm");
}

#[test]
fn crypto_auto_is_the_default_and_picks_the_host() {
    smoke(None, HOST_CHOSEN);
}
