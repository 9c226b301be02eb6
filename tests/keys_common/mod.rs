//! Shared by the key-lifecycle end-to-end tests (`tests/e2e_keys*.rs` and others, through
//! `#[path]`): the policy with `remote_jwks` knobs, the tokens sent in every phase, the filter's
//! log lines and their stamps, and the check that Envoy's wasm VM never failed.
#![allow(dead_code)]

use crate::support::config::{self, EnvoyConfig, Filter, PROVIDER, corp_token};
use crate::support::envoy::Envoy;
use crate::support::http::Response;
use crate::support::mint::{self, TestKey};
use crate::support::servers::JwksServer;
use crate::support::{self, Stack};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Envoy with `--concurrency 2` and the wasm filter with `policy`, in front of a JWKS server the
/// test has already set up (headers, per-path bodies) so that even the first fetch sees it.
/// `None` when Envoy or the module is missing (the test skips; fails with `CI=true`).
pub fn start(jwks: JwksServer, policy: Value) -> Option<Stack> {
    Stack::start_on(Filter::Wasm, jwks, 2, |idp, upstream| EnvoyConfig::new(policy, idp, upstream))
}

/// The filter's log lines that contain `needle`.
pub fn log_lines(envoy: &Envoy, needle: &str) -> Vec<String> {
    envoy
        .log()
        .lines()
        .filter(|l| l.contains("jwt_authn_wasm:") && l.contains(needle))
        .map(String::from)
        .collect()
}

/// Waits up to `timeout` for the filter to log more than `seen` lines containing `needle`;
/// returns the newest such line.
pub fn wait_log(envoy: &Envoy, needle: &str, seen: usize, timeout: Duration) -> Option<String> {
    let mut last = None;
    support::wait_until(timeout, || {
        let lines = log_lines(envoy, needle);
        last = lines.last().cloned();
        lines.len() > seen
    })
    .then_some(last)
    .flatten()
}

/// The stamp (see `log_time`) of the filter's first log line containing `needle`, waiting up to
/// `guard` for it (a guard against a hang: the log reaches its file every 50 ms).
pub fn logged_at(envoy: &Envoy, needle: &str, guard: Duration) -> SystemTime {
    let mut first = None;
    support::wait_until(guard, || {
        first = log_lines(envoy, needle).into_iter().next();
        first.is_some()
    });
    let line = first.unwrap_or_else(|| panic!("the filter never logged {needle:?}"));
    log_time(&line).unwrap_or_else(|| panic!("no stamp on {line:?}"))
}

/// The stamp of the filter's first "published JWKS version" line logged in the millisecond of
/// `after` or later (waiting up to 10 s for it): the publish of an answer the server chose at
/// `after` (the filter takes it later), or of the first fetch the test caused at `after`.
pub fn published_after(envoy: &Envoy, after: SystemTime) -> SystemTime {
    let since_epoch = after.duration_since(UNIX_EPOCH).unwrap_or_default();
    let from = UNIX_EPOCH + Duration::from_millis(since_epoch.as_millis() as u64);
    let mut found = None;
    support::wait_until(Duration::from_secs(10), || {
        let lines = log_lines(envoy, "published JWKS version");
        found = lines.iter().filter_map(|l| log_time(l)).filter(|at| *at >= from).min();
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no key set published after {after:?}"))
}

/// A metric of the `corp` provider (`wasmcustom.jwt_authn_wasm.provider.corp.<name>`), 0 if absent.
pub fn provider_stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(&format!("wasmcustom.jwt_authn_wasm.provider.{PROVIDER}.{name}")).unwrap_or(0)
}

/// When Envoy logged `line`, from its `[YYYY-MM-DD HH:MM:SS.mmm]` stamp (UTC, see `Envoy::start`):
/// the millisecond the line was logged in.
pub fn log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.strip_prefix('[')?.get(..23)?;
    let number = |at: usize, len: usize| stamp.get(at..at + len)?.parse::<u64>().ok();
    let days = days_from_civil(number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let seconds = ((days * 24 + number(11, 2)?) * 60 + number(14, 2)?) * 60 + number(17, 2)?;
    Some(UNIX_EPOCH + Duration::from_millis(seconds * 1000 + number(20, 3)?))
}

/// Days from 1970-01-01 to a later date of the Gregorian calendar (Howard Hinnant's
/// days_from_civil).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `corp_policy` with these members merged into the provider's `remote_jwks` (e.g. a short
/// `cache_duration`) and these into the top level (e.g. `startup_hold_timeout`).
pub fn policy(remote_jwks: Value, top: Value) -> Value {
    let mut policy = config::corp_policy();
    let pointer = format!("/providers/{PROVIDER}/remote_jwks");
    merge(policy.pointer_mut(&pointer).expect("corp_policy has remote_jwks"), remote_jwks);
    merge(&mut policy, top);
    policy
}

/// Sets each member of `from` in `into` (objects only; a `null` member removes it).
pub fn merge(into: &mut Value, from: Value) {
    let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) else { return };
    for (name, value) in from {
        if value.is_null() {
            into.remove(&name);
        } else {
            into.insert(name, value);
        }
    }
}

