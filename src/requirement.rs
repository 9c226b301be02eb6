//! Combining per-provider outcomes into a verdict, as jwt_authn's verifier tree (verifier.cc).
//!
//! The caller answers `outcome(provider, audiences)` for one provider over every token found in
//! that provider's locations (`audiences`, when given, replace the provider's own:
//! `provider_and_audiences`). The answer, by precedence when the tokens disagree:
//! 1. `Failed(e)`: a token failed, for any reason but naming another issuer;
//! 2. `Pending`: a token needs keys the provider does not have yet;
//! 3. `OtherIssuer(locations)`: some tokens name another issuer (jwt_authn's `JwtUnknownIssuer`),
//!    at these locations; any others verified. This must be decided from `iss` before keys or
//!    signature are looked at, so that a token meant for another provider sharing the header
//!    reports it (not `UnknownKid`, and never `Pending`);
//! 4. `Verified`: every token verified;
//! 5. `Missing`: no token.
//!
//! Semantics, node by node:
//! - `provider_name` / `provider_and_audiences`: allowed when `Verified`; `Missing`, `OtherIssuer`
//!   (as `IssuerNotAllowed`) and failures deny.
//! - `requires_all`: children in order; the first denial decides (later children are not asked).
//! - `requires_any`: children in order; the first allowing child decides and alone forwards claims.
//!   `allow_missing` / `allow_missing_or_failed` children are flags, as in jwt_authn: when every
//!   other child failed, `allow_missing_or_failed` allows, and `allow_missing` allows if the combined
//!   error is `Missing` (so a token of a sibling provider must be valid; a token in a location of
//!   no sibling is not looked at, as in jwt_authn). The combined error is jwt_authn's: the last
//!   child error that is neither `Missing` nor `IssuerNotAllowed`, else `IssuerNotAllowed` if any,
//!   else `Missing`. A list of flags only acts as its strongest flag alone (below).
//! - `allow_missing` (not a flag): jwt_authn extracts tokens from the locations of EVERY provider
//!   and verifies each with the provider its `iss` names. Here every provider is asked, in id
//!   order: a failure denies at once. A token that named another issuer at a location must have
//!   been verified by a provider reading that same location (header name and scheme, parameter or
//!   cookie) and answering `Verified`, which means it verified every token it found; otherwise the
//!   request is denied with `IssuerNotAllowed` (no provider vouches for that token). Stricter than
//!   jwt_authn, which keeps only the last token's result, so a bad token followed by a good one
//!   passes there. A provider answering `OtherIssuer` forwards no claims, even for tokens of its
//!   own that verified.
//! - `allow_missing_or_failed`: always allowed; every provider is asked so that verified tokens
//!   still forward their claims.
//!
//! `Pending` is the verdict only when the answer depends on a provider still waiting for keys:
//! a denial elsewhere in `requires_all`, or an allowing child of `requires_any`, decides without it.
//! Under `allow_missing_or_failed` the verdict waits too, because the forwarded claims depend on it
//! (jwt_authn waits for the fetch in that case as well).

use crate::config::{HeaderLocation, Provider, ProviderId, Requirement};
use crate::error::{AuthnError, JwtError};
use crate::extract::Location;

/// One provider's result over the tokens in its locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome<'c> {
    Verified,
    Missing,
    Failed(AuthnError),
    /// Tokens at these locations name another issuer; any other token verified.
    OtherIssuer(Vec<Location<'c>>),
    /// The provider has no keys yet; the filter will pause the request.
    Pending,
}

/// The decision for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `verified`: providers whose tokens verified and whose claims are forwarded, in asking order.
    Allow {
        verified: Vec<ProviderId>,
    },
    Deny(AuthnError),
    /// Waiting for these providers' keys.
    Pending(Vec<ProviderId>),
}

