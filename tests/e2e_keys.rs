//! Key lifecycle end to end: rotation, unknown-kid refetch without storms, stale keys, faults of the
//! JWKS server, OIDC discovery. Real Envoy, the JWKS server under the test's control.

mod support;

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
fn a_rotated_key_is_fetched_on_first_use() {
    let Some(stack) = Stack::start(Filter::Wasm, config::corp_policy(), &jwks(), 2) else { return };
    assert_eq!(stack.get("/warm", Some(&good("RS256", TestKey::RsaA, "rsa-a").sign())).status, 200);
    let before = stack.jwks.hits();
    stack.jwks.set_body(&mint::jwks(&[(TestKey::RsaA, "rsa-a"), (TestKey::RsaB, "rsa-b")]));
    let r = stack.get("/new", Some(&good("RS256", TestKey::RsaB, "rsa-b").sign()));
    assert_eq!(r.status, 200, "{}\n{}", r.body, stack.envoy.log());
    assert_eq!(stack.jwks.hits(), before + 1);
    let r = stack.get("/random", Some(&good("RS256", TestKey::RsaB, "nope").sign()));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(stack.jwks.hits(), before + 1, "the interval's refetch is spent");
}
