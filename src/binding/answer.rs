//! What a refused request is answered with, for providers with DPoP or certificate binding
//! (RFC 6750 §3, RFC 9449 §7.1 and §9): the status, one `WWW-Authenticate` challenge per scheme
//! the provider accepts, and `DPoP-Nonce` when the client needs a nonce.
//!
//! - A provider whose `dpop.mode` is `allowed` accepts both schemes and challenges with both
//!   (`Bearer` and `DPoP`, the latter with `algs`); `required` only with `DPoP`; `disabled` only
//!   with `Bearer`.
//! - The error (`error`, `error_description`) goes on the challenge of the scheme the refused
//!   credential used; on every challenge when the provider does not accept that scheme (a
//!   `Bearer` token to a DPoP-only provider) or when the request itself is malformed
//!   (`invalid_request`). A request without credentials gets the bare challenges.
//! - `strip` (jwt_authn's `strip_failure_response`) leaves out the description and the body.
//!
//! The shell adds these headers to its answer (and exposes `WWW-Authenticate` and `DPoP-Nonce`
//! to CORS); this module only says what they hold.

use super::decide::Scheme;
use super::{BindingError, ErrorCode};
use crate::config::{BindingMode, DpopConfig};

/// A local answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u32,
    /// `www-authenticate` (one per challenge) and `dpop-nonce`, lower case.
    pub headers: Vec<(&'static str, String)>,
    /// The reason, or nothing when stripped.
    pub body: String,
    pub reason: &'static str,
}

/// Why a credential was refused, for its challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The scheme the refused credential came with.
    pub scheme: Scheme,
    pub code: ErrorCode,
    /// The stable reason (`error_description`).
    pub reason: &'a str,
}

/// The `WWW-Authenticate` headers of a provider, the failure (if any) on the right challenge.
/// `realm` must already be safe inside a quoted string (the request URL as `authn` reduces it).
pub fn challenges(
    dpop: &DpopConfig,
    realm: &str,
    failure: Option<&Failure<'_>>,
    strip: bool,
) -> Vec<(&'static str, String)> {
    let offered: &[Scheme] = match dpop.mode {
        BindingMode::Disabled => &[Scheme::Bearer],
        BindingMode::Allowed => &[Scheme::Bearer, Scheme::Dpop],
        BindingMode::Required => &[Scheme::Dpop],
    };
    let everywhere =
        failure.is_some_and(|f| f.code == ErrorCode::InvalidRequest || !offered.contains(&f.scheme));
    offered
        .iter()
        .map(|scheme| {
            let error = failure.filter(|f| everywhere || f.scheme == *scheme);
            ("www-authenticate", challenge(*scheme, dpop, realm, error, strip))
        })
        .collect()
}

/// The answer to a request refused for `error`, its token presented with `scheme`. `nonce`: the
/// current nonce, which a `use_dpop_nonce` refusal must carry and any refusal by a provider with
/// nonces may carry (it saves the client a round trip).
pub fn refusal(
    error: BindingError,
    scheme: Scheme,
    dpop: &DpopConfig,
    realm: &str,
    nonce: Option<String>,
    strip: bool,
) -> Answer {
    let reason = error.reason();
    let failure = Failure { scheme, code: error.error_code(), reason };
    let mut headers = challenges(dpop, realm, Some(&failure), strip);
    if let Some(nonce) = nonce {
        headers.push(("dpop-nonce", nonce));
    }
    let body = if strip { String::new() } else { reason.to_owned() };
    Answer { status: error.status(), headers, body, reason }
}

