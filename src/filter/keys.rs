//! A provider's keys in one VM, kept in step with the copy in shared data.
//!
//! Shared data holds, per JWKS source (`RemoteJwks::shared_name`, under the format version
//! `namespace::NAMESPACE`), two entries: `<source>#state`, the small `FetchState`
//! record every VM reads on every tick, and `<source>#keys`, the JWKS document, read only when
//! the state shows a version this VM has not parsed yet. So the
//! request path never copies or parses a JWKS; each VM parses each version once.

use super::host;
use super::metrics::ProviderMetrics;
use crate::authn::{KeyState, ReadyKeys, UnknownKid};
use crate::config::{CryptoMode, KeySource, RemoteJwks};
use crate::crypto::Crypto;
use crate::discovery::{self, MAX_DISCOVERY_BYTES};
use crate::fetch::{self, FetchState, Freshness, KidRefetch, Schedule};
use crate::jwks::{KeySet, ParsedJwks};
use crate::shared_record::KeySetId;
use proxy_wasm::types::LogLevel;
use std::rc::Rc;

/// Attempts at a compare-and-swap update before giving up on this round (another VM keeps
/// winning, so the state is moving anyway).
const CAS_ATTEMPTS: usize = 8;

/// Which document a fetch asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetching {
    /// The OIDC discovery document (its answer names the JWKS).
    Discovery,
    Jwks,
}

/// What came back from a fetch, as the host gives it.
pub struct Answer<'a> {
    pub status: Option<&'a str>,
    pub body_size: usize,
    /// `None` when there was none or it was too large to copy.
    pub body: Option<&'a [u8]>,
    pub cache_control: Option<&'a str>,
    pub expires: Option<&'a str>,
    pub date: Option<&'a str>,
}

/// What one look at the shared record found.
#[derive(Default)]
pub struct Synced {
    /// The fetch state moved (a fetch started, failed or finished): a request held for this
    /// provider may be decided now, e.g. an unknown-`kid` wait after a refetch that failed.
    pub state: bool,
    /// A newer key set was adopted.
    pub keys: bool,
}

pub struct ProviderKeys {
    name: String,
    remote: Option<Remote>,
    /// The shared record as last read (every tick).
    state: FetchState,
    version: u64,
    /// The keys in use and exactly which set they are (for the shared record of tokens).
    set: Option<(Rc<KeySet>, KeySetId)>,
    /// The `crypto` mode, part of every key set's identity.
    crypto_mode: CryptoMode,
    /// What this VM last warned about its keys (`Fresh`: nothing yet): it warns once when they
    /// turn stale and once more when they pass max_stale.
    warned: Freshness,
    metrics: ProviderMetrics,
}

struct Remote {
    jwks: RemoteJwks,
    schedule: Schedule,
    /// The shared-data name of the source, also part of its key sets' identity.
    source: String,
    state_key: String,
    keys_key: String,
}

impl ProviderKeys {
    /// Local keys were parsed with the config and are adopted here (`config`: the plugin
    /// configuration's bytes, which name them); remote ones start empty and arrive through shared
    /// data.
    pub fn new(
        name: &str,
        source: &KeySource,
        metrics: ProviderMetrics,
        crypto: (&dyn Crypto, CryptoMode),
        config: &[u8],
    ) -> ProviderKeys {
        let (remote, set) = match source {
            KeySource::Local(keys) => {
                (None, Some((adopt(name, keys.clone(), crypto.0), KeySetId::local(name, crypto.1, config))))
            }
            KeySource::Remote(jwks) => (Some(Remote::new(jwks)), None),
        };
        ProviderKeys {
            name: name.to_owned(),
            remote,
            state: FetchState::default(),
            version: 0,
            set,
            crypto_mode: crypto.1,
            warned: Freshness::Fresh,
            metrics,
        }
    }

