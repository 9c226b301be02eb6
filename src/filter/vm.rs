//! What one wasm VM knows: the compiled config, its copy of every provider's keys, the requests it
//! holds until keys arrive, and the JWKS fetches it has in flight.

use super::keys::ProviderKeys;
use crate::authn::{self, Decision, Request};
use crate::config::{Config, ProviderId};
use crate::crypto::Crypto;

pub struct Vm {
    pub config: Config,
    pub keys: Vec<ProviderKeys>,
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
    pub fn new(config: Config, now: u64, crypto: Box<dyn Crypto>) -> Vm {
        let keys =
            config.providers.iter().map(|p| ProviderKeys::new(&p.name, &p.keys, crypto.as_ref())).collect();
        let hold = u64::try_from(config.startup_hold_timeout.as_millis()).unwrap_or(u64::MAX);
        Vm {
            config,
            keys,
            held: Vec::new(),
            calls: Vec::new(),
            startup_hold_ends: now.saturating_add(hold),
            crypto,
        }
    }

    pub fn hold_timeout_ms(&self) -> u64 {
        u64::try_from(self.config.startup_hold_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    pub fn decide(&self, headers: &[(String, String)], now_ms: u64, hold_expired: bool) -> Decision {
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let keys =
            |id: ProviderId| self.keys.get(id).map_or(authn::KeyState::Unavailable, ProviderKeys::state);
        authn::decide(&self.config, &keys, self.crypto.as_ref(), &Request { headers, hold_expired, now })
    }

    pub fn forget(&mut self, context_id: u32) {
        self.held.retain(|h| h.context_id != context_id);
    }
}
