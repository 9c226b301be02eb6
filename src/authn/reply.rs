//! The local answer to a refused request: its status, its `WWW-Authenticate` challenges (RFC 6750,
//! and RFC 9449's for a provider that accepts DPoP) and its body.

use super::inputs::{Env, Request};
use crate::binding::answer;
use crate::binding::decide::Scheme;
use crate::binding::request::Bindings;
use crate::config::{self, Config};
use crate::error::{AuthnError, JwtError};
use crate::extract;
use crate::identity::Entries;

/// A local answer instead of forwarding.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The stable reason, for logs.
    pub reason: &'static str,
    /// Filter-state entries to write before answering (`failed_status_in_metadata`).
    pub filter_state: Entries,
}

/// Seconds a client is told to wait when keys are unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The answer to a refused request: with a provider asked that accepts DPoP, its challenges
/// (RFC 9449 §7.1: the error on the scheme the credential came with, `algs`, and its current
/// nonce when it wants nonces) for a failure about the credentials; else `reply`.
pub(super) fn refusal(
    config: &Config,
    env: &Env<'_>,
    bindings: &Bindings,
    error: AuthnError,
    request: &Request<'_>,
) -> Reply {
    let strip = config.strip_failure_response;
    let challenger = bindings.challenger().and_then(|id| Some((id, config.providers.get(id)?)));
    let Some((id, provider)) = challenger else { return reply(error, request, strip) };
    let scheme = if extract::has_dpop_credential(request.headers) { Scheme::Dpop } else { Scheme::Bearer };
    let nonce = env.binding.nonces(id).map(|n| n.current(request.now_seconds()));
    let dpop = &provider.binding.dpop;
    match answer::for_failure(error, status(error), scheme, dpop, &realm(request), nonce, strip) {
        Some(a) => Reply {
            status: a.status,
            headers: a.headers.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
            body: a.body,
            reason: a.reason,
            filter_state: Entries::default(),
        },
        None => reply(error, request, strip),
    }
}

/// The local answer for a failure: 401 with an RFC 6750 challenge, 403 for an audience (as
/// jwt_authn) or a missing claim or scope (`insufficient_scope`), 503 when keys are unavailable
/// (the client did nothing wrong), 400 for a client-sent output header (when rejected), and 403
/// without a challenge for a route this filter cannot follow (as jwt_authn's wrong
/// `requirement_name`: the operator's configuration, not the client's token, is at fault).
/// `strip` (jwt_authn's `strip_failure_response`) leaves out the reason.
pub(super) fn reply(error: AuthnError, request: &Request<'_>, strip: bool) -> Reply {
    let realm = realm(request);
    let reason = error.reason();
    let body = if strip { String::new() } else { reason.to_owned() };
    let challenge = |code: &str| match strip {
        true => format!("Bearer realm=\"{realm}\", error=\"{code}\""),
        false => format!("Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{reason}\""),
    };
    let header = match error {
        AuthnError::KeysUnavailable => Some(("retry-after", RETRY_AFTER_SECONDS.to_string())),
        AuthnError::UnknownRequirement | AuthnError::BadRouteMetadata => None,
        // RFC 6750 §3.1: no error code when the request carried no credentials.
        AuthnError::Missing => Some(("www-authenticate", format!("Bearer realm=\"{realm}\""))),
        AuthnError::OutputHeaderSent => Some(("www-authenticate", challenge("invalid_request"))),
        AuthnError::Binding(e) => Some(("www-authenticate", challenge(e.error_code().as_str()))),
        AuthnError::Jwt(JwtError::ClaimMismatch | JwtError::InsufficientScope) => {
            Some(("www-authenticate", challenge("insufficient_scope")))
        }
        _ => Some(("www-authenticate", challenge("invalid_token"))),
    };
    let headers = header.map(|(name, value)| (name.to_owned(), value)).into_iter().collect();
    Reply { status: status(error), headers, body, reason, filter_state: Entries::default() }
}

/// The status a failure is answered with.
pub(super) fn status(error: AuthnError) -> u32 {
    match error {
        AuthnError::KeysUnavailable => 503,
        AuthnError::OutputHeaderSent => 400,
        AuthnError::Binding(e) => e.status(),
        AuthnError::UnknownRequirement
        | AuthnError::BadRouteMetadata
        | AuthnError::Jwt(
            JwtError::AudienceNotAllowed
            | JwtError::MissingAudience
            | JwtError::ClaimMismatch
            | JwtError::InsufficientScope,
        ) => 403,
        _ => 401,
    }
}

/// `scheme://authority/path` of the request (as jwt_authn), without the query, reduced to
/// characters that are safe inside a quoted header parameter.
fn realm(request: &Request<'_>) -> String {
    let scheme = request.header(":scheme").unwrap_or("http");
    let authority = request.header(":authority").unwrap_or("");
    let path = config::path_only(request.path());
    format!("{scheme}://{authority}{path}")
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect()
}
