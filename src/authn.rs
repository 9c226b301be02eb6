//! One request's authentication decision, as plain data: which rule applies, which tokens are where,
//! whether they verify, and what the filter must then do (let the request go on with some headers
//! changed, answer it locally, or hold it until keys arrive). The shell only reads the request and
//! carries the decision out.

use crate::cache::{Cached, TokenCache};
use crate::config::{Config, Provider, ProviderId, Rule};
use crate::crypto::Crypto;
use crate::error::{AuthnError, JwtError};
use crate::extract::{self, FoundToken, Location};
use crate::jwks::KeySet;
use crate::policy::Policy;
use crate::requirement::{self, ProviderOutcome, Verdict};
use crate::verify::{self, VerifiedJwt};
use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

/// What the filter knows about a provider's keys at this moment.
#[derive(Clone, Copy)]
pub enum KeyState<'a> {
    /// Keys to verify with, and what a token naming a `kid` they lack may do.
    Ready(&'a KeySet, UnknownKid),
    /// None yet (first fetch outstanding or failing): the request may wait.
    Pending,
    /// None usable and no point in waiting.
    Unavailable,
}

/// What a token whose `kid` is not in the key set may do (see `fetch` for the refetch rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKid {
    /// Refused at once (local keys, or this interval's refetch is spent).
    Refuse,
    /// A refetch is under way: wait for it.
    Wait,
    /// Ask for a refetch and wait for it.
    Refetch,
}

/// What the VM lends the decision: its keys, its signature backend and its token caches.
pub struct Env<'a> {
    pub keys: &'a dyn Fn(ProviderId) -> KeyState<'a>,
    pub crypto: &'a dyn Crypto,
    /// One per provider, by id; an empty slice caches nothing.
    pub caches: &'a mut [TokenCache],
}

/// The parts of a request the decision reads. Header names are lower case; pseudo-headers
/// (`:path`, `:authority`, ...) are among them, as proxy-wasm gives them.
pub struct Request<'a> {
    pub headers: &'a [(String, String)],
    /// Whether the request may wait for a provider's first keys (else: 503 at once).
    pub may_wait_for_keys: bool,
    /// Whether the request may wait for an unknown-`kid` refetch (else: refused at once).
    pub may_wait_for_kid: bool,
    /// Unix milliseconds.
    pub now_ms: u64,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn now_seconds(&self) -> i64 {
        i64::try_from(self.now_ms / 1000).unwrap_or(i64::MAX)
    }

    fn path(&self) -> &str {
        self.header(":path").unwrap_or("/")
    }
}

/// Header changes for a request that goes on upstream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Removed first: configured output headers the client may have forged, and stripped tokens.
    pub remove: Vec<String>,
    /// Then set (replacing any value).
    pub set: Vec<(String, String)>,
}

/// A local answer instead of forwarding.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The stable reason, for logs and metrics.
    pub reason: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Mutations),
    Deny(Reply),
    /// Keys for a provider the answer depends on are not there yet: hold the request.
    Wait(Wait),
}

/// Why a request is held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wait {
    /// Providers whose key set should be refetched for an unknown `kid` (the shell asks, rate-limited).
    pub refetch: Vec<ProviderId>,
    /// The wait is for a `kid` refetch only (bounded by the fetch timeout, not the startup hold).
    pub for_kid: bool,
}

/// Seconds a client is told to wait when keys are unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// Decides what to do with one request.
pub fn decide(config: &Config, env: &mut Env<'_>, request: &Request<'_>) -> Decision {
    let mut mutations = Mutations { remove: output_headers(config), set: Vec::new() };
    let Some(requirement) = config.rule_for(request.path()).and_then(|r: &Rule| r.requires.as_ref()) else {
        return Decision::Allow(mutations);
    };
    let mut checked = Checked::default();
    let verdict = requirement::evaluate(requirement, &config.providers, &mut |id, audiences| {
        checked.outcome(config, env, request, id, audiences)
    });
    match verdict {
        Verdict::Allow { verified } => {
            for id in verified {
                if let (Some(provider), Some(tokens)) = (config.providers.get(id), checked.verified.get(&id))
                {
                    forward(provider, tokens, request, &mut mutations);
                }
            }
            Decision::Allow(mutations)
        }
        Verdict::Deny(error) => Decision::Deny(reply(error, request)),
        Verdict::Pending(_) => Decision::Wait(checked.wait),
    }
}

