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
//! Every answer also exposes `WWW-Authenticate` and `DPoP-Nonce` to CORS
//! (`Access-Control-Expose-Headers`), so a browser client can read its challenge and nonce.

use super::decide::Scheme;
use super::{BindingError, ErrorCode};
use crate::config::{BindingMode, DpopConfig};
use crate::error::{AuthnError, JwtError};

/// The header that lets a browser's script read the challenges and the nonce (CORS).
pub const EXPOSE_HEADERS: (&str, &str) = ("access-control-expose-headers", "WWW-Authenticate, DPoP-Nonce");

/// A local answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u32,
    /// `www-authenticate` (one per challenge), `dpop-nonce` and [`EXPOSE_HEADERS`], lower case.
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
    let failure = Some((scheme, error.error_code()));
    answer(error.status(), error.reason(), failure, dpop, realm, nonce, strip)
}

/// The answer to any refusal about the request's credentials by a provider whose challenges
/// these are: a missing token (bare challenges), a token refused (`invalid_token`, or
/// `insufficient_scope` for a claim or scope it lacks), a binding not met. `None` for the other
/// failures (keys unavailable, routes, client-sent output headers), which keep their own answers.
/// `status`: the status `authn` answers `error` with.
pub fn for_failure(
    error: AuthnError,
    status: u32,
    scheme: Scheme,
    dpop: &DpopConfig,
    realm: &str,
    nonce: Option<String>,
    strip: bool,
) -> Option<Answer> {
    let code = match error {
        AuthnError::Missing => None,
        AuthnError::Binding(e) => Some(e.error_code()),
        AuthnError::Jwt(JwtError::ClaimMismatch | JwtError::InsufficientScope) => {
            Some(ErrorCode::InsufficientScope)
        }
        AuthnError::RepeatedLocation | AuthnError::MalformedLocation | AuthnError::Jwt(_) => {
            Some(ErrorCode::InvalidToken)
        }
        AuthnError::KeysUnavailable
        | AuthnError::UnknownRequirement
        | AuthnError::BadRouteMetadata
        | AuthnError::OutputHeaderSent => return None,
    };
    let failure = code.map(|code| (scheme, code));
    Some(answer(status, error.reason(), failure, dpop, realm, nonce, strip))
}

/// The answer: the challenges (the error on the one of `failure`'s scheme, none without a
/// failure), the nonce, [`EXPOSE_HEADERS`], and the reason as the body unless `strip`.
fn answer(
    status: u32,
    reason: &'static str,
    failure: Option<(Scheme, ErrorCode)>,
    dpop: &DpopConfig,
    realm: &str,
    nonce: Option<String>,
    strip: bool,
) -> Answer {
    let failure = failure.map(|(scheme, code)| Failure { scheme, code, reason });
    let mut headers = challenges(dpop, realm, failure.as_ref(), strip);
    if let Some(nonce) = nonce {
        headers.push(("dpop-nonce", nonce));
    }
    headers.push((EXPOSE_HEADERS.0, EXPOSE_HEADERS.1.to_owned()));
    let body = if strip { String::new() } else { reason.to_owned() };
    Answer { status, headers, body, reason }
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

    /// What every answer ends with.
    const EXPOSED: &str = "access-control-expose-headers: WWW-Authenticate, DPoP-Nonce";

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
            assert_eq!(values(&answer.headers), [headers, vec![EXPOSED.to_owned()]].concat(), "{error}");
        }
    }

    #[test]
    fn stripped_answers_keep_the_code_only() {
        let answer =
            refusal(BindingError::JktMismatch, Scheme::Dpop, &dpop(BindingMode::Required), REALM, None, true);
        assert_eq!(answer.body, "");
        assert_eq!(
            values(&answer.headers),
            [
                format!(
                    "www-authenticate: DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", algs=\"ES256 EdDSA\""
                ),
                EXPOSED.to_owned()
            ]
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

    #[test]
    fn every_credential_failure_of_a_dpop_provider() {
        let bearer = format!("www-authenticate: Bearer realm=\"{REALM}\"");
        let dpop_bare = format!("www-authenticate: DPoP realm=\"{REALM}\", algs=\"ES256 EdDSA\"");
        let on_dpop = |code: &str, reason: &str| {
            format!(
                "www-authenticate: DPoP realm=\"{REALM}\", error=\"{code}\", error_description=\"{reason}\", algs=\"ES256 EdDSA\""
            )
        };
        let run = |error, status, scheme| {
            for_failure(error, status, scheme, &dpop(BindingMode::Allowed), REALM, Some("n".into()), false)
                .map(|a| (a.status, values(&a.headers), a.body))
        };
        let nonce = "dpop-nonce: n".to_owned();
        let with = |challenges: Vec<String>| [challenges, vec![nonce.clone(), EXPOSED.to_owned()]].concat();
        // No credentials: both challenges, bare, and the nonce (it saves the client a round trip).
        assert_eq!(
            run(AuthnError::Missing, 401, Scheme::Bearer),
            Some((401, with(vec![bearer.clone(), dpop_bare.clone()]), "jwt_missing".into()))
        );
        // A token refused on a DPoP credential is challenged as DPoP; a missing scope as such.
        assert_eq!(
            run(AuthnError::Jwt(JwtError::Expired), 401, Scheme::Dpop),
            Some((
                401,
                with(vec![bearer.clone(), on_dpop("invalid_token", "jwt_expired")]),
                "jwt_expired".into()
            ))
        );
        let scope = AuthnError::Jwt(JwtError::InsufficientScope);
        assert_eq!(
            run(scope, 403, Scheme::Dpop).map(|(s, h, _)| (s, h)),
            Some((403, with(vec![bearer.clone(), on_dpop("insufficient_scope", "jwt_insufficient_scope")])))
        );
        let replayed = AuthnError::Binding(BindingError::Replayed);
        assert_eq!(
            run(replayed, 401, Scheme::Dpop).map(|(_, h, _)| h),
            Some(with(vec![bearer, on_dpop("invalid_dpop_proof", "dpop_proof_replayed")]))
        );
        for other in [AuthnError::KeysUnavailable, AuthnError::BadRouteMetadata, AuthnError::OutputHeaderSent]
        {
            assert_eq!(run(other, 503, Scheme::Dpop), None, "{other}");
        }
    }
}
