//! What one wasm VM knows: the compiled config, its copy of every provider's keys, the requests it
//! holds until keys arrive, and the JWKS fetches it has in flight.

use super::binding::HostBinding;
use super::keys::{Fetching, ProviderKeys};
use super::metrics::Metrics;
use super::shared_tokens::{self, HostStore};
use crate::authn::{self, Decision, Env, KeyState, Request, Wait};
use crate::cache::TokenCache;
use crate::config::{Config, ProviderId};
use crate::crypto::Crypto;
use crate::fetch;
use crate::route::RouteChoice;
use crate::shared_record::{Digester, SharedRecord};

pub struct Vm {
    pub config: Config,
    pub keys: Vec<ProviderKeys>,
    /// Verified-token caches, by provider; cleared when that provider's keys change.
    pub caches: Vec<TokenCache>,
    /// The process-wide record of verified tokens, and the digest that names tokens there and
    /// in `caches`.
    shared: SharedRecord<HostStore>,
    digester: Digester,
    /// The replay record of DPoP proofs, the nonce secret, the client certificate.
    pub binding: HostBinding,
    /// Headers to add to the answers of streams allowed with some (`DPoP-Nonce`), by context id:
    /// empty unless a provider offers nonces.
    answer_headers: Vec<(u32, Vec<(&'static str, String)>)>,
    /// Streams of this VM paused until keys arrive (only this VM can resume them).
    pub held: Vec<Held>,
    /// Fetches this VM dispatched: call token → provider and what was asked for.
    pub calls: Vec<(u32, ProviderId, Fetching)>,
    /// After this (Unix ms) the startup hold is over: a request that finds no keys is answered 503
    /// at once instead of waiting.
    pub startup_hold_ends: u64,
    /// The signature backend.
    pub crypto: Box<dyn Crypto>,
    pub metrics: Metrics,
    /// Reused for every decision's events (no allocation per request).
    events: Vec<authn::Event>,
    /// Routes (name, problem) whose metadata this VM has warned about, at most
    /// `MAX_WARNED_ROUTES` (routes come from configuration, but route updates can bring new ones).
    warned_routes: Vec<(String, String)>,
}

/// Past this many, a route this VM cannot follow is warned about on every request.
const MAX_WARNED_ROUTES: usize = 256;

#[derive(Clone, Copy)]
pub struct Held {
    pub context_id: u32,
    /// When the hold gives up: the request is then decided once more with nothing left to wait for
    /// (503 without keys, 401 for a `kid` still unknown).
    pub deadline: u64,
}

impl Vm {
    /// `config_bytes`: the plugin configuration `config` was parsed from (it names local keys).
    pub fn new(
        config: Config,
        config_bytes: &[u8],
        now: u64,
        crypto: Box<dyn Crypto>,
        digester: Digester,
        binding: HostBinding,
    ) -> Vm {
        let metrics = Metrics::define(&config);
        let backend = (crypto.as_ref(), config.crypto);
        let keys = config
            .providers
            .iter()
            .zip(&metrics.providers)
            .map(|(p, m)| ProviderKeys::new(&p.name, &p.keys, *m, backend, config_bytes))
            .collect();
        let caches = config.providers.iter().map(|p| TokenCache::configured(&p.jwt_cache)).collect();
        let sizes = config.providers.iter().map(|p| (p.name.as_str(), p.jwt_cache.shared_cache_size));
        let shared = SharedRecord::new(HostStore, sizes);
        let hold = fetch::ms(config.startup_hold_timeout);
        Vm {
            config,
            keys,
            caches,
            shared,
            digester,
            binding,
            answer_headers: Vec::new(),
            held: Vec::new(),
            calls: Vec::new(),
            startup_hold_ends: now.saturating_add(hold),
            crypto,
            metrics,
            events: Vec::new(),
            warned_routes: Vec::new(),
        }
    }

    /// Whether this is the first time this VM meets `problem` on the route `name` (then it is
    /// remembered).
    pub fn first_warning_for(&mut self, name: &str, problem: &str) -> bool {
        let seen = self.warned_routes.iter().any(|(n, p)| n == name && p == problem);
        if !seen && self.warned_routes.len() < MAX_WARNED_ROUTES {
            self.warned_routes.push((name.to_owned(), problem.to_owned()));
        }
        !seen
    }

    /// Asks for the refetches a held request needs and says until when it may wait: the startup
    /// hold, or for an unknown `kid` only as long as its refetch may take.
    pub fn hold(&mut self, wait: &Wait, now: u64) -> u64 {
        for id in &wait.refetch {
            if let Some(keys) = self.keys.get_mut(*id) {
                keys.ask_kid_refetch(now);
            }
        }
        let startup = fetch::ms(self.config.startup_hold_timeout);
        let refetch = self.keys.iter().map(ProviderKeys::refetch_wait_ms).max().unwrap_or(0);
        now.saturating_add(if wait.for_kid { refetch.min(startup) } else { startup })
    }

    /// Decides a request (`route`: its route's metadata); `held_until` is the deadline of a request already held (`None` for a
    /// new one, which may wait for first keys only during the startup hold).
    pub fn decide(
        &mut self,
        headers: &[(&str, &str)],
        route: &RouteChoice,
        now_ms: u64,
        held_until: Option<u64>,
    ) -> Decision<'_> {
        let (may_wait_for_keys, may_wait_for_kid) = match held_until {
            None => (now_ms < self.startup_hold_ends, true),
            Some(deadline) => (now_ms < deadline, now_ms < deadline),
        };
        let Vm { config, keys, caches, shared, digester, binding, crypto, metrics, events, .. } = self;
        let key_state = |id: ProviderId| keys.get(id).map_or(KeyState::Unavailable, |k| k.state(now_ms));
        let binding = &*binding;
        let mut env =
            Env { keys: &key_state, crypto: crypto.as_ref(), caches, digester, shared, binding, events };
        let decision = authn::decide(
            config,
            &mut env,
            &Request { headers, may_wait_for_keys, may_wait_for_kid, now_ms, route },
        );
        for event in events.drain(..) {
            metrics.record(event);
        }
        decision
    }

    /// Adopts newer published keys; a provider whose keys changed forgets its cached tokens.
    /// True when any provider's keys or fetch state changed, so held requests may be decided.
    pub fn sync_keys(&mut self, now: u64) -> bool {
        let mut changed = false;
        for (keys, cache) in self.keys.iter_mut().zip(self.caches.iter_mut()) {
            let synced = keys.sync(now, self.crypto.as_ref());
            if synced.keys {
                cache.clear();
            }
            changed |= synced.keys || synced.state;
        }
        changed
    }

    /// Takes up the process's digest key if another VM replaced it (two VMs that started
    /// together; see `shared_tokens::process_key`). Cached digests under the old key are dropped.
    pub fn sync_digest_key(&mut self) {
        if let Some(current) = shared_tokens::current().filter(|d| d.key() != self.digester.key()) {
            self.digester = current;
            self.caches.iter_mut().for_each(TokenCache::clear);
        }
    }

    pub fn forget(&mut self, context_id: u32) {
        self.held.retain(|h| h.context_id != context_id);
        self.answer_headers.retain(|(id, _)| *id != context_id);
    }

    /// Keeps the headers to add to the answer of stream `context_id` (nothing kept when empty).
    pub fn answer_with(&mut self, context_id: u32, headers: Vec<(&'static str, String)>) {
        if !headers.is_empty() {
            self.answer_headers.push((context_id, headers));
        }
    }

    /// The headers to add to the answer of stream `context_id`, taken.
    pub fn take_answer_headers(&mut self, context_id: u32) -> Vec<(&'static str, String)> {
        match self.answer_headers.iter().position(|(id, _)| *id == context_id) {
            Some(at) => self.answer_headers.swap_remove(at).1,
            None => Vec::new(),
        }
    }
}
