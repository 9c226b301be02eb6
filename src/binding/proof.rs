//! One DPoP proof against the request it came with (RFC 9449 §4.3), in this order, stopping at
//! the first failure:
//! 1. exactly one `DPoP` header holding one value (no second header, no list);
//! 2. one compact JWS of strict base64url, at most [`MAX_PROOF_BYTES`], whose header passes the
//!    rules every token header passes (`token::decode_jws`: strict JSON, no duplicate member at
//!    any depth, `alg` in `dpop.algorithms` and never `none` or HMAC, `crit` refused);
//! 3. `typ` exactly `dpop+jwt`; `jwk` a public key only (a private member refuses it) that passes
//!    the strict checks of a JWKS key (`jwks::Jwk::from_object`) and fits `alg`;
//! 4. the claims, a strict JSON object: `jti` (a string, 1 to [`MAX_JTI_BYTES`] bytes), `htm` the
//!    request's method, `htu` the request's URI (without query and fragment, both normalised as
//!    `uri` says), `iat` within [now - `max_age`, now + `max_future`], `ath` the hash of the
//!    access token (constant time), `nonce` a string when present;
//! 5. the signature, with the proof's own key, through the same `Crypto` backend as tokens.
//!
//! Cheap checks come before the signature, as for tokens. Other header parameters and claims are
//! allowed and ignored. What is *not* checked here: that the key is the token's (`cnf.jkt`, in
//! `decide`), the nonce's freshness (`nonce`), and that the proof is new (`replay`).

use super::BindingError::{self, *};
use super::memo::{ProofKey, ProofMemo};
use super::thumbprint::{Thumbprint, jwk_thumbprint};
use crate::claims::NumericDate;
use crate::config::DpopConfig;
use crate::crypto::Crypto;
use crate::error::JwtError;
use crate::json;
use crate::jwks::Jwk;
use crate::token::{self, Jws, b64url_decode};
use crate::uri::{HttpUri, Origin};
use serde_json::{Map, Value};

/// A proof longer than this is refused before decoding. Real proofs are under 1 KB with an EC
/// key and about 2 KB with an RSA-4096 key.
pub const MAX_PROOF_BYTES: usize = 8192;
/// `jti` is a random identifier (RFC 9449 §4.2 asks for 96 bits or more); no real one is longer.
pub const MAX_JTI_BYTES: usize = 256;
const DPOP_TYP: &str = "dpop+jwt";
/// Members only a private or symmetric JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The request as the proof is checked against it.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// Every `DPoP` header of the request, one value per header line, as received.
    pub headers: &'a [&'a str],
    /// `:method`.
    pub method: &'a str,
    /// The URI the request was made for ([`target`]); `None` when it cannot be formed (then no
    /// `htu` matches).
    pub target: Option<&'a HttpUri>,
    /// The access token presented with the proof (`Authorization: DPoP <token>`).
    pub access_token: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// A proof that passed every check above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key, for `cnf.jkt`.
    pub jkt: Thumbprint,
    pub jti: String,
    pub iat: NumericDate,
    /// The server nonce the proof carries, if any (checked by `nonce`).
    pub nonce: Option<String>,
}

/// The URI a request was made for, as `htu` must name it: the configured `public_url`'s origin,
/// or the request's own `:scheme` and `:authority`; then `:path` without its query.
pub fn target(config: &DpopConfig, scheme: &str, authority: &str, path: &str) -> Option<HttpUri> {
    match &config.public_url {
        Some(origin) => HttpUri::request(origin, path),
        None => HttpUri::request(&Origin::from_parts(scheme, authority)?, path),
    }
}

/// Checks the request's proof (order and rules in the module doc). A header that `memo` kept
/// has passed rules 2 and 3 already, the same bytes under the same allow-list (why that is sound:
/// `memo`); the rest is checked on every proof.
pub fn verify_proof(
    crypto: &dyn Crypto,
    memo: &ProofMemo,
    request: &ProofRequest<'_>,
    config: &DpopConfig,
) -> Result<VerifiedProof, BindingError> {
    let proof = single_value(request.headers)?;
    let segments = token::split(proof, MAX_PROOF_BYTES).map_err(form_error)?;
    let kept = memo.key(config.algorithms, segments.header);
    let header = match &kept {
        Some(key) => key.header.clone(),
        None => token::decode_header(segments.header, config.algorithms).map_err(form_error)?,
    };
    let jws = token::decode_body(&segments, header).map_err(form_error)?;
    let key = match kept {
        Some(key) => key,
        None => memo.keep_key(config.algorithms, segments.header, proof_key(&jws)?),
    };
    let claims = json::parse_object(&jws.payload, json::MAX_DEPTH).map_err(|_| ProofClaimsInvalid)?;
    let (jti, iat, nonce) = check_claims(&claims, memo, request, config)?;
    crypto
        .verify(jws.header.alg, &key.key, jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| ProofBadSignature)?;
    Ok(VerifiedProof { jkt: key.jkt, jti: jti.to_owned(), iat, nonce })
}

