//! The shell of sender-constrained tokens (`crate::binding`, where every rule lives): the replay
//! record of DPoP proofs over shared data, the nonce secret every VM shares, and the connection's
//! client certificate. A configuration without bindings creates nothing here and makes no host
//! call per request.

use super::host;
use super::shared_tokens::{HostStore, process_secret, random, shared_secret};
use crate::binding::BindingError;
use crate::binding::memo::ProofMemo;
use crate::binding::nonce::{self, KEY_BYTES, Nonces};
use crate::binding::proof::VerifiedProof;
use crate::binding::replay::{ReplayRecord, SEED_BYTES};
use crate::binding::request::BindingHost;
use crate::config::{Config, NonceConfig, ProviderId};
use proxy_wasm::types::LogLevel;

/// The property path of the client certificate's SHA-256 (hex), on a TLS connection with one.
const PEER_CERTIFICATE: &[u8] = b"connection\0sha256_peer_certificate_digest";

pub struct HostBinding {
    replay: ReplayRecord<HostStore>,
    /// By provider: its nonce settings, when it wants nonces.
    steps: Vec<Option<NonceConfig>>,
    /// By provider: its nonces under the current secret.
    nonces: Vec<Option<Nonces>>,
    /// The nonce secret `nonces` were made with (empty: none yet).
    secret: Vec<u8>,
    memo: ProofMemo,
}

impl HostBinding {
    /// This VM's part for `config`: its replay record (the buckets of every provider with DPoP
    /// created, if no VM did yet) and, when a provider wants nonces, the shared secret. `Err`
    /// only when WASI has no randomness to give.
    pub fn new(config: &Config) -> Result<HostBinding, String> {
        let mut seed = [0; SEED_BYTES];
        random(&mut seed)?;
        let regions = config.providers.iter().map(|p| (p.name.as_str(), &p.binding.dpop));
        let replay = ReplayRecord::new(HostStore, &seed, regions);
        for (id, provider) in config.providers.iter().enumerate() {
            // The clock is read afresh at every call: a bucket's creation is judged by it.
            let prepared = replay.prepare(id, &host::now_ms);
            if prepared.created > 0 {
                let message = format!(
                    "provider {}: created {} DPoP replay record buckets ({} opened tainted)",
                    provider.name, prepared.created, prepared.tainted
                );
                host::log(LogLevel::Info, &message);
            }
        }
        let steps: Vec<_> = config.providers.iter().map(|p| p.binding.dpop.nonce).collect();
        let mut binding =
            HostBinding { replay, nonces: Vec::new(), steps, secret: Vec::new(), memo: ProofMemo::default() };
        if binding.steps.iter().any(Option::is_some) {
            let secret = process_secret(&nonce::key_name(), KEY_BYTES, nonce_secret)?;
            binding.adopt(secret);
        }
        Ok(binding)
    }

    /// Takes up the nonce secret if another VM replaced it (two VMs that started together; see
    /// `shared_tokens::process_secret`): one shared-data read per tick, only when a provider wants
    /// nonces. Until then this VM's nonces fail elsewhere, and clients get the current one
    /// through a `use_dpop_nonce` answer.
    pub fn sync_nonces(&mut self) {
        if self.steps.iter().all(Option::is_none) {
            return;
        }
        let current = shared_secret(&nonce::key_name(), nonce_secret);
        if let Some(secret) = current.filter(|s| *s != self.secret) {
            self.adopt(secret);
        }
    }

    fn adopt(&mut self, secret: Vec<u8>) {
        self.nonces =
            self.steps.iter().map(|step| step.and_then(|s| Nonces::from_shared(&secret, &s))).collect();
        self.secret = secret;
    }
}

/// The nonce secret in a shared-data value: exactly `KEY_BYTES` bytes.
fn nonce_secret(value: &[u8]) -> Option<Vec<u8>> {
    (value.len() == KEY_BYTES).then(|| value.to_vec())
}

impl BindingHost for HostBinding {
    fn nonces(&self, provider: ProviderId) -> Option<&Nonces> {
        self.nonces.get(provider).and_then(Option::as_ref)
    }

    fn peer_certificate(&self) -> Option<String> {
        let digest = host::property(PEER_CERTIFICATE).ok().flatten()?;
        String::from_utf8(digest).ok()
    }

    fn record(&self, provider: ProviderId, proof: &VerifiedProof) -> Result<(), BindingError> {
        self.replay.record(provider, proof, &host::now_ms)
    }

    fn memo(&self) -> &ProofMemo {
        &self.memo
    }
}