fn challenge(
    scheme: Scheme,
    dpop: &DpopConfig,
    realm: &str,
    error: Option<&Failure<'_>>,
    strip: bool,
) -> String {
    let mut value = match scheme {
        Scheme::Bearer => format!("Bearer realm=\"{realm}\""),
        Scheme::Dpop => format!("DPoP realm=\"{realm}\""),
    };
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{}\"", error.code.as_str()));
        if !strip {
            value.push_str(&format!(", error_description=\"{}\"", error.reason));
        }
    }
    if scheme == Scheme::Dpop {
        let algs: Vec<&str> = dpop.algorithms.iter().map(|a| a.name()).collect();
        value.push_str(&format!(", algs=\"{}\"", algs.join(" ")));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::Algorithm;

    const REALM: &str = "https://api.example/v1/items";

    fn dpop(mode: BindingMode) -> DpopConfig {
        DpopConfig {
            mode,
            algorithms: [Algorithm::ES256, Algorithm::EdDSA].into_iter().collect(),
            ..DpopConfig::default()
        }
    }

    fn values(headers: &[(&'static str, String)]) -> Vec<String> {
        headers.iter().map(|(name, value)| format!("{name}: {value}")).collect()
    }

    #[test]
    fn no_credentials_get_every_accepted_scheme() {
        let bare = |mode| values(&challenges(&dpop(mode), REALM, None, false));
        assert_eq!(bare(BindingMode::Disabled), [format!("www-authenticate: Bearer realm=\"{REALM}\"")]);
        assert_eq!(
            bare(BindingMode::Allowed),
            [
                format!("www-authenticate: Bearer realm=\"{REALM}\""),
                format!("www-authenticate: DPoP realm=\"{REALM}\", algs=\"ES256 EdDSA\""),
            ]
        );
        assert_eq!(
            bare(BindingMode::Required),
            [format!("www-authenticate: DPoP realm=\"{REALM}\", algs=\"ES256 EdDSA\"")]
        );
    }

    #[test]
    fn refusals() {
        let bearer = format!("www-authenticate: Bearer realm=\"{REALM}\"");
        let dpop_bare = format!("www-authenticate: DPoP realm=\"{REALM}\", algs=\"ES256 EdDSA\"");
        let on = |scheme: &str, code: &str, reason: &str| {
            let algs = if scheme == "DPoP" { ", algs=\"ES256 EdDSA\"" } else { "" };
            format!(
                "www-authenticate: {scheme} realm=\"{REALM}\", error=\"{code}\", error_description=\"{reason}\"{algs}"
            )
        };
        use BindingError::*;
        use BindingMode::*;
        /// Settings, refusal, the credential's scheme, the nonce offered; status and headers.
        type Case<'a> = (BindingMode, BindingError, Scheme, Option<&'a str>, u32, Vec<String>);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            // RFC 9449 §7.1: a bad proof, on the DPoP challenge; the Bearer one stays bare.
            (Allowed, AthMismatch, Scheme::Dpop, None, 401, vec![bearer.clone(), on("DPoP", "invalid_dpop_proof", "dpop_ath_mismatch")]),
            (Required, ProofBadSignature, Scheme::Dpop, None, 401, vec![on("DPoP", "invalid_dpop_proof", "dpop_proof_bad_signature")]),
            // A downgrade is a Bearer credential refused: on the Bearer challenge.
            (Allowed, Downgrade, Scheme::Bearer, None, 401, vec![on("Bearer", "invalid_token", "dpop_downgrade"), dpop_bare.clone()]),
            // A Bearer token to a DPoP-only provider: its scheme is not offered, so on the DPoP one.
            (Required, BearerNotAllowed, Scheme::Bearer, None, 401, vec![on("DPoP", "invalid_token", "dpop_bearer_not_allowed")]),
            // Both schemes in one request: 400, on every challenge.
            (Allowed, BothSchemes, Scheme::Dpop, None, 400, vec![on("Bearer", "invalid_request", "dpop_bearer_and_dpop"), on("DPoP", "invalid_request", "dpop_bearer_and_dpop")]),
            // RFC 9449 §9: use_dpop_nonce with the nonce.
            (Allowed, NonceMissing, Scheme::Dpop, Some("n0nce"), 401, vec![bearer.clone(), on("DPoP", "use_dpop_nonce", "dpop_nonce_missing"), "dpop-nonce: n0nce".into()]),
            // RFC 8705: a certificate-bound Bearer token without its certificate.
            (Disabled, CertificateMismatch, Scheme::Bearer, None, 401, vec![on("Bearer", "invalid_token", "cnf_certificate_mismatch")]),
            (Allowed, NonceUnavailable, Scheme::Dpop, None, 503, vec![bearer, on("DPoP", "invalid_dpop_proof", "dpop_nonce_unavailable")]),
        ];
        for (mode, error, scheme, nonce, status, headers) in cases {
            let answer = refusal(error, scheme, &dpop(mode), REALM, nonce.map(str::to_owned), false);
            assert_eq!(
                (answer.status, answer.reason, answer.body.as_str()),
                (status, error.reason(), error.reason())
            );
            assert_eq!(values(&answer.headers), headers, "{error}");
        }
    }

    #[test]
    fn stripped_answers_keep_the_code_only() {
        let answer =
            refusal(BindingError::JktMismatch, Scheme::Dpop, &dpop(BindingMode::Required), REALM, None, true);
        assert_eq!(answer.body, "");
        assert_eq!(
            values(&answer.headers),
            [format!(
                "www-authenticate: DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", algs=\"ES256 EdDSA\""
            )]
        );
    }

    #[test]
    fn a_token_failure_on_a_dpop_credential_is_challenged_as_dpop() {
        let failure = Failure { scheme: Scheme::Dpop, code: ErrorCode::InvalidToken, reason: "jwt_expired" };
        assert_eq!(
            values(&challenges(&dpop(BindingMode::Allowed), REALM, Some(&failure), false))[1],
            format!(
                "www-authenticate: DPoP realm=\"{REALM}\", error=\"invalid_token\", error_description=\"jwt_expired\", algs=\"ES256 EdDSA\""
            )
        );
    }
}