/// The one `DPoP` value: a second header, or a comma or blank inside one (a list, RFC 9110
/// §5.3: a compact JWS has neither), refuses the request.
fn single_value<'a>(headers: &[&'a str]) -> Result<&'a str, BindingError> {
    match headers {
        [] => Err(ProofMissing),
        [one] if one.contains(|c: char| c == ',' || c.is_ascii_whitespace()) => Err(ProofRepeated),
        [one] => Ok(one),
        _ => Err(ProofRepeated),
    }
}

/// `decode_jws` refuses only the form (rule 1) and the header (rule 2).
fn form_error(e: JwtError) -> BindingError {
    use JwtError::*;
    match e {
        TooLarge => ProofTooLarge,
        JsonSerialization | Jwe | BadFormat | HeaderBadBase64 | PayloadBadBase64 | SignatureBadBase64 => {
            ProofMalformed
        }
        HeaderMissingAlg | HeaderBadAlg | AlgNotAllowed => ProofAlgNotAllowed,
        _ => ProofHeaderInvalid,
    }
}

/// `typ`, then the `jwk` header: public members only, a usable key of `alg`'s type; with its
/// thumbprint.
fn proof_key(jws: &Jws<'_>) -> Result<ProofKey, BindingError> {
    let header = proof_header(jws)?;
    if header.get("typ").and_then(Value::as_str) != Some(DPOP_TYP) {
        return Err(ProofBadTyp);
    }
    let jwk = header.get("jwk").and_then(Value::as_object).ok_or(ProofBadJwk)?;
    if PRIVATE_MEMBERS.iter().any(|member| jwk.contains_key(*member)) {
        return Err(ProofPrivateKey);
    }
    let key = Jwk::from_object(jwk).map_err(|_| ProofBadJwk)?;
    if !key.fits(jws.header.alg) {
        return Err(ProofBadJwk);
    }
    Ok(ProofKey { header: jws.header.clone(), jkt: jwk_thumbprint(&key.key), key })
}

/// The whole protected header (`decode_jws` keeps only `alg` and `kid`); it has already passed
/// as strict base64url and strict JSON there.
fn proof_header(jws: &Jws<'_>) -> Result<Map<String, Value>, BindingError> {
    let segment = jws.signing_input.split('.').next().unwrap_or_default();
    let bytes = b64url_decode(segment).ok_or(ProofMalformed)?;
    json::parse_object(&bytes, json::MAX_DEPTH).map_err(|_| ProofHeaderInvalid)
}

/// Rule 4: `jti`, `htm`, `htu`, `iat`, `ath`, then `nonce`'s type.
fn check_claims<'c>(
    claims: &'c Map<String, Value>,
    memo: &ProofMemo,
    request: &ProofRequest<'_>,
    config: &DpopConfig,
) -> Result<(&'c str, NumericDate, Option<String>), BindingError> {
    let text = |name: &str, bad: BindingError| claims.get(name).and_then(Value::as_str).ok_or(bad);
    let jti = text("jti", ProofBadJti)?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(ProofBadJti);
    }
    // Methods are case-sensitive (RFC 9110 §9.1).
    if text("htm", ProofBadHtm)? != request.method {
        return Err(HtmMismatch);
    }
    let htu = HttpUri::parse(text("htu", ProofBadHtu)?).ok_or(ProofBadHtu)?;
    if request.target != Some(&htu) {
        return Err(HtuMismatch);
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => NumericDate::from_json(n).ok_or(ProofBadIat)?,
        _ => return Err(ProofBadIat),
    };
    check_iat(iat, request.now, config)?;
    // A string that is not a base64url SHA-256 cannot be the token's hash.
    let ath = Thumbprint::from_b64(text("ath", ProofBadAth)?).ok_or(AthMismatch)?;
    if !ath.matches(&memo.token_hash(request.access_token)) {
        return Err(AthMismatch);
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(nonce)) => Some(nonce.clone()),
        Some(_) => return Err(NonceInvalid),
    };
    Ok((jti, iat, nonce))
}

/// `iat` within [now - max_age, now + max_future], rounded the strict way: a fraction counts
/// against the proof at both ends.
fn check_iat(iat: NumericDate, now: i64, config: &DpopConfig) -> Result<(), BindingError> {
    let max_age = i64::try_from(config.max_age_seconds).unwrap_or(i64::MAX);
    let max_future = i64::try_from(config.max_future_seconds).unwrap_or(i64::MAX);
    if iat.floor() < now.saturating_sub(max_age) {
        Err(IatTooOld)
    } else if iat.ceil() > now.saturating_add(max_future) {
        Err(IatInFuture)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "proof_tests.rs"]
mod tests;
