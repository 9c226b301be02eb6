//! One request's authentication decision, as plain data: which rule applies, which tokens are where,
//! whether they verify, and what the filter must then do (let the request go on with some headers
//! changed, answer it locally, or hold it until keys arrive). The shell only reads the request,
//! carries the decision out and turns the decision's events into metrics.

use crate::authz;
use crate::binding::answer;
use crate::binding::decide::Scheme;
use crate::binding::request::{BindingHost, Bindings, Presentation, RequestParts};
use crate::cache::{Cached, TokenCache};
use crate::config::{
    self, ClientOutputHeaders, Config, NamedRequirement, Provider, ProviderId, Requirement, STATUS_HEADER,
};
use crate::crypto::Crypto;
use crate::error::{AuthnError, BindingError, JwtError};
use crate::extract::{self, FoundToken, Location};
use crate::forward::{self, Mutations};
use crate::identity::Entries;
use crate::jwks::KeySet;
use crate::policy::Policy;
use crate::requirement::{self, ProviderOutcome, Verdict};
use crate::route::RouteChoice;
use crate::shared_record::{Digester, KeySetId, TokenDigest, TokenRecord};
use crate::verify::{self, Decoded, VerifiedJwt};
use std::rc::Rc;

/// What the filter knows about a provider's keys at this moment.
#[derive(Clone, Copy)]
pub enum KeyState<'a> {
    /// Keys to verify with.
    Ready(ReadyKeys<'a>),
    /// None yet (first fetch outstanding or failing): the request may wait.
    Pending,
    /// None usable and no point in waiting.
    Unavailable,
}

#[derive(Clone, Copy)]
pub struct ReadyKeys<'a> {
    pub keys: &'a KeySet,
    /// What a token naming a `kid` these keys lack may do.
    pub unknown_kid: UnknownKid,
    /// The keys are past their freshness (refreshes failing), served within `max_stale`.
    pub stale: bool,
    /// Exactly which key set these are, for the shared record of verified tokens.
    pub id: KeySetId,
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

/// What the VM lends the decision: its keys, its signature backend, its token caches, the
/// process-wide record of verified tokens, and a log of what happened (for metrics).
///
/// A token is looked up in the VM's cache first (no host call), then in the shared record (one
/// read), and only then verified (and written to both).
pub struct Env<'a> {
    pub keys: &'a dyn Fn(ProviderId) -> KeyState<'a>,
    pub crypto: &'a dyn Crypto,
    /// One per provider, by id; an empty slice caches nothing.
    pub caches: &'a mut [TokenCache],
    /// Names tokens in the caches and the shared record.
    pub digester: &'a Digester,
    pub shared: &'a mut dyn TokenRecord,
    /// The replay record, nonce secret and client certificate, for providers with a binding on
    /// (never asked for the others).
    pub binding: &'a dyn BindingHost,
    pub events: &'a mut Vec<Event>,
}

/// Something worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The request may go on (after a requirement).
    Allowed,
    /// The request was (or, in report mode, would have been) refused.
    Denied(AuthnError),
    /// Report mode let a request through that enforce mode would refuse.
    Reported,
    /// A CORS preflight passed without a token.
    CorsBypassed,
    /// This provider's tokens all verified.
    Verified(ProviderId),
    /// This provider refused a token.
    Refused(ProviderId, AuthnError),
    CacheHit(ProviderId),
    CacheMiss(ProviderId),
    /// A token's signature was checked with some key (not counted: no key to try).
    SignatureChecked(ProviderId),
    /// Another VM had verified the token: its signature was not checked again.
    SharedHit(ProviderId),
    /// A token verified with keys past their freshness.
    StaleServed(ProviderId),
}

