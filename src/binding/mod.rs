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
//! - `memo`: what a client's proofs repeat (its key, its token's hash), worked out once per VM;
//! - `decide`: whether the token's binding is met (scheme, proof key, certificate, nonce);
//! - `nonce`: stateless server nonces (§9) under a secret every worker shares;
//! - `replay`: the process-wide record of proofs seen (a `jti` is accepted once per window);
//! - `answer`: the §7.1 answers (status, `WWW-Authenticate` challenges, `DPoP-Nonce`);
//! - `request`: all of it for one request, as the decision (`authn`) runs it.
//!
//! Settings come from the configuration (`config::TokenBinding`); every refusal is a
//! [`BindingError`] with a stable reason, its OAuth error code and its status.

pub mod answer;
pub mod cnf;
pub mod decide;
pub mod memo;
pub mod nonce;
pub mod proof;
pub mod replay;
pub mod request;
pub mod thumbprint;

#[cfg(test)]
mod testing;

pub use crate::error::BindingError;

/// The OAuth error code a refusal is answered with (RFC 6750 §3.1, RFC 9449 §7.1, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToken,
    InvalidDpopProof,
    UseDpopNonce,
    /// A token without a claim or scope the provider requires (RFC 6750 §3.1).
    InsufficientScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }
}

impl BindingError {
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