/// Evaluates `requirement`. `outcome` is asked lazily, at most once per (provider, audiences)
/// pair, depth-first in configuration order; an answer that cannot change the verdict is not
/// asked for.
/// `'l`: the locations an outcome names (the configuration's).
pub fn evaluate<'r, 'l>(
    requirement: &'r Requirement,
    providers: &'r [Provider],
    outcome: &mut dyn FnMut(ProviderId, Option<&'r [String]>) -> ProviderOutcome<'l>,
) -> Verdict {
    Evaluation { providers, outcome, asked: Vec::new() }.node(requirement)
}

const FOREIGN: AuthnError = AuthnError::Jwt(JwtError::IssuerNotAllowed);

struct Evaluation<'r, 'l, 'o> {
    providers: &'r [Provider],
    outcome: &'o mut dyn FnMut(ProviderId, Option<&'r [String]>) -> ProviderOutcome<'l>,
    asked: Vec<(ProviderId, Option<&'r [String]>, ProviderOutcome<'l>)>,
}

impl<'r, 'l> Evaluation<'r, 'l, '_> {
    fn ask(&mut self, id: ProviderId, audiences: Option<&'r [String]>) -> ProviderOutcome<'l> {
        if let Some((_, _, known)) = self.asked.iter().find(|(i, a, _)| *i == id && *a == audiences) {
            return known.clone();
        }
        let answer = match (self.outcome)(id, audiences) {
            ProviderOutcome::Failed(AuthnError::Missing) => ProviderOutcome::Missing,
            other => other,
        };
        self.asked.push((id, audiences, answer.clone()));
        answer
    }

    fn node(&mut self, requirement: &'r Requirement) -> Verdict {
        match requirement {
            Requirement::Provider { id, audiences } => match self.ask(*id, audiences.as_deref()) {
                ProviderOutcome::Verified => Verdict::Allow { verified: vec![*id] },
                ProviderOutcome::Missing => Verdict::Deny(AuthnError::Missing),
                ProviderOutcome::Failed(e) => Verdict::Deny(e),
                ProviderOutcome::OtherIssuer(_) => Verdict::Deny(FOREIGN),
                ProviderOutcome::Pending => Verdict::Pending(vec![*id]),
            },
            Requirement::All(children) => self.all(children),
            Requirement::Any(children) => self.any(children),
            Requirement::AllowMissing => self.allow_missing(),
            Requirement::AllowMissingOrFailed => self.allow_missing_or_failed(),
        }
    }

    fn all(&mut self, children: &'r [Requirement]) -> Verdict {
        let (mut verified, mut pending) = (Vec::new(), Vec::new());
        for child in children {
            match self.node(child) {
                Verdict::Deny(e) => return Verdict::Deny(e),
                Verdict::Allow { verified: v } => merge(&mut verified, v),
                Verdict::Pending(p) => merge(&mut pending, p),
            }
        }
        if pending.is_empty() { Verdict::Allow { verified } } else { Verdict::Pending(pending) }
    }

    fn any(&mut self, children: &'r [Requirement]) -> Verdict {
        let allow_failed = children.contains(&Requirement::AllowMissingOrFailed);
        let allow_missing = children.contains(&Requirement::AllowMissing);
        let regular: Vec<&'r Requirement> = children.iter().filter(|r| !r.is_flag()).collect();
        if regular.is_empty() {
            return if allow_failed { self.allow_missing_or_failed() } else { self.allow_missing() };
        }
        let mut pending = Vec::new();
        let mut error = AuthnError::Missing;
        for child in regular {
            match self.node(child) {
                Verdict::Allow { verified } => return Verdict::Allow { verified },
                Verdict::Pending(p) => merge(&mut pending, p),
                Verdict::Deny(e) => error = prefer(error, e),
            }
        }
        if !pending.is_empty() {
            Verdict::Pending(pending)
        } else if allow_failed || (allow_missing && error == AuthnError::Missing) {
            Verdict::Allow { verified: Vec::new() }
        } else {
            Verdict::Deny(error)
        }
    }

    fn allow_missing(&mut self) -> Verdict {
        let (mut verified, mut pending, mut foreign) = (Vec::new(), Vec::new(), Vec::new());
        for id in 0..self.providers.len() {
            match self.ask(id, None) {
                ProviderOutcome::Failed(e) => return Verdict::Deny(e),
                ProviderOutcome::OtherIssuer(at) => foreign.extend(at.into_iter().map(|l| (id, l))),
                ProviderOutcome::Verified => verified.push(id),
                ProviderOutcome::Pending => pending.push(id),
                ProviderOutcome::Missing => {}
            }
        }
        // A foreign token that a pending provider could still vouch for waits with the others.
        let mut could_vouch = verified.clone();
        could_vouch.extend(&pending);
        if foreign.iter().any(|(id, at)| !self.vouched(*id, at, &could_vouch)) {
            return Verdict::Deny(FOREIGN);
        }
        if pending.is_empty() { Verdict::Allow { verified } } else { Verdict::Pending(pending) }
    }

    fn allow_missing_or_failed(&mut self) -> Verdict {
        let (mut verified, mut pending) = (Vec::new(), Vec::new());
        for id in 0..self.providers.len() {
            match self.ask(id, None) {
                ProviderOutcome::Verified => verified.push(id),
                ProviderOutcome::Pending => pending.push(id),
                ProviderOutcome::Missing | ProviderOutcome::Failed(_) | ProviderOutcome::OtherIssuer(_) => {}
            }
        }
        if pending.is_empty() { Verdict::Allow { verified } } else { Verdict::Pending(pending) }
    }

    /// Whether one of `by` read the location where provider `seen_by` found a foreign token, so
    /// that it found the same token. A header is the same location only with the same scheme:
    /// every scheme `seen_by` reads that header with must be read by one of `by`.
    fn vouched(&self, seen_by: ProviderId, at: &Location, by: &[ProviderId]) -> bool {
        let Some(seen_by) = self.providers.get(seen_by) else { return false };
        let readers: Vec<_> =
            by.iter().filter_map(|i| self.providers.get(*i)).map(|p| &p.locations).collect();
        match at {
            Location::Header(name) => {
                let schemes: Vec<&HeaderLocation> =
                    seen_by.locations.headers.iter().filter(|h| h.name == *name).collect();
                let read_by_one = |h: &&HeaderLocation| {
                    readers.iter().any(|l| l.headers.iter().any(|x| x.same_location(h)))
                };
                // A header the provider does not read vouches for nothing.
                !schemes.is_empty() && schemes.iter().all(read_by_one)
            }
            Location::Param(name) => readers.iter().any(|l| l.params.iter().any(|p| p == name)),
            Location::Cookie(name) => readers.iter().any(|l| l.cookies.iter().any(|c| c == name)),
            Location::Dpop => readers.iter().any(|l| l.dpop),
        }
    }
}

