//! One provider's tokens in one request: the keyless checks (issuer, time, audience) and the
//! VM's cache and the shared record first, then signatures with the provider's keys, then the
//! sender constraints of providers with a binding on. A held request learns here what it waits
//! for (`Wait`).

use super::inputs::{Env, Event, KeyState, ReadyKeys, Request, UnknownKid};
use crate::authz;
use crate::binding::decide::Scheme;
use crate::binding::request::{Bindings, Presentation, RequestParts};
use crate::cache::Cached;
use crate::config::{Config, Provider, ProviderId};
use crate::error::{AuthnError, BindingError, JwtError};
use crate::extract::{self, FoundToken, Location};
use crate::policy::Policy;
use crate::requirement::ProviderOutcome;
use crate::shared_record::TokenDigest;
use crate::verify::{self, Decoded, VerifiedJwt};
use std::rc::Rc;

/// Why a request is held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wait {
    /// Providers whose key set should be refetched for an unknown `kid` (the shell asks, rate-limited).
    pub refetch: Vec<ProviderId>,
    /// The wait is for a `kid` refetch only (bounded by the fetch timeout, not the startup hold).
    pub for_kid: bool,
}

/// A verified token and where it was found.
type VerifiedAt<'c> = (Location<'c>, Rc<VerifiedJwt>);

/// Per-request memo of provider checks: the verified tokens for forwarding, and what a held
/// request waits for.
#[derive(Default)]
pub(super) struct Checked<'c> {
    pub(super) wait: Wait,
    /// By provider, in asking order (a handful at most: a lookup is a short scan).
    verified: Vec<(ProviderId, Vec<VerifiedAt<'c>>)>,
    /// Sender constraints: proofs to record, the nonce to offer, whose challenges to answer with.
    pub(super) binding: Bindings,
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
    pub(super) fn outcome(
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

    pub(super) fn verified_of(&self, id: ProviderId) -> Option<&[VerifiedAt<'c>]> {
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

pub(super) fn refused<'c>(env: &mut Env<'_>, id: ProviderId, e: AuthnError) -> ProviderOutcome<'c> {
    env.events.push(Event::Refused(id, e));
    ProviderOutcome::Failed(e)
}
