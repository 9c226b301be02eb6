//! Sender-constrained tokens, checked at the proxy: DPoP proofs of possession (RFC 9449) and
//! certificate-bound tokens (RFC 8705 §3). A bound token names its holder in `cnf` (a key
//! thumbprint `jkt`, or a certificate thumbprint `x5t#S256`); a request passes only when it comes
//! from that holder: with a proof signed by that key, or over a TLS connection with that
//! certificate.
//!
//! The pure core of it, in the order a request meets it:
//! - `thumbprint`: RFC 7638 key thumbprints, the proof's `ath`, `x5t#S256` from Envoy's hex digest,
//!   compared in constant time;
//! - `cnf`: the verified token's `cnf` claim;
//! - `proof`: one DPoP proof against the request (RFC 9449 §4.3);
//! - `decide`: whether the token's binding is met (scheme, proof key, certificate, nonce);
//! - `nonce`: stateless server nonces (§9) under a secret every worker shares;
//! - `replay`: the process-wide record of proofs seen (a `jti` is accepted once per window);
//! - `answer`: the §7.1 answers (status, `WWW-Authenticate` challenges, `DPoP-Nonce`).
//!
//! Settings come from the configuration (`config::TokenBinding`); every refusal is a
//! [`BindingError`] with a stable reason, its OAuth error code and its status.

pub mod answer;
pub mod cnf;
pub mod decide;
pub mod nonce;
pub mod proof;
pub mod replay;
pub mod thumbprint;

#[cfg(test)]
mod testing;

use crate::error::reasons;

reasons! {
    /// Why a request's sender constraint was not met. `reason()` is stable (401 bodies,
    /// `error_description`, logs, metrics).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum BindingError {
        // The credentials as presented.
        /// A `Bearer` and a `DPoP` credential in one request (RFC 9449 §7.2): 400.
        BothSchemes => "dpop_bearer_and_dpop",
        /// `Authorization: DPoP` to a provider whose `dpop.mode` is `disabled`.
        NotAccepted => "dpop_not_accepted",
        /// A `Bearer` token to a provider whose `dpop.mode` is `required`.
        BearerNotAllowed => "dpop_bearer_not_allowed",
        /// A DPoP-bound token (`cnf.jkt`) sent as `Bearer` (§7.2).
        Downgrade => "dpop_downgrade",
        /// `Authorization: DPoP` with a token that has no `cnf.jkt`.
        TokenUnbound => "dpop_token_unbound",

        // The proof (RFC 9449 §4.3).
        /// `Authorization: DPoP` without a `DPoP` header.
        ProofMissing => "dpop_proof_missing",
        /// More than one `DPoP` header, or one holding a list.
        ProofRepeated => "dpop_proof_repeated",
        /// Longer than any real proof: refused before decoding.
        ProofTooLarge => "dpop_proof_too_large",
        /// Not one compact JWS of strict base64url.
        ProofMalformed => "dpop_proof_malformed",
        /// The protected header is not a strict JSON object, or breaks a JWS header rule
        /// (`kid` type, `crit`, nested `cty`).
        ProofHeaderInvalid => "dpop_proof_header_invalid",
        /// `typ` is absent or not exactly `dpop+jwt`.
        ProofBadTyp => "dpop_proof_bad_typ",
        /// `alg` is absent, not a string, or not in `dpop.algorithms` (never `none` or HMAC).
        ProofAlgNotAllowed => "dpop_proof_alg_not_allowed",
        /// `jwk` is absent, not an object, not a usable public key, or not of the `alg`'s type.
        ProofBadJwk => "dpop_proof_bad_jwk",
        /// `jwk` carries private key material (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`).
        ProofPrivateKey => "dpop_proof_private_key",
        /// The payload is not a strict JSON object.
        ProofClaimsInvalid => "dpop_proof_claims_invalid",
        /// `jti` is absent, not a string, empty or too long.
        ProofBadJti => "dpop_proof_bad_jti",
        /// `htm` is absent or not a string.
        ProofBadHtm => "dpop_proof_bad_htm",
        /// `htm` is not the request's method.
        HtmMismatch => "dpop_htm_mismatch",
        /// `htu` is absent, not a string, or not an absolute http(s) URI.
        ProofBadHtu => "dpop_proof_bad_htu",
        /// `htu` names another URI than the request's (after normalisation).
        HtuMismatch => "dpop_htu_mismatch",
        /// `iat` is absent or not a number of seconds.
        ProofBadIat => "dpop_proof_bad_iat",
        /// `iat` is older than `dpop.max_age`.
        IatTooOld => "dpop_iat_too_old",
        /// `iat` is further ahead than `dpop.max_future`.
        IatInFuture => "dpop_iat_in_future",
        /// `ath` is absent or not a string.
        ProofBadAth => "dpop_proof_bad_ath",
        /// `ath` is not the hash of the access token presented with the proof.
        AthMismatch => "dpop_ath_mismatch",
        /// The signature does not verify with the proof's own `jwk`.
        ProofBadSignature => "dpop_proof_bad_signature",
        /// The proof's key is not the one the token is bound to (`cnf.jkt`).
        JktMismatch => "dpop_jkt_mismatch",
        /// This proof (`jti`, same key) was already used within its window.
        Replayed => "dpop_proof_replayed",
        /// The replay record has no room for the proof right now (its bucket is full of
        /// unexpired proofs): refused rather than forget another proof.
        ReplayFull => "dpop_replay_full",
        /// The replay record cannot vouch for the proof right now (being created or repaired,
        /// or a write race lost too often): refused rather than accepted unrecorded.
        ReplayUnavailable => "dpop_replay_unavailable",

        // Server nonces (RFC 9449 §9): answered with `use_dpop_nonce` and a fresh nonce.
        /// The provider wants nonces and the proof has none.
        NonceMissing => "dpop_nonce_missing",
        /// The proof's `nonce` is not one this Envoy issued in the current or the previous step.
        NonceInvalid => "dpop_nonce_invalid",
        /// The provider wants nonces and no nonce secret is available yet (not the client's fault).
        NonceUnavailable => "dpop_nonce_unavailable",

        // The token's `cnf` and certificate binding (RFC 8705 §3).
        /// `cnf` is not an object, or its `jkt` / `x5t#S256` is not a base64url SHA-256 digest.
        CnfMalformed => "cnf_malformed",
        /// `cnf` binds the token by a method this filter does not check (`jwk`, `kid`, ...):
        /// it must not pass as if unbound.
        CnfUnsupported => "cnf_unsupported_method",
        /// A certificate-bound token over a connection without a client certificate.
        CertificateMissing => "cnf_certificate_missing",
        /// A certificate-bound token over a connection with another client certificate.
        CertificateMismatch => "cnf_certificate_mismatch",
        /// `certificate_bound.mode` is `required` and the token has no `cnf.x5t#S256`.
        CertificateUnbound => "cnf_certificate_unbound",
    }
}