/// The parts of a request the decision reads. Header names are lower case; pseudo-headers
/// (`:path`, `:method`, `:authority`, ...) are among them, as proxy-wasm gives them.
pub struct Request<'a> {
    pub headers: &'a [(&'a str, &'a str)],
    /// Whether the request may wait for a provider's first keys (else: 503 at once).
    pub may_wait_for_keys: bool,
    /// Whether the request may wait for an unknown-`kid` refetch (else: refused at once).
    pub may_wait_for_kid: bool,
    /// Unix milliseconds.
    pub now_ms: u64,
    /// What the matched route's metadata says (`Rules` when routes are not read).
    pub route: &'a RouteChoice,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn now_seconds(&self) -> i64 {
        i64::try_from(self.now_ms / 1000).unwrap_or(i64::MAX)
    }

    fn path(&self) -> &str {
        self.header(":path").unwrap_or("/")
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method` (as jwt_authn).
    fn is_cors_preflight(&self) -> bool {
        self.header(":method") == Some("OPTIONS")
            && self.header("origin").is_some()
            && self.header("access-control-request-method").is_some()
    }
}

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

#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'c> {
    Allow(Mutations<'c>),
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

/// Decides what to do with one request. A `Wait` records no events: the held request is decided
/// again later and counted then, once.
pub fn decide<'c>(config: &'c Config, env: &mut Env<'_>, request: &Request<'_>) -> Decision<'c> {
    let remove = config.output_headers.iter().map(String::as_str).collect();
    let mut mutations = Mutations { remove, ..Mutations::default() };
    let (requirement, report) = match requirement_for(config, request) {
        Ok(Some(chosen)) => chosen,
        Ok(None) => return Decision::Allow(mutations),
        Err(error) => {
            env.events.push(Event::Denied(error));
            if config.reports_only {
                return reported(error, mutations, Entries::default(), env);
            }
            return Decision::Deny(reply(error, request, config.strip_failure_response));
        }
    };
    if config.bypass_cors_preflight && request.is_cors_preflight() {
        env.events.push(Event::CorsBypassed);
        return Decision::Allow(mutations);
    }
    let events_before = env.events.len();
    let mut checked = Checked::default();
    let verdict = requirement::evaluate(requirement, &config.providers, &mut |id, audiences| {
        checked.outcome(config, env, request, id, audiences)
    });
    let verdict = record_proofs(&mut checked, env, verdict, events_before);
    let failures = env.events.get(events_before..).unwrap_or_default();
    let filter_state = failed_status(config, failures);
    match verdict {
        Verdict::Allow { verified } => {
            env.events.push(Event::Allowed);
            mutations.filter_state = filter_state;
            for id in verified {
                if let (Some(provider), Some(tokens)) = (config.providers.get(id), checked.verified_of(id)) {
                    forward::forward(provider, tokens, request.headers, &mut mutations);
                    for (_, jwt) in tokens {
                        mutations.filter_state.verified(&provider.identity, jwt);
                    }
                }
            }
            if report {
                mutations.set.push((STATUS_HEADER, "ok".to_owned()));
            }
            if let Some(nonce) = checked.binding.offer_nonce() {
                mutations.response.push(("dpop-nonce", nonce.to_owned()));
                mutations.response.push((answer::EXPOSE_HEADERS.0, answer::EXPOSE_HEADERS.1.to_owned()));
            }
            Decision::Allow(mutations)
        }
        Verdict::Deny(error) => {
            env.events.push(Event::Denied(error));
            if report {
                return reported(error, mutations, filter_state, env);
            }
            Decision::Deny(Reply { filter_state, ..refusal(config, env, &checked.binding, error, request) })
        }
        Verdict::Pending(_) => {
            env.events.truncate(events_before);
            Decision::Wait(checked.wait)
        }
    }
}

/// The DPoP proofs of an allowed request are recorded now, last (`binding::request`): a replayed
/// proof (or a record that cannot vouch for it) refuses the request, also where the requirement
/// would have let a failed token through (`allow_missing_or_failed`): a request never passes
/// with a proof it did not have the right to use. The provider's token then counts as refused.
fn record_proofs(
    checked: &mut Checked,
    env: &mut Env<'_>,
    verdict: Verdict,
    events_before: usize,
) -> Verdict {
    let Verdict::Allow { .. } = verdict else { return verdict };
    let Err((id, e)) = checked.binding.record(env.binding) else { return verdict };
    let verified = env.events.iter().skip(events_before).position(|ev| *ev == Event::Verified(id));
    if let Some(at) = verified {
        env.events.remove(events_before + at);
    }
    let error = AuthnError::Binding(e);
    env.events.push(Event::Refused(id, error));
    Verdict::Deny(error)
}

/// What report mode does with a refusal: the request goes on, and the upstream learns why it
/// would have been refused.
fn reported<'c>(
    error: AuthnError,
    mut mutations: Mutations<'c>,
    filter_state: Entries,
    env: &mut Env<'_>,
) -> Decision<'c> {
    env.events.push(Event::Reported);
    mutations.set.push((STATUS_HEADER, error.reason().to_owned()));
    mutations.filter_state = filter_state;
    Decision::Allow(mutations)
}

/// The requirement for this request and whether it only reports: the route's when it carries
/// metadata (see `route`), else the first matching rule's. `None`: no token needed.
fn requirement_for<'c>(
    config: &'c Config,
    request: &Request<'_>,
) -> Result<Option<(&'c Requirement, bool)>, AuthnError> {
    // Opted in for routes that match on these headers: Envoy matched the route with the client's
    // copy, and routes the request again once the filter has removed it (see `route`).
    let reject = config.output_headers_from_client == ClientOutputHeaders::Reject;
    if reject && config.output_headers.iter().any(|name| request.header(name).is_some()) {
        return Err(AuthnError::OutputHeaderSent);
    }
    let applies = match request.route {
        RouteChoice::Rules => config.rule_for(request.path()).map(|r| (&r.requires, r.reports)),
        RouteChoice::Disabled => None,
        RouteChoice::Requirement(name) => Some(
            named(config, name).map(|n| (&n.requires, n.reports)).ok_or(AuthnError::UnknownRequirement)?,
        ),
        RouteChoice::Invalid(_) => return Err(AuthnError::BadRouteMetadata),
    };
    Ok(applies.and_then(|(requires, reports)| Some((requires.as_ref()?, reports))))
}

fn named<'c>(config: &'c Config, name: &str) -> Option<&'c NamedRequirement> {
    config.requirement_map.iter().find(|n| n.name == name)
}

/// Why this configuration cannot follow the route's metadata (for the operator's log), if it
/// cannot: requests on such a route are refused (see `reply`).
pub fn route_problem(config: &Config, route: &RouteChoice) -> Option<String> {
    match route {
        RouteChoice::Invalid(why) => Some(why.clone()),
        RouteChoice::Requirement(name) if named(config, name).is_none() => {
            Some(format!("requirement_name `{name}` is not in requirement_map"))
        }
        RouteChoice::Rules | RouteChoice::Disabled | RouteChoice::Requirement(_) => None,
    }
}

/// `failed_status_in_metadata` entries for the tokens refused during this decision.
fn failed_status(config: &Config, events: &[Event]) -> Entries {
    let mut entries = Entries::default();
    for event in events {
        if let Event::Refused(id, error) = event
            && let Some(provider) = config.providers.get(*id)
        {
            entries.failed(&provider.identity, status(*error), error.reason());
        }
    }
    entries
}

/// A verified token and where it was found.
type VerifiedAt<'c> = (Location<'c>, Rc<VerifiedJwt>);

/// Per-request memo of provider checks: the verified tokens for forwarding, and what a held
/// request waits for.
#[derive(Default)]
struct Checked<'c> {
    wait: Wait,
    /// By provider, in asking order (a handful at most: a lookup is a short scan).
    verified: Vec<(ProviderId, Vec<VerifiedAt<'c>>)>,
    /// Sender constraints: proofs to record, the nonce to offer, whose challenges to answer with.
    binding: Bindings,
}

/// Tokens of one provider sorted by the keyless checks.
#[derive(Default)]
struct Triage<'t, 'c> {
    verified: Vec<VerifiedAt<'c>>,
    other_issuer: Vec<Location<'c>>,
    decoded: Vec<(&'t FoundToken<'t, 'c>, TokenDigest, Decoded<'t>)>,
}

impl<'c> Checked<'c> {
    /// One provider's outcome over every token in its locations, with the precedence
    /// `requirement` documents: a failure, then waiting for keys, then tokens of another issuer,
    /// then verified.
    fn outcome(
        &mut self,
        config: &'c Config,
        env: &mut Env<'_>,
        request: &Request<'_>,
        id: ProviderId,
        audiences: Option<&[String]>,
    ) -> ProviderOutcome<'c> {
        let Some(provider) = config.providers.get(id) else {
            return ProviderOutcome::Failed(AuthnError::KeysUnavailable);
        };
        self.binding.asked(id, &provider.binding);
        let found = match extract::extract(&provider.locations, request.headers, request.path()) {
            Ok(found) if found.is_empty() => return ProviderOutcome::Missing,
            Ok(found) => found,
            Err(e) => return refused(env, id, e),
        };
        let audiences = audiences.unwrap_or(&provider.policy.audiences);
        let mut triage = match triage(env, request, id, &provider.policy, audiences, &found) {
            Ok(triage) => triage,
            Err(e) => return refused(env, id, e),
        };
        if !triage.decoded.is_empty() {
            let outcome = self.verify_signatures(provider, env, request, id, &mut triage);
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
        if provider.binding.enabled()
            && let Err(e) = self.check_bindings(provider, env, request, id, &found, &triage.verified)
        {
            return refused(env, id, AuthnError::Binding(e));
        }
        self.keep_verified(id, triage.verified);
        if triage.other_issuer.is_empty() {
            env.events.push(Event::Verified(id));
            ProviderOutcome::Verified
        } else {
            ProviderOutcome::OtherIssuer(triage.other_issuer)
        }
    }

    /// Keeps provider `id`'s verified tokens (replacing those of an earlier ask, with other
    /// audiences: the same tokens).
    fn keep_verified(&mut self, id: ProviderId, tokens: Vec<VerifiedAt<'c>>) {
        match self.verified.iter_mut().find(|(i, _)| *i == id) {
            Some((_, kept)) => *kept = tokens,
            None => self.verified.push((id, tokens)),
        }
    }

    fn verified_of(&self, id: ProviderId) -> Option<&[VerifiedAt<'c>]> {
        self.verified.iter().find(|(i, _)| *i == id).map(|(_, tokens)| tokens.as_slice())
    }

    /// The sender constraint of each verified token (a cache hit too: a proof is new on every
    /// request), for a provider with a binding on.
    fn check_bindings(
        &mut self,
        provider: &Provider,
        env: &Env<'_>,
        request: &Request<'_>,
        id: ProviderId,
        found: &[FoundToken<'_, 'c>],
        verified: &[VerifiedAt<'c>],
    ) -> Result<(), BindingError> {
        let parts = RequestParts { headers: request.headers, now: request.now_seconds() };
        for (location, jwt) in verified {
            let scheme = if *location == Location::Dpop { Scheme::Dpop } else { Scheme::Bearer };
            let token = found.iter().find(|t| t.location == *location).map_or("", |t| &*t.token);
            let token = Presentation { token, scheme, claims: &jwt.claims };
            self.binding.check(env.binding, env.crypto, id, &provider.binding, &token, &parts)?;
        }
        Ok(())
    }

    /// The signature and the provider's claim requirements for tokens that passed the keyless
    /// checks; `None` when all verified (moved into `triage.verified`).
    fn verify_signatures(
        &mut self,
        provider: &Provider,
        env: &mut Env<'_>,
        request: &Request<'_>,
        id: ProviderId,
        triage: &mut Triage<'_, 'c>,
    ) -> Option<ProviderOutcome<'c>> {
        let ready = match (env.keys)(id) {
            KeyState::Ready(ready) => ready,
            KeyState::Pending if request.may_wait_for_keys => return Some(ProviderOutcome::Pending),
            KeyState::Pending | KeyState::Unavailable => {
                return Some(refused(env, id, AuthnError::KeysUnavailable));
            }
        };
        for (token, digest, decoded) in std::mem::take(&mut triage.decoded) {
            let result = signature(env, id, &ready, digest, decoded)
                .and_then(|jwt| authz::check(provider, &jwt.claims).map(|()| Rc::new(jwt)));
            let cache = env.caches.get_mut(id);
            let token_len = token.token.len();
            match result {
                Ok(jwt) => {
                    if let Some(c) = cache {
                        c.insert_verified(digest, token_len, Rc::clone(&jwt));
                    }
                    if ready.stale {
                        env.events.push(Event::StaleServed(id));
                    }
                    triage.verified.push((token.location, jwt));
                }
                Err(JwtError::UnknownKid)
                    if request.may_wait_for_kid && ready.unknown_kid != UnknownKid::Refuse =>
                {
                    self.wait.for_kid = true;
                    if ready.unknown_kid == UnknownKid::Refetch && !self.wait.refetch.contains(&id) {
                        self.wait.refetch.push(id);
                    }
                    return Some(ProviderOutcome::Pending);
                }
                Err(e) => {
                    if let Some(c) = cache {
                        c.insert_refused(digest, token_len, e, request.now_ms);
                    }
                    return Some(refused(env, id, AuthnError::Jwt(e)));
                }
            }
        }
        None
    }
}

/// The signature of a decoded token: known good from the shared record (another VM verified this
/// exact token under this exact key set, see `shared_record`), else checked here and, when good,
/// recorded there. Only the signature is skipped: `decode` has checked the form, header and
/// claims of this request as for any token.
fn signature(
    env: &mut Env<'_>,
    id: ProviderId,
    ready: &ReadyKeys<'_>,
    digest: TokenDigest,
    decoded: Decoded<'_>,
) -> Result<VerifiedJwt, JwtError> {
    if env.shared.verified(id, &ready.id, digest) {
        env.events.push(Event::SharedHit(id));
        return Ok(decoded.signature_verified_elsewhere());
    }
    let checked = decoded.check_signature(env.crypto, ready.keys);
    // A token no key could be tried on cost no signature check.
    if !matches!(checked, Err(JwtError::UnknownKid | JwtError::NoMatchingKey)) {
        env.events.push(Event::SignatureChecked(id));
    }
    let jwt = checked?;
    env.shared.record(id, &ready.id, digest);
    Ok(jwt)
}

/// Sorts a provider's tokens without keys: cached ones (claims checked again), tokens of another
/// issuer, and decoded ones whose signature is still to check. Any other failure refuses.
/// `audiences`: the rule's (`provider_and_audiences`), else the provider's.
fn triage<'t, 'c>(
    env: &mut Env<'_>,
    request: &Request<'_>,
    id: ProviderId,
    policy: &Policy,
    audiences: &[String],
    found: &'t [FoundToken<'t, 'c>],
) -> Result<Triage<'t, 'c>, AuthnError> {
    let now = request.now_seconds();
    let mut triage = Triage::default();
    let cache = env.caches.get(id).filter(|c| c.enabled());
    for token in found {
        let digest = env.digester.digest(&token.token);
        match cache.map(|c| c.get(digest, request.now_ms)) {
            Some(Some(Cached::Verified(jwt))) => {
                env.events.push(Event::CacheHit(id));
                // The keys that verified it must still be servable (not past `max_stale`).
                match (env.keys)(id) {
                    KeyState::Ready(ready) if ready.stale => env.events.push(Event::StaleServed(id)),
                    KeyState::Ready(_) => {}
                    KeyState::Pending | KeyState::Unavailable => return Err(AuthnError::KeysUnavailable),
                }
                jwt.claims.check_for(policy, audiences, now)?;
                triage.verified.push((token.location, jwt));
                continue;
            }
            Some(Some(Cached::Refused(e))) => {
                env.events.push(Event::CacheHit(id));
                return Err(AuthnError::Jwt(e));
            }
            Some(None) => env.events.push(Event::CacheMiss(id)),
            None => {}
        }
        match verify::decode(&token.token, policy, audiences, now) {
            Ok(d) => triage.decoded.push((token, digest, d)),
            Err(JwtError::IssuerNotAllowed) => triage.other_issuer.push(token.location),
            Err(e) => return Err(AuthnError::Jwt(e)),
        }
    }
    Ok(triage)
}

fn refused<'c>(env: &mut Env<'_>, id: ProviderId, e: AuthnError) -> ProviderOutcome<'c> {
    env.events.push(Event::Refused(id, e));
    ProviderOutcome::Failed(e)
}

/// The answer to a refused request: with a provider asked that accepts DPoP, its challenges
/// (RFC 9449 §7.1: the error on the scheme the credential came with, `algs`, and its current
/// nonce when it wants nonces) for a failure about the credentials; else `reply`.
fn refusal(
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
fn reply(error: AuthnError, request: &Request<'_>, strip: bool) -> Reply {
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
fn status(error: AuthnError) -> u32 {
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
