//! Shared by the decision tests (`tests/authn_*.rs`): fixed clock, tokens and configs, and a
//! `Filter` that holds what a VM keeps between requests (keys, token caches, the shared record,
//! a counting crypto backend) and calls `authn::decide` with a `Req`.
#![allow(dead_code, unused_imports)]

pub use crate::support::config::corp_jwks;
pub use crate::support::mint::{self, TestKey, Token};
pub use Event::{
    Allowed, CacheHit, CacheMiss, Denied, Refused, Reported, SharedHit, SignatureChecked, StaleServed,
    Verified,
};
pub use jwt_authn_wasm::alg::Algorithm;
pub use jwt_authn_wasm::authn::{
    self, Decision, Env, Event, KeyState, RETRY_AFTER_SECONDS, ReadyKeys, Reply, Request, UnknownKid, Wait,
};
pub use jwt_authn_wasm::binding::BindingError;
pub use jwt_authn_wasm::binding::memo::ProofMemo;
pub use jwt_authn_wasm::binding::nonce::Nonces;
pub use jwt_authn_wasm::binding::proof::VerifiedProof;
pub use jwt_authn_wasm::binding::replay::{ReplayRecord, SETTLE_MS};
pub use jwt_authn_wasm::binding::request::BindingHost;
pub use jwt_authn_wasm::cache::TokenCache;
pub use jwt_authn_wasm::config::{Config, CryptoMode, KeySource, ProviderId};
pub use jwt_authn_wasm::crypto::{Crypto, RustCrypto};
pub use jwt_authn_wasm::error::{AuthnError, JwtError};
pub use jwt_authn_wasm::forward::Mutations;
pub use jwt_authn_wasm::identity::Entries;
pub use jwt_authn_wasm::jwks::{Jwk, KeySet};
pub use jwt_authn_wasm::route::RouteChoice;
pub use jwt_authn_wasm::shared_record::{Digester, KeySetId, MemStore, SharedRecord};
pub use serde_json::{Value, json};
pub use std::cell::Cell;

/// The process's digest key, as every VM of one Envoy shares it.
pub static DIGESTER: std::sync::LazyLock<Digester> = std::sync::LazyLock::new(|| Digester::new(&[42; 16]));

/// The fixed clock (Unix seconds): tokens are minted around it.
pub const NOW: i64 = 1_800_000_000;
pub const ISS: &str = "https://issuer.example";
pub const PARTNER_ISS: &str = "https://partner.example";
pub const AUD: &str = "api.example";
pub const STATUS: &str = "x-jwt-authn-status";

// ---- Tokens and configs ----------------------------------------------------------------------

/// A token `corp` accepts: RS256 by `rsa-a`, valid for an hour around `NOW`.
pub fn good() -> Token<'static> {
    Token::new("RS256", TestKey::RsaA)
        .kid("rsa-a")
        .iss(ISS)
        .aud(AUD)
        .sub("alice")
        .claim("iat", json!(NOW))
        .claim("exp", json!(NOW + 3600))
}

/// A token `partner` accepts: ES256 by `ec-a`.
pub fn partner_token() -> Token<'static> {
    Token::new("ES256", TestKey::P256A)
        .kid("ec-a")
        .iss(PARTNER_ISS)
        .aud(AUD)
        .sub("bob")
        .claim("iat", json!(NOW))
        .claim("exp", json!(NOW + 3600))
}

pub fn payload_of(token: &str) -> String {
    token.split('.').nth(1).unwrap().to_owned()
}

