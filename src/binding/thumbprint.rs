//! The digests that name a token's holder, and their comparison:
//! - the RFC 7638 JWK thumbprint of a proof key (what `cnf.jkt` holds, RFC 9449 §6.1);
//! - the access-token hash a proof carries in `ath` (RFC 9449 §4.2);
//! - the client certificate's SHA-256 thumbprint (`cnf.x5t#S256`, RFC 8705 §3.1), from the hex
//!   digest Envoy gives as `connection.sha256_peer_certificate_digest`.
//!
//! Each is a SHA-256 digest, kept as its 32 bytes and compared in constant time: the comparison
//! time says nothing about how much of a guess was right.

use crate::jwks::PublicKey;
use crate::token::{b64url_decode, b64url_encode};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const DIGEST_BYTES: usize = 32;

/// A SHA-256 thumbprint (of a key, a token or a certificate).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint([u8; DIGEST_BYTES]);

impl Thumbprint {
    /// The thumbprint as a claim carries it: exactly 32 bytes in strict base64url (43 characters).
    pub fn from_b64(text: &str) -> Option<Thumbprint> {
        b64url_decode(text)?.try_into().ok().map(Thumbprint)
    }

    /// Envoy's `sha256_peer_certificate_digest`: 64 hex digits (either case). `None` for
    /// anything else, so a missing or odd value never matches.
    pub fn from_hex(hex: &str) -> Option<Thumbprint> {
        if hex.len() != 2 * DIGEST_BYTES {
            return None;
        }
        let nibble = |b: &u8| char::from(*b).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let mut bytes = [0; DIGEST_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let [high, low] = pair else { return None };
            *byte = nibble(high)? << 4 | nibble(low)?;
        }
        Some(Thumbprint(bytes))
    }

    /// Base64url, as `cnf.jkt` and `cnf.x5t#S256` write it.
    pub fn to_b64(self) -> String {
        b64url_encode(&self.0)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; DIGEST_BYTES] {
        &self.0
    }

    /// Equality in constant time.
    pub fn matches(&self, other: &Thumbprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    fn sha256(bytes: &[u8]) -> Thumbprint {
        Thumbprint(Sha256::digest(bytes).into())
    }
}

impl std::fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbprint({})", self.to_b64())
    }
}

/// The RFC 7638 thumbprint of a public key: SHA-256 over the key's required members, in
/// lexicographic order, without whitespace.
///
/// Built from the parsed key, not from the JWK text it came in: the key parser
/// (`jwks::Jwk::from_object`) accepts only canonical encodings (strict base64url, RSA integers
/// without leading zero octets, EC coordinates of the full field size), so re-encoding gives
/// back exactly the member values received, and members that RFC 7638 leaves out (`kid`, `alg`,
/// `use`...) cannot change it.
pub fn jwk_thumbprint(key: &PublicKey) -> Thumbprint {
    let json = match key {
        PublicKey::Rsa(key) => {
            let (e, n) = (b64url_encode(&key.e_bytes()), b64url_encode(&key.n_bytes()));
            format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)
        }
        PublicKey::P256(key) => ec_members("P-256", key.to_sec1_point(false).as_bytes()),
        PublicKey::P384(key) => ec_members("P-384", key.to_sec1_point(false).as_bytes()),
        PublicKey::Ed25519(key) => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64url_encode(key.as_bytes()))
        }
    };
    Thumbprint::sha256(json.as_bytes())
}

/// `crv`, `kty`, `x`, `y` of an uncompressed SEC1 point (`04 || x || y`).
fn ec_members(crv: &str, sec1: &[u8]) -> String {
    let coordinates = sec1.get(1..).unwrap_or_default();
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    let (x, y) = (b64url_encode(x), b64url_encode(y));
    format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
}

/// `ath`: the SHA-256 of the access token's ASCII text (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> Thumbprint {
    Thumbprint::sha256(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::{Jwk, test_keys};
    use serde_json::{Value, json};

    fn key(jwk: Value) -> PublicKey {
        Jwk::from_object(jwk.as_object().unwrap()).unwrap().key
    }

    #[test]
    fn rfc_vectors() {
        // RFC 7638 §3.1.
        let rsa = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        // RFC 9449 §4.2 Figure 2's key and §6.1 Figure 9's `jkt`.
        let ec = json!({"kty": "EC", "crv": "P-256",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"});
        // RFC 8037 §A.3.
        let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        for (jwk, expected) in [
            (rsa, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
            (ec, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
            (okp, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"),
        ] {
            assert_eq!(jwk_thumbprint(&key(jwk.clone())).to_b64(), expected, "{jwk}");
        }
        // RFC 9449 §4.2 (Figure 13's access token and `ath`).
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU").to_b64(),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    /// Each key kind's thumbprint equals SHA-256 of the canonical JSON written out by hand from
    /// the JWK as a client would send it (members in another order, optional members added).
    #[test]
    fn every_key_kind_matches_its_canonical_json() {
        for jwk in [
            test_keys::rsa_jwk(&test_keys::rsa("rsa2048-b")),
            test_keys::rsa_jwk(&test_keys::rsa("rsa3072")),
            test_keys::p256_jwk(&test_keys::p256("p256-a")),
            test_keys::p384_jwk(&test_keys::p384()),
            test_keys::ed25519_jwk(&test_keys::ed25519()),
        ] {
            let members: &[&str] = match jwk["kty"].as_str().unwrap() {
                "RSA" => &["e", "kty", "n"],
                "EC" => &["crv", "kty", "x", "y"],
                _ => &["crv", "kty", "x"],
            };
            let canonical: Vec<String> = members.iter().map(|m| format!("\"{m}\":{}", jwk[*m])).collect();
            let expected = Thumbprint::sha256(format!("{{{}}}", canonical.join(",")).as_bytes());
            let decorated = test_keys::with(jwk.clone(), &[("kid", json!("k1")), ("use", json!("sig"))]);
            assert_eq!(jwk_thumbprint(&key(decorated)), expected, "{jwk}");
        }
        let a = jwk_thumbprint(&key(test_keys::p256_jwk(&test_keys::p256("p256-a"))));
        let b = jwk_thumbprint(&key(test_keys::p256_jwk(&test_keys::p256("p256-b"))));
        assert!(!a.matches(&b) && a.matches(&a));
    }

    #[test]
    fn certificate_digest_from_envoy_hex() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let digest = Thumbprint::from_hex(hex).unwrap();
        assert_eq!(digest.to_b64(), "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg");
        assert_eq!(Thumbprint::from_hex(&hex.to_uppercase()), Some(digest));
        assert_eq!(Thumbprint::from_b64("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"), Some(digest));
        for bad in ["", &hex[1..], &format!("{hex}00"), &hex.replace('9', "g"), &format!("+{}", &hex[1..])] {
            assert_eq!(Thumbprint::from_hex(bad), None, "{bad:?}");
        }
        for bad in [
            "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg=",
            "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg",
            "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgh",
            "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCg",
            "",
        ] {
            assert_eq!(Thumbprint::from_b64(bad), None, "{bad:?}");
        }
    }
}
