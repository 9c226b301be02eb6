//! The filter end to end: the built `.wasm` in a real Envoy (`--concurrency 2`), a JWKS server the
//! test controls and an echo upstream; real HTTP over loopback.

mod support;

use serde_json::json;
use support::Stack;
use support::config::{self, AUDIENCE, Filter, ISSUER};
use support::mint::{self, TestKey, Token};

fn jwks() -> String {
    mint::jwks(&[(TestKey::RsaA, "rsa-a"), (TestKey::P256A, "ec-a")])
}

fn good(alg: &str, key: TestKey, kid: &str) -> Token<'static> {
    Token::new(alg, key).kid(kid).iss(ISSUER).aud(AUDIENCE).sub("alice").exp_in(3600)
}

#[test]
fn valid_tokens_pass_and_bad_ones_are_refused() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &jwks(), 2) else { return };
    for (alg, key, kid) in [("RS256", TestKey::RsaA, "rsa-a"), ("ES256", TestKey::P256A, "ec-a")] {
        let token = good(alg, key, kid);
        let r = stack.get("/hello", Some(&token.sign()));
        assert_eq!(r.status, 200, "{alg}: {}\n{}", r.body, stack.envoy.log());
        let headers = &r.json()["headers"];
        assert!(headers.get("authorization").is_none(), "{headers}");
        assert_eq!(headers["x-jwt-sub"], json!(["alice"]));
    }
    let r = stack.get("/hello", Some(&mint::tamper(&good("RS256", TestKey::RsaA, "rsa-a").sign())));
    assert_eq!(r.status, 401, "{}", r.body);
    let r = stack.get("/hello", None);
    assert_eq!(r.status, 401, "{}", r.body);
}