    /// The keys a request may use now.
    pub fn state(&self, now: u64) -> KeyState<'_> {
        let (Some((keys, id)), Some(remote)) = (&self.set, &self.remote) else {
            return match &self.set {
                Some((keys, id)) => KeyState::Ready(ReadyKeys {
                    keys,
                    unknown_kid: UnknownKid::Refuse,
                    stale: false,
                    id: *id,
                }),
                None => KeyState::Pending,
            };
        };
        let stale = match self.state.freshness(now, &remote.schedule) {
            Freshness::Expired => return KeyState::Unavailable,
            Freshness::Stale => true,
            Freshness::Fresh => false,
        };
        let unknown_kid = match self.state.kid_refetch(now, &remote.schedule) {
            KidRefetch::Allowed => UnknownKid::Refetch,
            KidRefetch::InFlight => UnknownKid::Wait,
            KidRefetch::Spent => UnknownKid::Refuse,
        };
        KeyState::Ready(ReadyKeys { keys, unknown_kid, stale, id: *id })
    }

    /// How long a request waits for an unknown-`kid` refetch: the fetch and a little more.
    pub fn refetch_wait_ms(&self) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.schedule.lease_ms())
    }

    /// Makes sure the shared state record exists. Creating a key is not CAS-protected, so this
    /// runs in `on_configure`, before workers start, and never overwrites.
    pub fn create_shared_state(&self) {
        if let Some(remote) = &self.remote
            && let (None, _) = host::shared_get(&remote.state_key)
        {
            host::shared_set(&remote.state_key, &FetchState::default().encode(), None);
        }
    }

    /// Reads the shared record and adopts a newer published key set, if any.
    pub fn sync(&mut self, now: u64, crypto: &dyn Crypto) -> Synced {
        let Some((state, _)) = self.remote.as_ref().and_then(Remote::read_state) else {
            return Synced::default();
        };
        let state_changed = state != self.state;
        self.state = state;
        self.warn_if_stale(now);
        if state.has_keys() {
            self.metrics.age_seconds.record(now.saturating_sub(state.fetched_at) / 1000);
        }
        Synced { state: state_changed, keys: self.adopt_published(crypto) }
    }

    /// Adopts the published key set if it is newer than ours. True when it was.
    fn adopt_published(&mut self, crypto: &dyn Crypto) -> bool {
        let Some(remote) = self.remote.as_ref().filter(|_| self.state.version != self.version) else {
            return false;
        };
        let (Some(jwks), _) = host::shared_get(&remote.keys_key) else { return false };
        match KeySet::parse(&jwks) {
            Ok(ParsedJwks { keys, .. }) => {
                // The keys may be newer than the state that announces them (a publisher whose
                // state write lost every CAS), never older: keys are written first.
                self.version = self.state.version;
                // Named by the bytes parsed, not by the version: those may be newer than it.
                let id = KeySetId::remote(&self.name, &remote.source, self.crypto_mode, &jwks);
                self.set = Some((adopt(&self.name, keys, crypto), id));
                self.warned = Freshness::Fresh;
                true
            }
            // Only valid sets are published, so this is a torn or foreign value: retry next tick.
            Err(_) => false,
        }
    }

    fn warn_if_stale(&mut self, now: u64) {
        let Some(remote) = &self.remote else { return };
        let freshness = self.state.freshness(now, &remote.schedule);
        if self.set.is_some() && freshness != Freshness::Fresh && freshness != self.warned {
            self.warned = freshness;
            let what = match freshness {
                Freshness::Expired => "are older than max_stale: requests get 503 until a fetch succeeds",
                _ => "are stale (refreshes failing): still serving them, for at most max_stale",
            };
            host::log(LogLevel::Warn, &format!("provider {}: keys {what}", self.name));
        }
    }

    /// Asks for an unknown-`kid` refetch, if the interval allows one (one VM's request wins).
    pub fn ask_kid_refetch(&mut self, now: u64) {
        let Some(remote) = &self.remote else { return };
        let asked = remote.update_state(|s| s.ask_kid_refetch(now, &remote.schedule));
        if let Some(state) = asked {
            self.state = state;
            self.metrics.refetch_unknown_kid.increment();
            host::log(LogLevel::Info, &format!("provider {}: unknown kid, refetching the JWKS", self.name));
        }
    }

    /// Starts a fetch if one is due and this VM wins the lease; returns the call's token.
    pub fn fetch_if_due(&self, now: u64) -> Option<(u32, Fetching)> {
        let remote = self.remote.as_ref()?;
        let (state, cas) = remote.read_state()?;
        let leased = state.claim(now, &remote.schedule)?;
        if !host::shared_set(&remote.state_key, &leased.encode(), cas) {
            return None; // another VM took it
        }
        let what = if remote.jwks.discovery.is_some() { Fetching::Discovery } else { Fetching::Jwks };
        self.dispatch(now, what, &remote.jwks.authority, &remote.jwks.path)
    }

    fn dispatch(&self, now: u64, what: Fetching, authority: &str, path: &str) -> Option<(u32, Fetching)> {
        let remote = self.remote.as_ref()?;
        let call = host::dispatch_get(&remote.jwks.cluster, authority, path, remote.jwks.timeout);
        if call.is_none() {
            self.fetch_failed(now, "could not dispatch the request (is the cluster defined?)");
        }
        Some((call?, what))
    }

    /// The most bytes an answer may have (`max_jwks_bytes`, or the discovery document limit).
    pub fn answer_limit(&self, what: Fetching) -> usize {
        match (what, &self.remote) {
            (Fetching::Discovery, _) => MAX_DISCOVERY_BYTES,
            (Fetching::Jwks, Some(remote)) => remote.jwks.max_jwks_bytes,
            (Fetching::Jwks, None) => 0,
        }
    }

    /// Handles a fetch answer: a discovery document leads to the JWKS fetch (returned); a valid
    /// key set is published for every VM; anything else is a failed fetch that keeps the last good
    /// keys.
    pub fn fetch_answered(&self, now: u64, what: Fetching, answer: &Answer<'_>) -> Option<(u32, Fetching)> {
        let remote = self.remote.as_ref()?;
        let failed = |why: String| {
            let doc = if what == Fetching::Discovery { "discovery" } else { "JWKS" };
            self.fetch_failed(now, &format!("{doc} {why}"));
            None
        };
        let limit = self.answer_limit(what);
        let body = match (answer.status, answer.body) {
            (Some("200"), _) if answer.body_size > limit => {
                return failed(format!("answer of {} bytes exceeds the limit of {limit}", answer.body_size));
            }
            (Some("200"), Some(body)) => body,
            (Some("200"), None) => return failed("answer is empty".to_owned()),
            (status, _) => return failed(format!("answer status {}", status.unwrap_or("none"))),
        };
        match (what, &remote.jwks.discovery) {
            (Fetching::Discovery, Some(d)) => match discovery::jwks_location(body, d) {
                Ok((authority, path)) => self.dispatch(now, Fetching::Jwks, &authority, &path),
                Err(why) => failed(why),
            },
            _ => match KeySet::parse(body) {
                Ok(parsed) => {
                    let headers =
                        fetch::freshness_from_headers(answer.cache_control, answer.expires, answer.date, now);
                    self.publish(now, &parsed, body, remote.schedule.freshness(headers));
                    None
                }
                Err(e) => failed(e.to_string()),
            },
        }
    }

    fn publish(&self, now: u64, parsed: &ParsedJwks, jwks: &[u8], fresh: std::time::Duration) {
        let Some(remote) = &self.remote else { return };
        for skipped in &parsed.skipped {
            host::log(LogLevel::Warn, &format!("provider {}: JWKS key skipped: {skipped}", self.name));
        }
        // Keys first, then the state that announces them: a VM that sees the new version always
        // finds (at least) that version's keys.
        host::shared_set(&remote.keys_key, jwks, None);
        let published = remote.update_state(|s| Some(s.succeeded(now, fresh)));
        self.metrics.fetch_success.increment();
        if let Some(state) = published {
            host::log(
                LogLevel::Info,
                &format!(
                    "provider {}: published JWKS version {} with {} keys, fresh for {} s",
                    self.name,
                    state.version,
                    parsed.keys.len(),
                    fresh.as_secs()
                ),
            );
        }
    }

    fn fetch_failed(&self, now: u64, why: &str) {
        let Some(remote) = &self.remote else { return };
        self.metrics.fetch_failed.increment();
        let failed = remote.update_state(|s| Some(s.failed(now, &remote.schedule)));
        let retry_in = failed.map_or(0, |s| s.next_fetch_at.saturating_sub(now));
        let keeping = if self.set.is_some() { "keeping the last good keys" } else { "no keys yet" };
        host::log(
            LogLevel::Warn,
            &format!("provider {}: fetch failed: {why}; {keeping}; retry in {retry_in} ms", self.name),
        );
    }
}

