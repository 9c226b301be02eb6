//! Reading the Wycheproof vectors, which are never copied into this repository: they are found
//! through `WYCHEPROOF_DIR` (default `../shared/wycheproof` beside the crate). Missing vectors fail
//! the test under `CI=true` and are otherwise reported and skipped.
// Each test file includes this module and uses only part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;

/// The parsed vector file `testvectors_v1/<file>`, or `None` (with the reason printed) when the
/// vectors are absent outside CI.
pub fn load(file: &str) -> Option<Value> {
    let dir = std::env::var_os("WYCHEPROOF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/wycheproof"));
    let path = dir.join("testvectors_v1").join(file);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let vectors: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(vectors["numberOfTests"].as_u64(), Some(tests(&vectors).count() as u64), "{file}");
            Some(vectors)
        }
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and no Wycheproof vectors at {}: {e}", path.display())
        }
        Err(e) => {
            // Straight to stderr, past the test harness's capture: a skip must not be silent.
            let why =
                format!("SKIPPED: no Wycheproof vectors at {} ({e}); set WYCHEPROOF_DIR\n", path.display());
            let _ = std::io::stderr().write_all(why.as_bytes());
            None
        }
    }
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
    /// Cases not run, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Refused cases by reason, when recorded through `outcome`.
    pub refusals: BTreeMap<String, usize>,
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

    pub fn skip(&mut self, why: &str) {
        *self.skipped.entry(why.to_owned()).or_default() += 1;
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
        for (mine, theirs) in [(&mut self.skipped, &other.skipped), (&mut self.refusals, &other.refusals)] {
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
        let skipped: usize = self.skipped.values().sum();
        write!(f, ", skipped {skipped}")?;
        for (why, n) in &self.skipped {
            write!(f, " [{n}: {why}]")?;
        }
        Ok(())
    }
}
