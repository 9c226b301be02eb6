//! The verifier's entry point: one token against one provider's keys and policy, at time `now`.
//!
//! Order: form and header (cheap, and they pick the algorithm), claims (cheap and definite: an
//! expired or foreign token is refused without spending a signature check, as jwt_authn does),
//! then the signature with the keys the header selects.

use crate::claims::Claims;
use crate::crypto::{Crypto, RustCrypto};
use crate::error::JwtError;
use crate::jwks::KeySet;
use crate::policy::Policy;
use crate::token::{self, Header, Jws};

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt {
    pub header: Header,
    pub claims: Claims,
    /// The payload segment as received, for `forward_payload_header`.
    pub payload_b64: String,
    /// The header segment as received, for `header_in_metadata`.
    pub header_b64: String,
}

/// Verifies `token` with pure-Rust crypto. `now` is Unix seconds.
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: i64) -> Result<VerifiedJwt, JwtError> {
    verify_with(&RustCrypto, token, keys, policy, now)
}

/// Verifies `token` with the given signature backend.
pub fn verify_with(
    crypto: &dyn Crypto,
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: i64,
) -> Result<VerifiedJwt, JwtError> {
    decode(token, policy, &policy.audiences, now)?.check_signature(crypto, keys)
}

/// A token whose form, header and claims passed, its signature not yet checked.
pub struct Decoded<'a> {
    jws: Jws<'a>,
    claims: Claims,
}

/// Everything but the signature: the checks that need no keys, with `audiences` for the policy's
/// (see [`Claims::check_for`]). A token that names another issuer fails here with
/// `IssuerNotAllowed` before its times are looked at.
pub fn decode<'a>(
    token: &'a str,
    policy: &Policy,
    audiences: &[String],
    now: i64,
) -> Result<Decoded<'a>, JwtError> {
    let jws = token::decode_jws(token, policy.algorithms, policy.max_token_bytes)?;
    let claims = Claims::parse(&jws.payload)?;
    claims.check_for(policy, audiences, now)?;
    Ok(Decoded { jws, claims })
}

impl Decoded<'_> {
    /// Finishes verification with the signature.
    pub fn check_signature(self, crypto: &dyn Crypto, keys: &KeySet) -> Result<VerifiedJwt, JwtError> {
        check_signature(crypto, &self.jws, keys)?;
        Ok(self.verified())
    }

    /// Finishes verification without the signature, for a token whose signature is known good:
    /// this exact token verified under the exact key set in use (`crate::shared_record`). Only
    /// the caller can know that; every other check has passed.
    pub fn signature_verified_elsewhere(self) -> VerifiedJwt {
        self.verified()
    }

    fn verified(self) -> VerifiedJwt {
        let Decoded { jws, claims } = self;
        let header_b64 = jws.signing_input.split('.').next().unwrap_or_default().to_owned();
        VerifiedJwt { header: jws.header, claims, payload_b64: jws.payload_b64.to_owned(), header_b64 }
    }
}

/// Rules 5 and 7: some key the header selects verifies the signature over the signing input
/// exactly as received. Keys come only from the key set, never from the token.
pub fn check_signature(crypto: &dyn Crypto, jws: &Jws<'_>, keys: &KeySet) -> Result<(), JwtError> {
    let alg = jws.header.alg;
    let candidates = keys.candidates(alg, jws.header.kid.as_deref())?;
    let signed = jws.signing_input.as_bytes();
    if candidates.iter().any(|k| crypto.verify(alg, k, signed, &jws.signature).is_ok()) {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}
