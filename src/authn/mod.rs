//! One request's authentication decision, as plain data: which rule applies, which tokens are where,
//! whether they verify, and what the filter must then do (let the request go on with some headers
//! changed, answer it locally, or hold it until keys arrive). The shell only reads the request,
//! carries the decision out and turns the decision's events into metrics.
//!
//! - `inputs`: what the decision reads (the VM's keys, caches and records, the request) and the
//!   events it records;
//! - `provider`: one provider's tokens, checked;
//! - `reply`: the local answer to a refusal;
//! - here: which requirement applies, its verdict over the providers, and what follows from it.

mod inputs;
mod provider;
mod reply;

pub use inputs::{Env, Event, KeyState, ReadyKeys, Request, UnknownKid};
pub use provider::Wait;
pub use reply::{RETRY_AFTER_SECONDS, Reply};

use crate::binding::answer;
use crate::config::{ClientOutputHeaders, Config, NamedRequirement, Requirement, STATUS_HEADER};
use crate::error::AuthnError;
use crate::forward::{self, Mutations};
use crate::identity::Entries;
use crate::requirement::{self, Verdict};
use crate::route::RouteChoice;
use provider::Checked;
use reply::{refusal, reply, status};

#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'c> {
    Allow(Mutations<'c>),
    Deny(Reply),
    /// Keys for a provider the answer depends on are not there yet: hold the request.
    Wait(Wait),
}

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
