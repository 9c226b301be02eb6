//! Test support shared by this module's tests: the fixture keys and token minting of
//! `tests/support/mint.rs` (one implementation for every test), and DPoP proofs made with them.

#[path = "../../tests/support/mint.rs"]
pub mod mint;

use super::thumbprint::access_token_hash;
use mint::{TestKey, Token};
use serde_json::json;

/// The proxy's clock in these tests (Unix seconds).
pub const NOW: i64 = 1_700_000_000;
/// The access token the proofs are made for.
pub const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
/// The request's URI, as a client names it in `htu`.
pub const HTU: &str = "https://api.example/v1/items";

/// A valid proof for `GET HTU` with `TOKEN` at `NOW`, signed by `key` with its default algorithm;
/// tests change one member at a time.
pub fn proof(key: TestKey) -> Token<'static> {
    Token::new(key.default_alg(), key)
        .header("typ", json!("dpop+jwt"))
        .header("jwk", key.jwk("proof-key", None))
        .claim("jti", json!("5b8f7d1c-3a2e-4f60-9c1d-7e2a4b6c8d0f"))
        .claim("htm", json!("GET"))
        .claim("htu", json!(HTU))
        .claim("iat", json!(NOW))
        .claim("ath", json!(access_token_hash(TOKEN).to_b64()))
}
