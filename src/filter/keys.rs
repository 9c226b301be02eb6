//! A provider's keys in one VM, kept in step with the copy in shared data.
//!
//! Shared data holds, per JWKS source, two entries: `<source>#state`, the small `FetchState`
//! record every VM reads on every tick, and `<source>#keys`, the version number followed by the
//! JWKS document, read only when the state shows a version this VM has not parsed yet. So the
//! request path never copies or parses a JWKS; each VM parses each version once.

use super::host;
use crate::authn::KeyState;
use crate::config::{KeySource, RemoteJwks};
use crate::crypto::Crypto;
use crate::fetch::{FetchState, Schedule};
use crate::jwks::{KeySet, ParsedJwks};
use proxy_wasm::types::LogLevel;
use std::rc::Rc;

/// Largest JWKS answer accepted; a bigger one is a failed fetch (the last good keys stay).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Attempts at a compare-and-swap update before giving up on this round (another VM keeps
/// winning, so the state is moving anyway).
const CAS_ATTEMPTS: usize = 8;

pub struct ProviderKeys {
    name: String,
    remote: Option<Remote>,
    version: u64,
    set: Option<Rc<KeySet>>,
}

struct Remote {
    jwks: RemoteJwks,
    schedule: Schedule,
    state_key: String,
    keys_key: String,
}

impl ProviderKeys {
    /// Local keys were parsed with the config and are adopted here; remote ones start empty and
    /// arrive through shared data.
    pub fn new(name: &str, source: &KeySource, crypto: &dyn Crypto) -> ProviderKeys {
        let (remote, set) = match source {
            KeySource::Local(keys) => (None, Some(adopt(name, keys.clone(), crypto))),
            KeySource::Remote(jwks) => (Some(Remote::new(jwks)), None),
        };
        ProviderKeys { name: name.to_owned(), remote, version: 0, set }
    }

    pub fn state(&self) -> KeyState<'_> {
        match &self.set {
            Some(set) => KeyState::Ready(set),
            None => KeyState::Pending,
        }
    }

    /// Makes sure the shared state record exists. Creating a key is not CAS-protected, so this
    /// runs in `on_configure`, before workers start, and never overwrites.
    pub fn create_shared_state(&self) {
        if let Some(remote) = &self.remote {
            if let (None, _) = host::shared_get(&remote.state_key) {
                host::shared_set(&remote.state_key, &FetchState::default().encode(), None);
            }
        }
    }

    /// Adopts a newer published key set, if any. True when the keys changed.
    pub fn sync(&mut self, crypto: &dyn Crypto) -> bool {
        let Some(remote) = &self.remote else { return false };
        let Some((state, _)) = remote.read_state() else { return false };
        if state.version == self.version {
            return false;
        }
        let (Some(value), _) = host::shared_get(&remote.keys_key) else { return false };
        let Some((version, jwks)) = split_version(&value) else { return false };
        match KeySet::parse(jwks) {
            Ok(ParsedJwks { keys, .. }) => {
                self.version = version;
                self.set = Some(adopt(&self.name, keys, crypto));
                true
            }
            // Only valid sets are published, so this is a torn or foreign value: retry next tick.
            Err(_) => false,
        }
    }

    /// Starts a fetch if one is due and this VM wins the lease; returns the call's token.
    pub fn fetch_if_due(&self, now: u64) -> Option<u32> {
        let remote = self.remote.as_ref()?;
        let (state, cas) = remote.read_state()?;
        let leased = state.claim(now, &remote.schedule)?;
        if !host::shared_set(&remote.state_key, &leased.encode(), cas) {
            return None; // another VM took it
        }
        let call = host::dispatch_get(
            &remote.jwks.cluster,
            &remote.jwks.authority,
            &remote.jwks.path,
            remote.jwks.timeout,
        );
        if call.is_none() {
            self.fetch_failed(now, "could not dispatch the JWKS request (is the cluster defined?)");
        }
        call
    }

    /// Handles a fetch answer: a valid key set is published for every VM; anything else is a
    /// failed fetch that keeps the last good keys.
    /// `body` is `None` when the answer had none or was too large to copy (`body_size`).
    pub fn fetch_answered(&self, now: u64, status: Option<&str>, body_size: usize, body: Option<&[u8]>) {
        let parsed = match (status, body) {
            (Some("200"), _) if body_size > MAX_JWKS_BYTES => {
                Err(format!("JWKS of {body_size} bytes exceeds the limit of {MAX_JWKS_BYTES}"))
            }
            (Some("200"), Some(body)) => KeySet::parse(body).map_err(|e| e.to_string()),
            (Some("200"), None) => Err("empty JWKS answer".to_owned()),
            (status, _) => Err(format!("JWKS answer status {}", status.unwrap_or("none"))),
        };
        match parsed {
            Ok(parsed) => self.publish(now, &parsed, body.unwrap_or_default()),
            Err(why) => self.fetch_failed(now, &why),
        }
    }

    fn publish(&self, now: u64, parsed: &ParsedJwks, jwks: &[u8]) {
        let Some(remote) = &self.remote else { return };
        for skipped in &parsed.skipped {
            host::log(
                LogLevel::Warn,
                &format!(
                    "provider {}: JWKS key #{} (kid {:?}) skipped: {}",
                    self.name,
                    skipped.index,
                    skipped.kid,
                    skipped.reason.reason()
                ),
            );
        }
        let published = remote.update_state(|s| {
            let next = s.succeeded(now, &remote.schedule);
            let mut value = next.version.to_le_bytes().to_vec();
            value.extend_from_slice(jwks);
            // Keys first, then the state that announces them: a VM that sees the new version
            // always finds (at least) that version's keys.
            host::shared_set(&remote.keys_key, &value, None);
            next
        });
        if let Some(state) = published {
            host::log(
                LogLevel::Info,
                &format!(
                    "provider {}: published JWKS version {} with {} keys",
                    self.name,
                    state.version,
                    parsed.keys.len()
                ),
            );
        }
    }

    fn fetch_failed(&self, now: u64, why: &str) {
        let Some(remote) = &self.remote else { return };
        let failed = remote.update_state(|s| s.failed(now, &remote.schedule));
        let retry_in = failed.map_or(0, |s| s.next_fetch_at.saturating_sub(now));
        let keeping = if self.set.is_some() { "keeping the last good keys" } else { "no keys yet" };
        host::log(
            LogLevel::Warn,
            &format!("provider {}: JWKS fetch failed: {why}; {keeping}; retry in {retry_in} ms", self.name),
        );
    }
}

