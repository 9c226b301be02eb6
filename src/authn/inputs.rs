//! What a decision reads and records: the keys, caches, shared record and binding state a VM lends
//! it (`Env`), the parts of the request (`Request`), and the events it logs for metrics.

use crate::binding::request::BindingHost;
use crate::cache::TokenCache;
use crate::config::ProviderId;
use crate::crypto::Crypto;
use crate::error::AuthnError;
use crate::jwks::KeySet;
use crate::route::RouteChoice;
use crate::shared_record::{Digester, KeySetId, TokenRecord};

/// What the filter knows about a provider's keys at this moment.
#[derive(Clone, Copy)]
pub enum KeyState<'a> {
    /// Keys to verify with.
    Ready(ReadyKeys<'a>),
    /// None yet (first fetch outstanding or failing): the request may wait.
    Pending,
    /// None usable and no point in waiting.
    Unavailable,
}

#[derive(Clone, Copy)]
pub struct ReadyKeys<'a> {
    pub keys: &'a KeySet,
    /// What a token naming a `kid` these keys lack may do.
    pub unknown_kid: UnknownKid,
    /// The keys are past their freshness (refreshes failing), served within `max_stale`.
    pub stale: bool,
    /// Exactly which key set these are, for the shared record of verified tokens.
    pub id: KeySetId,
}

/// What a token whose `kid` is not in the key set may do (see `fetch` for the refetch rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKid {
    /// Refused at once (local keys, or this interval's refetch is spent).
    Refuse,
    /// A refetch is under way: wait for it.
    Wait,
    /// Ask for a refetch and wait for it.
    Refetch,
}

/// What the VM lends the decision: its keys, its signature backend, its token caches, the
/// process-wide record of verified tokens, and a log of what happened (for metrics).
///
/// A token is looked up in the VM's cache first (no host call), then in the shared record (one
/// read), and only then verified (and written to both).
pub struct Env<'a> {
    pub keys: &'a dyn Fn(ProviderId) -> KeyState<'a>,
    pub crypto: &'a dyn Crypto,
    /// One per provider, by id; an empty slice caches nothing.
    pub caches: &'a mut [TokenCache],
    /// Names tokens in the caches and the shared record.
    pub digester: &'a Digester,
    pub shared: &'a mut dyn TokenRecord,
    /// The replay record, nonce secret and client certificate, for providers with a binding on
    /// (never asked for the others).
    pub binding: &'a dyn BindingHost,
    pub events: &'a mut Vec<Event>,
}

/// Something worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The request may go on (after a requirement).
    Allowed,
    /// The request was (or, in report mode, would have been) refused.
    Denied(AuthnError),
    /// Report mode let a request through that enforce mode would refuse.
    Reported,
    /// A CORS preflight passed without a token.
    CorsBypassed,
    /// This provider's tokens all verified.
    Verified(ProviderId),
    /// This provider refused a token.
    Refused(ProviderId, AuthnError),
    CacheHit(ProviderId),
    CacheMiss(ProviderId),
    /// A token's signature was checked with some key (not counted: no key to try).
    SignatureChecked(ProviderId),
    /// Another VM had verified the token: its signature was not checked again.
    SharedHit(ProviderId),
    /// A token verified with keys past their freshness.
    StaleServed(ProviderId),
}

/// The parts of a request the decision reads. Header names are lower case; pseudo-headers
/// (`:path`, `:method`, `:authority`, ...) are among them, as proxy-wasm gives them.
pub struct Request<'a> {
    pub headers: &'a [(&'a str, &'a str)],
    /// Whether the request may wait for a provider's first keys (else: 503 at once).
    pub may_wait_for_keys: bool,
    /// Whether the request may wait for an unknown-`kid` refetch (else: refused at once).
    pub may_wait_for_kid: bool,
    /// Unix milliseconds.
    pub now_ms: u64,
    /// What the matched route's metadata says (`Rules` when routes are not read).
    pub route: &'a RouteChoice,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub(super) fn now_seconds(&self) -> i64 {
        i64::try_from(self.now_ms / 1000).unwrap_or(i64::MAX)
    }

    pub(super) fn path(&self) -> &str {
        self.header(":path").unwrap_or("/")
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method` (as jwt_authn).
    pub(super) fn is_cors_preflight(&self) -> bool {
        self.header(":method") == Some("OPTIONS")
            && self.header("origin").is_some()
            && self.header("access-control-request-method").is_some()
    }
}