/// `base` with the members of `extra` set.
pub fn merged(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// The `corp` provider (issuer `ISS`, audience `AUD`, the fixture JWKS inline) with `extra` fields.
pub fn corp(extra: Value) -> Value {
    let base = json!({"issuer": ISS, "audiences": [AUD], "local_jwks": {"inline_string": corp_jwks()}});
    merged(base, extra)
}

/// The `partner` provider: another issuer on the same default locations (Authorization header).
pub fn partner(extra: Value) -> Value {
    let base =
        json!({"issuer": PARTNER_ISS, "audiences": [AUD], "local_jwks": {"inline_string": corp_jwks()}});
    merged(base, extra)
}

/// A config whose only rule sends `/api` to `corp`.
pub fn corp_only(extra: Value) -> Value {
    json!({"providers": {"corp": corp(extra)}, "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}]})
}

pub fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Header names and values, owned.
pub type Headers = Vec<(String, String)>;

pub fn pairs(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

pub fn allow<'a>(remove: &[&'a str], set: &[(&'a str, &str)]) -> Decision<'a> {
    let set = set.iter().map(|(n, v)| (*n, v.to_string())).collect();
    Decision::Allow(Mutations { remove: remove.to_vec(), set, ..Mutations::default() })
}

pub fn reply(status: u32, header: (&str, &str), body: &str, reason: &'static str) -> Decision<'static> {
    let filter_state = Entries::default();
    Decision::Deny(Reply { status, headers: pairs(&[header]), body: body.to_owned(), reason, filter_state })
}

/// The realm of a request for `path` (see `get`).
pub fn realm(path: &str) -> String {
    format!("https://api.example.com{path}")
}

/// The 401 for a request without a token on `path`: a challenge without an error code (RFC 6750
/// §3.1).
pub fn missing_on(path: &str) -> Decision<'static> {
    let challenge = format!("Bearer realm=\"{}\"", realm(path));
    reply(401, ("www-authenticate", &challenge), "jwt_missing", "jwt_missing")
}

/// The reply to a refused token on `path`: the RFC 6750 challenge with the error code and the
/// reason, and the reason as the body.
pub fn refusal_on(path: &str, status: u32, code: &str, reason: &'static str) -> Decision<'static> {
    let challenge =
        format!("Bearer realm=\"{}\", error=\"{code}\", error_description=\"{reason}\"", realm(path));
    reply(status, ("www-authenticate", &challenge), reason, reason)
}

/// `refusal_on` for `/api`.
pub fn refusal(status: u32, code: &str, reason: &'static str) -> Decision<'static> {
    refusal_on("/api", status, code, reason)
}

// ---- The decision's environment --------------------------------------------------------------

/// The pure-Rust backend, counting its calls (to see cache hits skip the signature).
#[derive(Default)]
pub struct Counting(pub Cell<usize>);

impl Crypto for Counting {
    fn verify(&self, alg: Algorithm, key: &Jwk, input: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        self.0.set(self.0.get() + 1);
        RustCrypto.verify(alg, key, input, sig)
    }
}

/// What a provider's keys look like to the decision.
pub enum Keys {
    /// The keys, what an unknown `kid` does, whether they are stale, and which set they are.
    Ready(KeySet, UnknownKid, bool, KeySetId),
    Pending,
    Unavailable,
}

/// The identity of the fixture key set (`corp_jwks`) as a VM would name it.
pub fn fixture_id() -> KeySetId {
    KeySetId::remote("corp", "idp/jwks.json", CryptoMode::Auto, corp_jwks().as_bytes())
}

/// The nonce secret every VM of one Envoy shares.
pub const NONCE_SECRET: [u8; 32] = [7; 32];

/// What a VM lends the binding checks: its replay record of DPoP proofs over the shared store,
/// the providers' nonces, the connection's client certificate (and how often it was read).
pub struct TestBinding {
    pub replay: ReplayRecord<&'static MemStore>,
    pub nonces: Vec<Option<Nonces>>,
    pub peer: Option<String>,
    pub peer_reads: Cell<usize>,
    /// The clock of the record (Unix ms): the request's.
    pub now_ms: Cell<u64>,
    pub memo: ProofMemo,
}

impl TestBinding {
    fn new(config: &Config, store: &'static MemStore, seed: u8) -> TestBinding {
        let regions = config.providers.iter().map(|p| (p.name.as_str(), &p.binding.dpop));
        let replay = ReplayRecord::new(store, &[seed; 16], regions);
        let nonces = config
            .providers
            .iter()
            .map(|p| p.binding.dpop.nonce.and_then(|n| Nonces::from_shared(&NONCE_SECRET, &n)))
            .collect();
        TestBinding {
            replay,
            nonces,
            peer: None,
            peer_reads: Cell::new(0),
            now_ms: Cell::new(0),
            memo: ProofMemo::default(),
        }
    }
}

impl BindingHost for TestBinding {
    fn nonces(&self, provider: ProviderId) -> Option<&Nonces> {
        self.nonces.get(provider).and_then(Option::as_ref)
    }

    fn peer_certificate(&self) -> Option<String> {
        self.peer_reads.set(self.peer_reads.get() + 1);
        self.peer.clone()
    }

    fn record(&self, provider: ProviderId, proof: &VerifiedProof) -> Result<(), BindingError> {
        self.replay.record(provider, proof, &|| self.now_ms.get())
    }

    fn memo(&self) -> &ProofMemo {
        &self.memo
    }
}

/// A config with the state a VM keeps between requests: keys, token caches, the shared record of
/// verified tokens and the replay record of DPoP proofs (each `Filter` its own store unless
/// `sharing` another's), the crypto backend.
pub struct Filter {
    /// Leaked, so decisions (which borrow header names from it) outlive the `Filter`'s borrows.
    pub config: &'static Config,
    pub keys: Vec<Keys>,
    pub caches: Vec<TokenCache>,
    pub store: &'static MemStore,
    pub shared: SharedRecord<&'static MemStore>,
    pub binding: TestBinding,
    pub crypto: Counting,
}

impl Filter {
    /// Local keys are ready (unknown `kid`s refused, as for local keys); caches as configured.
    pub fn new(doc: Value) -> Filter {
        let config: &'static Config = Box::leak(Box::new(
            Config::parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}: {doc}")),
        ));
        let keys = config
            .providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Local(set) => Keys::Ready(
                    set.clone(),
                    UnknownKid::Refuse,
                    false,
                    KeySetId::local(&p.name, CryptoMode::Auto, doc.to_string().as_bytes()),
                ),
                KeySource::Remote(_) => Keys::Pending,
            })
            .collect();
        let caches = config.providers.iter().map(|p| TokenCache::configured(&p.jwt_cache)).collect();
        // Leaked: a few bytes per test, and `sharing` lends the store to another "VM".
        let store: &'static MemStore = Box::leak(Box::default());
        let sizes = config.providers.iter().map(|p| (p.name.as_str(), p.jwt_cache.shared_cache_size));
        let shared = SharedRecord::new(store, sizes);
        let binding = TestBinding::new(config, store, 1);
        for id in 0..config.providers.len() {
            binding.replay.prepare(id, &|| (NOW as u64 - 1) * 1000);
        }
        Filter { config, keys, caches, store, shared, binding, crypto: Counting::default() }
    }

    /// Another VM of the same Envoy: the same config and keys, its own caches and backend, the
    /// same shared data.
    pub fn sharing(other: &Filter, doc: Value) -> Filter {
        let mut f = Filter::new(doc);
        let sizes = f.config.providers.iter().map(|p| (p.name.as_str(), p.jwt_cache.shared_cache_size));
        f.shared = SharedRecord::new(other.store, sizes);
        f.binding = TestBinding::new(f.config, other.store, 2);
        f.store = other.store;
        f
    }

    pub fn id(&self, name: &str) -> ProviderId {
        self.config.providers.iter().position(|p| p.name == name).unwrap()
    }

    pub fn set_keys(&mut self, name: &str, keys: Keys) {
        let id = self.id(name);
        self.keys[id] = keys;
    }

    /// The fixture keys for provider `name`, with this answer for an unknown `kid`.
    pub fn unknown_kid(&mut self, name: &str, answer: UnknownKid) {
        let set = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
        self.set_keys(name, Keys::Ready(set, answer, false, fixture_id()));
    }

    pub fn decide(&mut self, req: &Req) -> (Decision<'static>, Vec<Event>) {
        let keys = &self.keys;
        let key_state = |id: ProviderId| match keys.get(id) {
            Some(Keys::Ready(set, unknown_kid, stale, id)) => {
                KeyState::Ready(ReadyKeys { keys: set, unknown_kid: *unknown_kid, stale: *stale, id: *id })
            }
            Some(Keys::Pending) => KeyState::Pending,
            Some(Keys::Unavailable) | None => KeyState::Unavailable,
        };
        let mut events = Vec::new();
        self.binding.now_ms.set(u64::try_from(req.now).unwrap() * 1000);
        let mut env = Env {
            keys: &key_state,
            crypto: &self.crypto,
            caches: &mut self.caches,
            digester: &DIGESTER,
            shared: &mut self.shared,
            binding: &self.binding,
            events: &mut events,
        };
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let request = Request {
            headers: &headers,
            may_wait_for_keys: req.wait_keys,
            may_wait_for_kid: req.wait_kid,
            now_ms: u64::try_from(req.now).unwrap() * 1000,
            route: &req.route,
        };
        let decision = authn::decide(self.config, &mut env, &request);
        (decision, events)
    }

    /// Signature verifications so far.
    pub fn crypto_calls(&self) -> usize {
        self.crypto.0.get()
    }
}

/// A request as the filter sees it.
#[derive(Clone)]
pub struct Req {
    pub headers: Headers,
    pub wait_keys: bool,
    pub wait_kid: bool,
    pub now: i64,
    pub route: RouteChoice,
}

/// `GET https://api.example.com<path>`, allowed to wait, at `NOW`.
pub fn get(path: &str) -> Req {
    let headers = pairs(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "api.example.com"),
        (":path", path),
    ]);
    Req { headers, wait_keys: true, wait_kid: true, now: NOW, route: RouteChoice::Rules }
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn method(mut self, method: &str) -> Req {
        self.headers[0].1 = method.to_owned();
        self
    }

    pub fn no_wait_keys(mut self) -> Req {
        self.wait_keys = false;
        self
    }

    pub fn no_wait_kid(mut self) -> Req {
        self.wait_kid = false;
        self
    }

    pub fn route(mut self, route: RouteChoice) -> Req {
        self.route = route;
        self
    }

    pub fn at(mut self, now: i64) -> Req {
        self.now = now;
        self
    }

    /// Every header the filter writes, forged by the client.
    pub fn spoofed(self, names: &[&str]) -> Req {
        names.iter().fold(self, |r, n| r.header(n, "forged"))
    }
}

pub fn jwt(e: JwtError) -> AuthnError {
    AuthnError::Jwt(e)
}

/// A `corp` token that expired long ago.
pub fn expired_token() -> String {
    good().claim("exp", json!(NOW - 3600)).sign()
}