/// Tokens that must never pass, whatever the keys: a flipped signature bit, a known `kid` signed
/// by another key, an expired token, one for another audience, and one signed by a 1024-bit key
/// under a known `kid` (names for messages).
pub fn invalid_tokens() -> Vec<(&'static str, String)> {
    let valid = corp_token("RS256", TestKey::RsaA, "rsa-a");
    vec![
        ("tampered", mint::tamper(&valid.sign())),
        ("forged", corp_token("RS256", TestKey::RsaB, "rsa-a").sign()),
        ("expired", corp_token("ES256", TestKey::P256A, "ec-a").exp_in(-600).sign()),
        ("other audience", corp_token("RS256", TestKey::RsaA, "rsa-a").aud("other.example").sign()),
        ("weak key", corp_token("RS256", TestKey::Rsa1024TooSmall, "rsa-a").sign()),
    ]
}

/// Panics unless the answer is a refusal (401/403, or 503 while keys are unavailable).
pub fn assert_refused(what: &str, r: &Response) {
    assert!(matches!(r.status, 401 | 403 | 503), "{what} got {}: {}", r.status, r.body);
}

/// Envoy's wasm VMs as first seen: a later snapshot must match (no VM was created again).
pub struct VmWatch {
    created: u64,
    active: u64,
}

const CREATED: &str = "wasm.envoy.wasm.runtime.v8.created";
const ACTIVE: &str = "wasm.envoy.wasm.runtime.v8.active";

impl VmWatch {
    pub fn new(envoy: &Envoy) -> VmWatch {
        let stats = envoy.stats();
        let get = |name: &str| *stats.get(name).unwrap_or_else(|| panic!("no stat {name}"));
        VmWatch { created: get(CREATED), active: get(ACTIVE) }
    }

    /// Panics when the log shows a VM failure (`Envoy::wasm_failure_lines`), a VM was created or
    /// lost since `new`, or a wasm stat counts failures.
    pub fn assert_unbroken(&self, envoy: &Envoy) {
        let bad = envoy.wasm_failure_lines();
        assert!(bad.is_empty(), "the wasm VM failed:\n{}", bad[..bad.len().min(5)].join("\n"));
        let stats = envoy.stats();
        assert_eq!(stats.get(CREATED), Some(&self.created), "a wasm VM was created again");
        assert_eq!(stats.get(ACTIVE), Some(&self.active), "the number of wasm VMs changed");
        // `wasm.<vm_id>.vm_reload*`, `*fail*`: all zero while the VM lives.
        let failures: Vec<_> = stats
            .iter()
            .filter(|(name, value)| {
                name.starts_with("wasm.") && (name.contains("fail") || name.contains("reload")) && **value > 0
            })
            .collect();
        assert!(failures.is_empty(), "wasm failure stats: {failures:?}");
    }
}