/// The OAuth error code a refusal is answered with (RFC 6750 §3.1, RFC 9449 §7.1, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToken,
    InvalidDpopProof,
    UseDpopNonce,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl BindingError {
    /// Every metric category, in a stable order.
    pub const CATEGORIES: [&'static str; 6] =
        ["dpop_binding", "dpop_proof", "dpop_replayed", "dpop_replay_unavailable", "dpop_nonce", "cnf"];

    /// The coarse class, for metric names.
    pub fn category(self) -> &'static str {
        use BindingError::*;
        match self {
            BothSchemes | NotAccepted | BearerNotAllowed | Downgrade | TokenUnbound => "dpop_binding",
            Replayed => "dpop_replayed",
            ReplayFull | ReplayUnavailable => "dpop_replay_unavailable",
            NonceMissing | NonceInvalid | NonceUnavailable => "dpop_nonce",
            CnfMalformed | CnfUnsupported | CertificateMissing | CertificateMismatch | CertificateUnbound => {
                "cnf"
            }
            _ => "dpop_proof",
        }
    }

    /// What the refusal says to the client: the proof is bad (`invalid_dpop_proof`, also for a
    /// proof by the wrong key, a replay and a full record: a new proof may pass), the token is
    /// not usable this way (`invalid_token`), the request is malformed, or a nonce is needed.
    pub fn error_code(self) -> ErrorCode {
        use BindingError::*;
        match self {
            BothSchemes => ErrorCode::InvalidRequest,
            NotAccepted | BearerNotAllowed | Downgrade | TokenUnbound => ErrorCode::InvalidToken,
            CnfMalformed | CnfUnsupported | CertificateMissing | CertificateMismatch | CertificateUnbound => {
                ErrorCode::InvalidToken
            }
            NonceMissing | NonceInvalid => ErrorCode::UseDpopNonce,
            _ => ErrorCode::InvalidDpopProof,
        }
    }

    /// The HTTP status: 400 for a malformed request, 503 when the filter itself lacks what it
    /// needs (the client did nothing wrong), 401 otherwise.
    pub fn status(self) -> u32 {
        match self {
            BindingError::BothSchemes => 400,
            BindingError::NonceUnavailable => 503,
            _ => 401,
        }
    }
}

impl std::error::Error for BindingError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_snake_case_and_prefixed() {
        let reasons: Vec<_> = BindingError::ALL.iter().map(|e| e.reason()).collect();
        crate::error::assert_reasons_unique_snake_case(&reasons);
        for e in BindingError::ALL {
            let prefix = if e.category() == "cnf" { "cnf_" } else { "dpop_" };
            assert!(e.reason().starts_with(prefix), "{e}");
            assert!(BindingError::CATEGORIES.contains(&e.category()), "{e}");
        }
    }

    #[test]
    fn codes_and_statuses() {
        use BindingError::*;
        #[rustfmt::skip]
        let cases = [
            (BothSchemes, "invalid_request", 400),
            (Downgrade, "invalid_token", 401),
            (TokenUnbound, "invalid_token", 401),
            (CertificateMismatch, "invalid_token", 401),
            (CnfMalformed, "invalid_token", 401),
            (ProofMissing, "invalid_dpop_proof", 401),
            (AthMismatch, "invalid_dpop_proof", 401),
            (JktMismatch, "invalid_dpop_proof", 401),
            (Replayed, "invalid_dpop_proof", 401),
            (ReplayFull, "invalid_dpop_proof", 401),
            (NonceMissing, "use_dpop_nonce", 401),
            (NonceInvalid, "use_dpop_nonce", 401),
            (NonceUnavailable, "invalid_dpop_proof", 503),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.error_code().as_str(), e.status()), (code, status), "{e}");
        }
    }
}