impl Remote {
    fn new(jwks: &RemoteJwks) -> Remote {
        // Keyed by the source, so providers (or filter chains) sharing a JWKS share its fetches;
        // only sources that accept the same answers meet (see `shared_name`).
        let source = jwks.shared_name();
        // With discovery, one lease covers both fetches.
        let fetches = if jwks.discovery.is_some() { 2 } else { 1 };
        Remote {
            schedule: Schedule {
                cache_duration: jwks.cache_duration,
                min_cache_duration: jwks.min_cache_duration,
                failed_refetch: jwks.failed_refetch_duration,
                timeout: jwks.timeout.saturating_mul(fetches),
                max_stale: jwks.max_stale,
                unknown_kid_interval: jwks.unknown_kid_refetch_interval,
            },
            state_key: format!("{source}#state"),
            keys_key: format!("{source}#keys"),
            source,
            jwks: jwks.clone(),
        }
    }

    fn read_state(&self) -> Option<(FetchState, Option<u32>)> {
        let (value, cas) = host::shared_get(&self.state_key);
        Some((FetchState::decode(&value?)?, cas))
    }

    /// Read-modify-write of the state record under CAS. `change` may decline (`None`); the
    /// result is `None` then, or when every attempt lost the race.
    fn update_state(&self, mut change: impl FnMut(&FetchState) -> Option<FetchState>) -> Option<FetchState> {
        for _ in 0..CAS_ATTEMPTS {
            let (state, cas) = self.read_state().unwrap_or_default();
            let next = change(&state)?;
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
