//! What one wasm VM knows: the compiled config, its copy of every provider's keys, the requests it
//! holds until keys arrive, and the JWKS fetches it has in flight.

use super::keys::ProviderKeys;
use crate::authn::{self, Decision, Env, KeyState, Request};
use crate::cache::TokenCache;
use crate::config::{Config, ProviderId};
use crate::crypto::{Crypto, RustCrypto};

pub struct Vm {
    pub config: Config,
    pub keys: Vec<ProviderKeys>,
    /// Verified-token caches, by provider; cleared when that provider's keys change.
    pub caches: Vec<TokenCache>,
    /// Streams of this VM paused until keys arrive (only this VM can resume them).
    pub held: Vec<Held>,
    /// Fetches this VM dispatched: call token → provider.
    pub calls: Vec<(u32, ProviderId)>,
    /// After this (Unix ms) the startup hold is over: a request that finds no keys is answered 503
    /// at once instead of waiting.
    pub startup_hold_ends: u64,
    /// The signature backend.
    pub crypto: Box<dyn Crypto>,
}

#[derive(Clone, Copy)]
pub struct Held {
    pub context_id: u32,
    /// When the hold gives up and the request is answered 503.
    pub deadline: u64,
}

impl Vm {
    pub fn new(config: Config, now: u64) -> Vm {
        let keys = config.providers.iter().map(|p| ProviderKeys::new(&p.name, &p.keys)).collect();
        let caches = config
            .providers
            .iter()
            .map(|p| TokenCache::new(p.jwt_cache.jwt_cache_size, p.jwt_cache.jwt_max_token_size))
            .collect();
        let hold = u64::try_from(config.startup_hold_timeout.as_millis()).unwrap_or(u64::MAX);
        Vm {
            config,
            keys,
            caches,
            held: Vec::new(),
            calls: Vec::new(),
            startup_hold_ends: now.saturating_add(hold),
            crypto: Box::new(RustCrypto),
        }
    }

    pub fn hold_timeout_ms(&self) -> u64 {
        u64::try_from(self.config.startup_hold_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    pub fn decide(&mut self, headers: &[(String, String)], now_ms: u64, hold_expired: bool) -> Decision {
        let Vm { config, keys, caches, crypto, .. } = self;
        let key_state = |id: ProviderId| keys.get(id).map_or(KeyState::Unavailable, ProviderKeys::state);
        let mut env = Env { keys: &key_state, crypto: crypto.as_ref(), caches };
        authn::decide(config, &mut env, &Request { headers, hold_expired, now_ms })
    }

    /// Adopts newer published keys; a provider whose keys changed forgets its cached tokens.
    /// True when any provider's keys changed.
    pub fn sync_keys(&mut self) -> bool {
        let mut changed = false;
        for (keys, cache) in self.keys.iter_mut().zip(self.caches.iter_mut()) {
            if keys.sync() {
                cache.clear();
                changed = true;
            }
        }
        changed
    }

    pub fn forget(&mut self, context_id: u32) {
        self.held.retain(|h| h.context_id != context_id);
    }
}