/// Every header a provider writes upstream: always removed from the client's request first, so the
/// upstream can trust whatever value it sees.
fn output_headers(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in &config.providers {
        let claim_headers = p.claim_to_headers.iter().map(|c| &c.header_name);
        for name in p.forward_payload_header.iter().chain(claim_headers) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Per-request memo of provider checks, keeping the verified tokens for forwarding.
#[derive(Default)]
struct Checked {
    wait: Wait,
    verified: HashMap<ProviderId, Vec<(FoundToken, Rc<VerifiedJwt>)>>,
}

impl Checked {
    /// One provider's outcome over every token in its locations, with the precedence
    /// `requirement` documents: a failure, then waiting for keys, then tokens of another issuer,
    /// then verified. Keys are looked at only for tokens that passed every keyless check; a token
    /// in the provider's cache skips the signature (its claims are checked again).
    fn outcome(
        &mut self,
        config: &Config,
        env: &mut Env<'_>,
        request: &Request<'_>,
        id: ProviderId,
        audiences: Option<&[String]>,
    ) -> ProviderOutcome {
        let Some(provider) = config.providers.get(id) else {
            return ProviderOutcome::Failed(AuthnError::KeysUnavailable);
        };
        let found = match extract::extract(&provider.locations, request.headers, request.path()) {
            Ok(found) if found.is_empty() => return ProviderOutcome::Missing,
            Ok(found) => found,
            Err(e) => return ProviderOutcome::Failed(e),
        };
        let policy = match audiences {
            Some(a) => Cow::Owned(Policy { audiences: a.to_vec(), ..provider.policy.clone() }),
            None => Cow::Borrowed(&provider.policy),
        };
        let now = request.now_seconds();
        let mut cache = env.caches.get_mut(id);
        let mut verified = Vec::with_capacity(found.len());
        let mut other_issuer = Vec::new();
        let mut decoded = Vec::new();
        for token in &found {
            match cache.as_deref().and_then(|c| c.get(&token.token, request.now_ms)) {
                Some(Cached::Verified(jwt)) => match jwt.claims.check(&policy, now) {
                    // Keys past max_stale vouch for nothing, not even tokens they verified before.
                    Ok(()) if matches!((env.keys)(id), KeyState::Unavailable) => {
                        return ProviderOutcome::Failed(AuthnError::KeysUnavailable);
                    }
                    Ok(()) => verified.push((token.clone(), jwt)),
                    Err(e) => return ProviderOutcome::Failed(AuthnError::Jwt(e)),
                },
                Some(Cached::Refused(e)) => return ProviderOutcome::Failed(AuthnError::Jwt(e)),
                None => match verify::decode(&token.token, &policy, now) {
                    Ok(d) => decoded.push((token, d)),
                    Err(JwtError::IssuerNotAllowed) => other_issuer.push(token.location.clone()),
                    Err(e) => return ProviderOutcome::Failed(AuthnError::Jwt(e)),
                },
            }
        }
        if !decoded.is_empty() {
            let (key_set, unknown_kid) = match (env.keys)(id) {
                KeyState::Ready(key_set, unknown_kid) => (key_set, unknown_kid),
                KeyState::Pending if request.may_wait_for_keys => return ProviderOutcome::Pending,
                KeyState::Pending | KeyState::Unavailable => {
                    return ProviderOutcome::Failed(AuthnError::KeysUnavailable);
                }
            };
            for (token, d) in decoded {
                match finish(provider, d, env.crypto, key_set) {
                    Ok(jwt) => {
                        let jwt = Rc::new(jwt);
                        if let Some(c) = cache.as_deref_mut() {
                            c.insert_verified(&token.token, Rc::clone(&jwt));
                        }
                        verified.push((token.clone(), jwt));
                    }
                    Err(JwtError::UnknownKid)
                        if request.may_wait_for_kid && unknown_kid != UnknownKid::Refuse =>
                    {
                        self.wait.for_kid = true;
                        if unknown_kid == UnknownKid::Refetch && !self.wait.refetch.contains(&id) {
                            self.wait.refetch.push(id);
                        }
                        return ProviderOutcome::Pending;
                    }
                    Err(e) => {
                        if let Some(c) = cache.as_deref_mut() {
                            c.insert_refused(&token.token, e, request.now_ms);
                        }
                        return ProviderOutcome::Failed(AuthnError::Jwt(e));
                    }
                }
            }
        }
        self.verified.insert(id, verified);
        if other_issuer.is_empty() {
            ProviderOutcome::Verified
        } else {
            ProviderOutcome::OtherIssuer(other_issuer)
        }
    }
}

/// The signature, then the provider's `subjects` (jwt_authn checks it on the verified token).
fn finish(
    provider: &Provider,
    decoded: verify::Decoded<'_>,
    crypto: &dyn Crypto,
    keys: &KeySet,
) -> Result<VerifiedJwt, JwtError> {
    let jwt = decoded.check_signature(crypto, keys)?;
    match &provider.subjects {
        Some(subjects) if !subjects.allows(jwt.claims.sub.as_deref()) => Err(JwtError::SubjectNotAllowed),
        _ => Ok(jwt),
    }
}

/// Header changes for a provider whose tokens verified: strip the tokens unless `forward`, then
/// the payload and claim headers.
fn forward(
    provider: &Provider,
    tokens: &[(FoundToken, Rc<VerifiedJwt>)],
    request: &Request<'_>,
    m: &mut Mutations,
) {
    for (found, jwt) in tokens {
        if !provider.forward {
            strip(&found.location, request, m);
        }
        if let Some(name) = &provider.forward_payload_header {
            m.set.push((
                name.clone(),
                payload_header_value(&jwt.payload_b64, provider.pad_forward_payload_header),
            ));
        }
        for c in &provider.claim_to_headers {
            if let Some(value) = jwt.claims.all.get(&c.claim_name).and_then(claim_header_value) {
                m.set.push((c.header_name.clone(), value));
            }
        }
    }
}

fn strip(location: &Location, request: &Request<'_>, m: &mut Mutations) {
    match location {
        Location::Header(name) => m.remove.push(name.clone()),
        Location::Param(name) => {
            let path =
                extract::strip_param(&current(m, ":path").unwrap_or_else(|| request.path().to_owned()), name);
            m.set.push((":path".to_owned(), path));
        }
        Location::Cookie(name) => {
            let cookies = current(m, "cookie").or_else(|| {
                let all: Vec<&str> =
                    request.headers.iter().filter(|(n, _)| n == "cookie").map(|(_, v)| v.as_str()).collect();
                Some(all.join("; "))
            });
            m.remove.push("cookie".to_owned());
            m.set.retain(|(n, _)| n != "cookie");
            if let Some(rest) = cookies.and_then(|c| extract::strip_cookie(&c, name)) {
                m.set.push(("cookie".to_owned(), rest));
            }
        }
    }
}

/// The value a header will have after the mutations so far, if they set it.
fn current(m: &Mutations, name: &str) -> Option<String> {
    m.set.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

fn payload_header_value(payload_b64: &str, pad: bool) -> String {
    let mut value = payload_b64.to_owned();
    if pad {
        while !value.len().is_multiple_of(4) {
            value.push('=');
        }
    }
    value
}

/// A claim as a header value: strings as they are, numbers and booleans as JSON text; other
/// values are not forwarded. Control characters never reach a header.
fn claim_header_value(value: &serde_json::Value) -> Option<String> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

/// The local answer for a failure: 401 (403 for audience) with an RFC 6750 challenge, or 503 when
/// keys are unavailable (the client did nothing wrong).
fn reply(error: AuthnError, request: &Request<'_>) -> Reply {
    let realm = realm(request);
    let reason = error.reason();
    let (status, challenge) = match error {
        AuthnError::KeysUnavailable => {
            return Reply {
                status: 503,
                headers: vec![("retry-after".to_owned(), RETRY_AFTER_SECONDS.to_string())],
                body: reason.to_owned(),
                reason,
            };
        }
        // RFC 6750 §3.1: no error code when the request carried no credentials.
        AuthnError::Missing => (401, format!("Bearer realm=\"{realm}\"")),
        AuthnError::Jwt(JwtError::AudienceNotAllowed | JwtError::MissingAudience) => {
            (403, invalid_token(&realm, reason))
        }
        _ => (401, invalid_token(&realm, reason)),
    };
    Reply {
        status,
        headers: vec![("www-authenticate".to_owned(), challenge)],
        body: reason.to_owned(),
        reason,
    }
}

fn invalid_token(realm: &str, reason: &str) -> String {
    format!("Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{reason}\"")
}

/// `scheme://authority/path` of the request (as jwt_authn), without the query, reduced to
/// characters that are safe inside a quoted header parameter.
fn realm(request: &Request<'_>) -> String {
    let scheme = request.header(":scheme").unwrap_or("http");
    let authority = request.header(":authority").unwrap_or("");
    let path = request.path().split(['?', '#']).next().unwrap_or("/");
    format!("{scheme}://{authority}{path}")
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect()
}
