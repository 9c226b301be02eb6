//! Every Wycheproof signature suite of `common/signatures.rs` through the pure-Rust backend:
//! ES256/ES384 (P1363), RS256/384/512 (2048 to 8192 bits), PS256/384/512, EdDSA (Ed25519), and the
//! groups no algorithm of the filter has (other curves, hashes, PSS parameters, DER signatures).
//!
//! Keys always enter through `KeySet::parse` (the groups' JWKs), so the key parser and the backend
//! are tested together, and the key built from a JWK is checked against Wycheproof's DER. In a group
//! with a JWS algorithm each case gets Wycheproof's verdict (the strict one for "acceptable"); in a
//! refused group every valid or acceptable case is refused under each algorithm of its scheme a
//! token could name, for the rule's reason (`Group::judged` says why invalid ones are not tried).
//! `e2e_hostcrypto.rs` runs the same groups through Envoy's crypto. Run with `-- --nocapture` to
//! see the counts per file.

#[path = "common/signatures.rs"]
mod signatures;
#[path = "common/wycheproof.rs"]
mod wycheproof;

use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::crypto::{Crypto, RustCrypto};
use jwt_authn_wasm::error::JwtError;
use jwt_authn_wasm::jwks::{JwksError, KeySet, KeySkip};
use signatures::{Case, Group, Plan, Rule, SUITES, Scheme};
use std::time::Instant;
use wycheproof::Tally;

/// Why an invalid case of a refused group is not tried (see `Group::judged`).
const NOT_JUDGED: &str = "invalid under parameters no JWS algorithm has";

/// The filter's signature step for a one-key set: the candidates for `alg`, and the first that
/// verifies.
fn verify(keys: &KeySet, alg: Algorithm, case: &Case) -> Result<(), JwtError> {
    let candidates = keys.candidates(alg, None)?;
    let mut outcome = Err(JwtError::NoMatchingKey);
    for key in candidates {
        outcome = RustCrypto.verify(alg, key, &case.msg, &case.sig);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

/// The group's key set, or (a curve the filter does not take) `None` after checking that the key
/// was skipped for it.
fn key_set(group: &Group) -> Option<KeySet> {
    match KeySet::parse(&group.jwks()) {
        Ok(parsed) => {
            assert!(parsed.skipped.is_empty(), "{}: {:?}", group.file, parsed.skipped);
            assert_ne!(group.plan, Plan::Refused(Rule::Curve), "{}: key accepted: {}", group.file, group.jwk);
            let key = parsed.keys.iter().next().unwrap();
            if let Some(der) = &group.spki {
                // The SPKI sent to the host is byte for byte Wycheproof's encoding of the key.
                assert_eq!(key.spki(), Some(&der[..]), "{}: SPKI of {}", group.file, group.jwk);
            }
            Some(parsed.keys)
        }
        Err(JwksError::NoUsableKey(skipped)) => {
            assert_eq!(group.plan, Plan::Refused(Rule::Curve), "{}: {skipped:?}", group.file);
            assert!(
                matches!(skipped.as_slice(), [s] if s.reason == KeySkip::UnsupportedCurve),
                "{skipped:?}"
            );
            None
        }
        Err(e) => panic!("{}: {e}", group.file),
    }
}

fn run_group(group: &Group, tally: &mut Tally) {
    let keys = key_set(group);
    for case in &group.cases {
        if !group.judged(case) {
            tally.not_tried(NOT_JUDGED);
            continue;
        }
        let label = group.label(case);
        let outcomes: Vec<(Algorithm, Result<(), JwtError>)> = match &keys {
            Some(keys) => group.algs(case).into_iter().map(|alg| (alg, verify(keys, alg, case))).collect(),
            None => Vec::new(),
        };
        match group.plan {
            Plan::Alg(_) => {
                let [(alg, outcome)] = &outcomes[..] else { panic!("{label}: {outcomes:?}") };
                assert_eq!(outcome.is_ok(), case.expected.must_accept(), "{label} as {alg}: {outcome:?}");
                tally.outcome(case.expected, outcome);
            }
            Plan::Refused(rule) => {
                assert!(keys.is_none() || !outcomes.is_empty(), "{label}: tried under no algorithm");
                for (alg, outcome) in &outcomes {
                    assert_eq!(outcome, &Err(JwtError::BadSignature), "{label} as {alg} ({rule})");
                }
                tally.refuse_by_policy(&rule.to_string());
            }
        }
    }
}

fn run_scheme(scheme: Scheme) {
    let mut total = Tally::default();
    for file in SUITES.into_iter().filter(|f| Scheme::of(f) == scheme) {
        let (mut tally, started) = (Tally::default(), Instant::now());
        for group in signatures::groups(file) {
            run_group(&group, &mut tally);
        }
        eprintln!("{file} (pure Rust, {:.1?}): {tally}", started.elapsed());
        total.absorb(&tally);
    }
    eprintln!("{scheme:?} suites (pure Rust), all files: {total}");
    assert!(total.not_tried.keys().all(|why| why == NOT_JUDGED), "{:?}", total.not_tried);
    assert!(total.accepted > 0, "{scheme:?}: nothing accepted");
}

#[test]
fn ecdsa_suites() {
    run_scheme(Scheme::Ecdsa);
}

#[test]
fn rsa_pkcs1_suites() {
    run_scheme(Scheme::RsaPkcs1);
}

#[test]
fn rsa_pss_suites() {
    run_scheme(Scheme::RsaPss);
}

#[test]
fn eddsa_suites() {
    run_scheme(Scheme::Eddsa);
}
