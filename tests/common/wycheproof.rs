//! Reading the Wycheproof vectors, which travel with the code: the JWS/JWK files
//! (`json_web_*_test.json`) are copied in `tests/vectors/` (origin and version in its
//! `SOURCES.md`), the signature suites come from the `wycheproof` crate's data (the same upstream
//! files, verbatim). Nothing is looked up outside the repository, so nothing is ever skipped.
// Each test file includes this module and uses only part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The parsed vector file `<file>` (upstream name, e.g. `rsa_signature_2048_sha256_test.json`),
/// after checking that its `numberOfTests` counts its tests.
pub fn load(file: &str) -> Value {
    let vectors: Value = match crate_data(file) {
        Some(text) => serde_json::from_str(text),
        None => {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::from_slice(&bytes)
        }
    }
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(vectors["numberOfTests"].as_u64(), Some(tests(&vectors).count() as u64), "{file}");
    vectors
}

/// The text of a signature suite the `wycheproof` crate carries, by upstream file name.
fn crate_data(file: &str) -> Option<&'static str> {
    use ::wycheproof::{ecdsa, eddsa, rsa_pkcs1_verify, rsa_pss_verify};
    let name = file.strip_suffix("_test.json")?;
    (ecdsa::TestName::from_str(name).ok().map(|t| t.json_data()))
        .or_else(|| rsa_pkcs1_verify::TestName::from_str(name).ok().map(|t| t.json_data()))
        .or_else(|| rsa_pss_verify::TestName::from_str(name).ok().map(|t| t.json_data()))
        .or_else(|| eddsa::TestName::from_str(name).ok().map(|t| t.json_data()))
}

pub fn groups(vectors: &Value) -> &[Value] {
    vectors["testGroups"].as_array().unwrap()
}

pub fn tests(vectors: &Value) -> impl Iterator<Item = &Value> {
    groups(vectors).iter().flat_map(|g| g["tests"].as_array().unwrap())
}

pub fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// A test case's expected verdict. Wycheproof's "acceptable" marks legacy leniency; this verifier
/// takes the strict answer and refuses such cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Valid,
    Invalid,
    Acceptable,
}

impl Expected {
    pub fn of(test: &Value) -> Expected {
        match test["result"].as_str() {
            Some("valid") => Expected::Valid,
            Some("invalid") => Expected::Invalid,
            Some("acceptable") => Expected::Acceptable,
            other => panic!("tc {}: result {other:?}", test["tcId"]),
        }
    }

    /// Whether the strict verifier must accept.
    pub fn must_accept(self) -> bool {
        self == Expected::Valid
    }
}

/// Per-file counts, printed so the results can be quoted (`cargo test -- --nocapture`).
#[derive(Debug, Default)]
pub struct Tally {
    pub accepted: usize,
    pub refused: usize,
    /// Refused "acceptable" cases (also counted in `refused`).
    pub acceptable_refused: usize,
    /// Cases not tried, by reason (Wycheproof's verdict says nothing about the filter there).
    pub not_tried: BTreeMap<String, usize>,
    /// Refused cases by reason, when recorded through `outcome`.
    pub refusals: BTreeMap<String, usize>,
    /// Valid or acceptable cases refused because no algorithm the filter takes has their
    /// parameters, by rule; not counted in `refused`.
    pub policy: BTreeMap<String, usize>,
}

impl Tally {
    pub fn record(&mut self, expected: Expected, accepted: bool) {
        if accepted {
            self.accepted += 1;
        } else {
            self.refused += 1;
            if expected == Expected::Acceptable {
                self.acceptable_refused += 1;
            }
        }
    }

    pub fn refuse_by_policy(&mut self, rule: &str) {
        *self.policy.entry(rule.to_owned()).or_default() += 1;
    }

    pub fn not_tried(&mut self, why: &str) {
        *self.not_tried.entry(why.to_owned()).or_default() += 1;
    }

    /// Records a case's outcome, counting a refusal under its reason.
    pub fn outcome<E: fmt::Display>(&mut self, expected: Expected, outcome: &Result<(), E>) {
        self.record(expected, outcome.is_ok());
        if let Err(why) = outcome {
            *self.refusals.entry(why.to_string()).or_default() += 1;
        }
    }

    /// Adds another tally's counts to this one (per-group tallies into a total).
    pub fn absorb(&mut self, other: &Tally) {
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.acceptable_refused += other.acceptable_refused;
        for (mine, theirs) in [
            (&mut self.not_tried, &other.not_tried),
            (&mut self.refusals, &other.refusals),
            (&mut self.policy, &other.policy),
        ] {
            for (why, n) in theirs {
                *mine.entry(why.clone()).or_default() += n;
            }
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "accepted {}, refused {}", self.accepted, self.refused)?;
        if !self.refusals.is_empty() {
            let reasons: Vec<String> = self.refusals.iter().map(|(why, n)| format!("{why}: {n}")).collect();
            write!(f, " ({})", reasons.join(", "))?;
        }
        if self.acceptable_refused > 0 {
            write!(
                f,
                " (of which {} \"acceptable\", refused as the strict answer)",
                self.acceptable_refused
            )?;
        }
        if !self.policy.is_empty() {
            let rules: Vec<String> = self.policy.iter().map(|(rule, n)| format!("{n}: {rule}")).collect();
            write!(f, ", refused by policy {} [{}]", self.policy.values().sum::<usize>(), rules.join("; "))?;
        }
        for (why, n) in &self.not_tried {
            write!(f, ", not tried {n} ({why})")?;
        }
        Ok(())
    }
}