impl Remote {
    fn new(jwks: &RemoteJwks) -> Remote {
        // Keyed by the source, so providers (or filter chains) sharing a JWKS share its fetches.
        let source = format!("jwt_authn_wasm/{}/{}", jwks.cluster, jwks.uri);
        Remote {
            schedule: Schedule {
                cache_duration: jwks.cache_duration,
                failed_refetch: jwks.failed_refetch_duration,
                timeout: jwks.timeout,
            },
            state_key: format!("{source}#state"),
            keys_key: format!("{source}#keys"),
            jwks: jwks.clone(),
        }
    }

    fn read_state(&self) -> Option<(FetchState, Option<u32>)> {
        let (value, cas) = host::shared_get(&self.state_key);
        Some((FetchState::decode(&value?)?, cas))
    }

    /// Read-modify-write of the state record under CAS; `None` if every attempt lost the race.
    fn update_state(&self, mut change: impl FnMut(&FetchState) -> FetchState) -> Option<FetchState> {
        for _ in 0..CAS_ATTEMPTS {
            let (state, cas) = self.read_state().unwrap_or_default();
            let next = change(&state);
            if host::shared_set(&self.state_key, &next.encode(), cas) {
                return Some(next);
            }
        }
        None
    }
}

/// A key set ready to serve: the signature backend checks its keys once, and what it sets aside
/// is logged.
fn adopt(provider: &str, mut keys: KeySet, crypto: &dyn Crypto) -> Rc<KeySet> {
    for note in crypto.prepare_keys(&mut keys) {
        host::log(LogLevel::Warn, &format!("provider {provider}: {note}"));
    }
    Rc::new(keys)
}

/// Splits a `#keys` value into its version and JWKS document.
fn split_version(value: &[u8]) -> Option<(u64, &[u8])> {
    let (version, jwks) = value.split_at_checked(8)?;
    Some((u64::from_le_bytes(version.try_into().ok()?), jwks))
}