/// jwt_authn's `requires_any` error choice: a real error beats `IssuerNotAllowed`, which beats
/// `Missing`; among real errors the later child wins.
fn prefer(current: AuthnError, child: AuthnError) -> AuthnError {
    let weak = |e: AuthnError| e == AuthnError::Missing || e == FOREIGN;
    if !weak(child) || current == AuthnError::Missing { child } else { current }
}

fn merge(into: &mut Vec<ProviderId>, from: Vec<ProviderId>) {
    for id in from {
        if !into.contains(&id) {
            into.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use ProviderOutcome::{Missing as M, Pending as P, Verified as V};
    use Requirement::{AllowMissing, AllowMissingOrFailed};

    /// Providers: 0 `a`, 1 `b`, 2 `c` on jwt_authn's default locations (they share the
    /// Authorization header, as two issuers on one API do); 3 `k` on a cookie; 4 `x` on the
    /// Authorization header and a `t` parameter; 5 `y` on the Authorization header only.
    fn providers() -> Vec<Provider> {
        let local =
            |extra: &str| format!(r#"{{"local_jwks": {{"inline_string": "{{\"keys\":[]}}"}}{extra}}}"#);
        let doc = format!(
            r#"{{"providers": {{"a": {a}, "b": {a}, "c": {a}, "k": {k}, "x": {x}, "y": {y}}}}}"#,
            a = local(""),
            k = local(r#", "from_cookies": ["s"]"#),
            x = local(
                r#", "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}], "from_params": ["t"]"#
            ),
            y = local(r#", "from_headers": [{"name": "authorization", "value_prefix": "bearer"}]"#),
        );
        Config::parse(doc.as_bytes()).unwrap().providers
    }

    const A: ProviderId = 0;
    const B: ProviderId = 1;
    const C: ProviderId = 2;
    const K: ProviderId = 3;
    const X: ProviderId = 4;
    const Y: ProviderId = 5;

    fn p(id: ProviderId) -> Requirement {
        Requirement::Provider { id, audiences: None }
    }
    fn any(children: Vec<Requirement>) -> Requirement {
        Requirement::Any(children)
    }
    fn all(children: Vec<Requirement>) -> Requirement {
        Requirement::All(children)
    }
    fn fail(e: JwtError) -> ProviderOutcome<'static> {
        ProviderOutcome::Failed(AuthnError::Jwt(e))
    }
    fn deny(e: JwtError) -> Verdict {
        Verdict::Deny(AuthnError::Jwt(e))
    }
    fn allow(verified: &[ProviderId]) -> Verdict {
        Verdict::Allow { verified: verified.to_vec() }
    }
    /// Tokens naming another issuer in the Authorization header.
    fn foreign() -> ProviderOutcome<'static> {
        other(Location::Header("authorization"))
    }
    fn other(at: Location) -> ProviderOutcome {
        ProviderOutcome::OtherIssuer(vec![at])
    }

    /// Evaluates with scripted answers (unscripted providers are `Missing`); returns the verdict
    /// and the providers asked, in order.
    fn run(
        requirement: &Requirement,
        answers: &[(ProviderId, ProviderOutcome)],
    ) -> (Verdict, Vec<ProviderId>) {
        let mut asked = Vec::new();
        let verdict = evaluate(requirement, &providers(), &mut |id, _| {
            asked.push(id);
            answers.iter().find(|(i, _)| *i == id).map_or(M, |(_, o)| o.clone())
        });
        (verdict, asked)
    }

    fn check(requirement: &Requirement, table: Vec<(Vec<(ProviderId, ProviderOutcome)>, Verdict)>) {
        for (answers, expected) in table {
            assert_eq!(run(requirement, &answers).0, expected, "{requirement:?} with {answers:?}");
        }
    }

    #[test]
    fn single_provider() {
        check(
            &p(A),
            vec![
                (vec![(A, V)], allow(&[A])),
                (vec![(A, M)], Verdict::Deny(AuthnError::Missing)),
                (vec![(A, fail(JwtError::Expired))], deny(JwtError::Expired)),
                (
                    vec![(A, ProviderOutcome::Failed(AuthnError::RepeatedLocation))],
                    Verdict::Deny(AuthnError::RepeatedLocation),
                ),
                (vec![(A, P)], Verdict::Pending(vec![A])),
                // Failed(Missing) is read as Missing.
                (vec![(A, ProviderOutcome::Failed(AuthnError::Missing))], Verdict::Deny(AuthnError::Missing)),
            ],
        );
    }

    #[test]
    fn audiences_reach_the_outcome() {
        let requirement = all(vec![
            Requirement::Provider { id: A, audiences: Some(vec!["x".into()]) },
            p(A),
            Requirement::Provider { id: A, audiences: Some(vec!["x".into()]) },
        ]);
        let mut asked = Vec::new();
        let verdict = evaluate(&requirement, &providers(), &mut |id, audiences| {
            asked.push((id, audiences.map(<[String]>::to_vec)));
            V
        });
        assert_eq!(verdict, allow(&[A]));
        // Each (provider, audiences) pair once.
        assert_eq!(asked, [(A, Some(vec!["x".to_owned()])), (A, None)]);
    }

    #[test]
    fn requires_all() {
        let requirement = all(vec![p(A), p(B)]);
        check(
            &requirement,
            vec![
                (vec![(A, V), (B, V)], allow(&[A, B])),
                (vec![(A, V), (B, M)], Verdict::Deny(AuthnError::Missing)),
                (vec![(A, fail(JwtError::BadSignature)), (B, V)], deny(JwtError::BadSignature)),
                (vec![(A, P), (B, V)], Verdict::Pending(vec![A])),
                (vec![(A, P), (B, fail(JwtError::Expired))], deny(JwtError::Expired)),
                (vec![(A, P), (B, P)], Verdict::Pending(vec![A, B])),
            ],
        );
        // The first denial decides: later children are not asked.
        assert_eq!(run(&requirement, &[(A, M)]).1, [A]);
    }

    #[test]
    fn requires_any() {
        let requirement = any(vec![p(A), p(B)]);
        check(
            &requirement,
            vec![
                (vec![(A, V), (B, V)], allow(&[A])),
                (vec![(A, M), (B, V)], allow(&[B])),
                (vec![(A, M), (B, M)], Verdict::Deny(AuthnError::Missing)),
                (vec![(A, fail(JwtError::BadSignature)), (B, M)], deny(JwtError::BadSignature)),
                (vec![(A, M), (B, fail(JwtError::BadSignature))], deny(JwtError::BadSignature)),
                // jwt_authn's choice: the last real error, then IssuerNotAllowed, then Missing.
                (
                    vec![(A, fail(JwtError::Expired)), (B, fail(JwtError::BadSignature))],
                    deny(JwtError::BadSignature),
                ),
                (vec![(A, fail(JwtError::Expired)), (B, foreign())], deny(JwtError::Expired)),
                (vec![(A, foreign()), (B, M)], deny(JwtError::IssuerNotAllowed)),
                (vec![(A, M), (B, foreign())], deny(JwtError::IssuerNotAllowed)),
                (vec![(A, P), (B, V)], allow(&[B])),
                (vec![(A, P), (B, M)], Verdict::Pending(vec![A])),
                (vec![(A, P), (B, fail(JwtError::Expired))], Verdict::Pending(vec![A])),
            ],
        );
        // The first allowing child decides: later children are not asked.
        assert_eq!(run(&requirement, &[(A, V)]).1, [A]);
    }

    #[test]
    fn requires_any_with_allow_flags() {
        // jwt_authn's example 7: A is optional.
        check(
            &any(vec![p(A), AllowMissing]),
            vec![
                (vec![(A, M)], allow(&[])),
                (vec![(A, V)], allow(&[A])),
                (vec![(A, fail(JwtError::Expired))], deny(JwtError::Expired)),
                (vec![(A, foreign())], deny(JwtError::IssuerNotAllowed)),
                (vec![(A, P)], Verdict::Pending(vec![A])),
                // Only the siblings count for the flag: a token of another provider is not looked at.
                (vec![(A, M), (K, fail(JwtError::Expired))], allow(&[])),
            ],
        );
        check(
            &any(vec![p(A), p(B), AllowMissingOrFailed]),
            vec![
                (vec![(A, fail(JwtError::Expired)), (B, foreign())], allow(&[])),
                (vec![(A, M), (B, V)], allow(&[B])),
                (vec![(A, P), (B, M)], Verdict::Pending(vec![A])),
            ],
        );
        // Flags only: the strongest flag alone, over every provider.
        let (verdict, asked) =
            run(&any(vec![AllowMissing, AllowMissingOrFailed]), &[(A, fail(JwtError::Expired)), (K, V)]);
        assert_eq!((verdict, asked), (allow(&[K]), vec![A, B, C, K, X, Y]));
        let (verdict, _) = run(&any(vec![AllowMissing, AllowMissing]), &[(A, fail(JwtError::Expired))]);
        assert_eq!(verdict, deny(JwtError::Expired));
    }

    #[test]
    fn nested_requirements() {
        // jwt_authn's example 8: A optional, B required.
        let requirement = all(vec![any(vec![p(A), AllowMissing]), p(B)]);
        check(
            &requirement,
            vec![
                (vec![(A, M), (B, V)], allow(&[B])),
                (vec![(A, V), (B, V)], allow(&[A, B])),
                (vec![(A, fail(JwtError::Expired)), (B, V)], deny(JwtError::Expired)),
                (vec![(A, V), (B, M)], Verdict::Deny(AuthnError::Missing)),
            ],
        );
        // A or (B and C): only the satisfying branch forwards claims.
        let requirement = any(vec![p(A), all(vec![p(B), p(C)])]);
        check(
            &requirement,
            vec![
                (vec![(B, V), (C, V)], allow(&[B, C])),
                (vec![(B, V), (C, M)], Verdict::Deny(AuthnError::Missing)),
            ],
        );
        // A provider asked twice is asked once.
        let (_, asked) = run(&all(vec![p(A), any(vec![p(A), p(B)])]), &[(A, V)]);
        assert_eq!(asked, [A]);
    }

    #[test]
    fn allow_missing_over_every_provider() {
        let param = |name: &'static str| other(Location::Param(name));
        let cookie = |name: &'static str| other(Location::Cookie(name));
        check(
            &AllowMissing,
            vec![
                (vec![], allow(&[])),
                // Two issuers sharing the Authorization header: the token is A's; the others see a
                // foreign token where A, which verified everything it found, reads too.
                (vec![(A, V), (B, foreign()), (C, foreign()), (X, foreign()), (Y, foreign())], allow(&[A])),
                (
                    vec![(A, fail(JwtError::BadSignature)), (B, foreign()), (C, foreign())],
                    deny(JwtError::BadSignature),
                ),
                (vec![(A, foreign()), (B, foreign()), (C, foreign())], deny(JwtError::IssuerNotAllowed)),
                (vec![(A, foreign()), (B, fail(JwtError::Expired))], deny(JwtError::Expired)),
                (
                    vec![(A, ProviderOutcome::Failed(AuthnError::Jwt(JwtError::IssuerNotAllowed)))],
                    deny(JwtError::IssuerNotAllowed),
                ),
                (vec![(A, P), (B, foreign()), (C, foreign())], Verdict::Pending(vec![A])),
                (vec![(A, V), (B, P)], Verdict::Pending(vec![B])),
                (vec![(K, V)], allow(&[K])),
                // Y verified the Authorization header X also reads ("bearer" and "Bearer " are one
                // location)...
                (vec![(X, foreign()), (Y, V)], allow(&[Y])),
                // ...but nobody verified X's foreign token in the `t` parameter, nor K's cookie.
                (vec![(X, param("t")), (Y, V)], deny(JwtError::IssuerNotAllowed)),
                (vec![(A, V), (K, cookie("s"))], deny(JwtError::IssuerNotAllowed)),
                (vec![(A, param("access_token")), (B, V)], allow(&[B])),
                // A location the reporting provider does not read vouches for nothing.
                (vec![(K, foreign()), (A, V)], deny(JwtError::IssuerNotAllowed)),
            ],
        );
        // A failure decides at once.
        assert_eq!(run(&AllowMissing, &[(B, fail(JwtError::Expired))]).1, [A, B]);
    }

    #[test]
    fn allow_missing_or_failed_forwards_verified_tokens() {
        check(
            &AllowMissingOrFailed,
            vec![
                (vec![], allow(&[])),
                (vec![(A, fail(JwtError::Expired)), (B, V)], allow(&[B])),
                (vec![(A, foreign()), (B, foreign())], allow(&[])),
                (vec![(A, V), (C, P)], Verdict::Pending(vec![C])),
            ],
        );
    }

    #[test]
    fn two_issuers_sharing_the_authorization_header() {
        // `corp` (A) and `local` (B) both read `Authorization: Bearer`; which token is sent decides.
        let either = any(vec![p(A), p(B)]);
        let corp_token = [(A, V), (B, foreign())];
        let local_token = [(A, foreign()), (B, V)];
        let other_token = [(A, foreign()), (B, foreign())];
        let bad_corp_token = [(A, fail(JwtError::BadSignature)), (B, foreign())];
        assert_eq!(run(&either, &corp_token), (allow(&[A]), vec![A]));
        assert_eq!(run(&either, &local_token).0, allow(&[B]));
        assert_eq!(run(&either, &other_token).0, deny(JwtError::IssuerNotAllowed));
        assert_eq!(run(&either, &bad_corp_token).0, deny(JwtError::BadSignature));
        let both = all(vec![p(A), p(B)]);
        assert_eq!(run(&both, &corp_token).0, deny(JwtError::IssuerNotAllowed));
        assert_eq!(run(&AllowMissing, &local_token).0, allow(&[B]));
        assert_eq!(run(&AllowMissing, &bad_corp_token).0, deny(JwtError::BadSignature));
    }
}
