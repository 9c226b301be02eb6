//! Per-provider memory of tokens already checked, so a token seen again costs a map lookup and the
//! cheap claim checks instead of a signature verification (jwt_authn's `jwt_cache_config`).
//!
//! Verified tokens are kept up to `capacity`; a hit is only a shortcut past the signature: the
//! caller still checks time, issuer, audience and subjects, since those depend on `now` and the rule.
//! Tokens whose signature failed are kept for a short while in a smaller negative cache, so a flood
//! of one forged token costs one verification. Both are cleared when the provider's keys change.
//! Eviction is first-in first-out: cheap, bounded, and an attacker cannot keep entries alive.
//!
//! Entries are keyed by the token's 128-bit keyed digest (`shared_record::Digester`), computed
//! once per token and also used for the shared record, instead of the token itself: inserting a
//! fresh token copies 16 bytes, not the whole token twice (map key and eviction order). Sound for
//! the reason the shared record is: without the process's secret key nobody can make another
//! token with a recorded token's digest. (Measured in V8, a 566-byte token: an insert went from
//! 5–8.6 µs to 0.2 µs, a lookup from 2.2–3.5 µs to 0.17 µs; hashing the token with std's SipHash
//! was most of the old cost, the copies 0.09 µs each.)
//!
//! Every verified token is admitted at once. A doorkeeper (admit on the second sighting) would
//! save that 0.2 µs for tokens seen once, and cost every reused token a second shared-record read
//! and decode (about 2.5 µs and a host call), or a second signature check without the record: it
//! does not pay while more than a few percent of tokens are reused, the common case.

use crate::config::JwtCacheConfig;
use crate::error::JwtError;
use crate::shared_record::TokenDigest;
use crate::verify::VerifiedJwt;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// How long a signature failure is remembered (Unix ms).
pub const NEGATIVE_TTL_MS: u64 = 30_000;
/// Negative entries kept, at most.
pub const NEGATIVE_CAPACITY: usize = 256;

/// What is remembered of a token.
#[derive(Debug, Clone)]
pub enum Cached {
    /// Its signature verified with the current keys (claims still to be checked).
    Verified(Rc<VerifiedJwt>),
    /// It was refused for a reason that only new keys could change.
    Refused(JwtError),
}

#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    max_token_bytes: usize,
    verified: Bounded<Rc<VerifiedJwt>>,
    refused: Bounded<(JwtError, u64)>,
}

impl TokenCache {
    /// A provider's cache as its `jwt_cache_config` says.
    pub fn configured(config: &JwtCacheConfig) -> TokenCache {
        TokenCache::new(config.jwt_cache_size, config.jwt_max_token_size)
    }

    /// `capacity` 0 disables the cache; tokens longer than `max_token_bytes` are not kept.
    pub fn new(capacity: usize, max_token_bytes: usize) -> TokenCache {
        TokenCache { capacity, max_token_bytes, verified: Bounded::default(), refused: Bounded::default() }
    }

    /// Whether anything is ever kept (`capacity` > 0).
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, token: TokenDigest, now_ms: u64) -> Option<Cached> {
        if let Some(jwt) = self.verified.map.get(&token) {
            return Some(Cached::Verified(Rc::clone(jwt)));
        }
        match self.refused.map.get(&token) {
            Some((error, until)) if now_ms < *until => Some(Cached::Refused(*error)),
            _ => None,
        }
    }

    /// `token_len`: the token's length, as `jwt_max_token_size` limits what is kept.
    pub fn insert_verified(&mut self, token: TokenDigest, token_len: usize, jwt: Rc<VerifiedJwt>) {
        if self.keeps(token_len) {
            self.verified.insert(token, jwt, self.capacity);
        }
    }

    /// Remembers a refusal that only a key change could undo (a signature or key mismatch).
    pub fn insert_refused(&mut self, token: TokenDigest, token_len: usize, error: JwtError, now_ms: u64) {
        if self.keeps(token_len) && matches!(error, JwtError::BadSignature | JwtError::NoMatchingKey) {
            let until = now_ms.saturating_add(NEGATIVE_TTL_MS);
            self.refused.insert(token, (error, until), NEGATIVE_CAPACITY.min(self.capacity));
        }
    }

    /// Forgets everything: the keys changed.
    pub fn clear(&mut self) {
        self.verified = Bounded::default();
        self.refused = Bounded::default();
    }

    pub fn len(&self) -> usize {
        self.verified.map.len() + self.refused.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keeps(&self, token_len: usize) -> bool {
        self.capacity > 0 && token_len <= self.max_token_bytes
    }
}

/// A map with first-in first-out eviction at a capacity.
#[derive(Debug)]
struct Bounded<V> {
    map: HashMap<TokenDigest, V>,
    order: VecDeque<TokenDigest>,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<V> Bounded<V> {
    /// Callers only insert with a capacity above 0 (`TokenCache::keeps`).
    fn insert(&mut self, key: TokenDigest, value: V, capacity: usize) {
        if self.map.insert(key, value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.map.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;
    use crate::shared_record::Digester;
    use crate::token::Header;

    /// Digests of test tokens (any fixed key: these tests are about the cache's bounds).
    fn d(token: &str) -> TokenDigest {
        Digester::new(&[9; 16]).digest(token)
    }

    fn jwt() -> Rc<VerifiedJwt> {
        Rc::new(VerifiedJwt {
            header: Header { alg: crate::alg::Algorithm::RS256, kid: None },
            claims: Claims::parse(br#"{"sub":"a"}"#).unwrap(),
            payload_b64: "e30".into(),
            header_b64: "e30".into(),
        })
    }

    #[test]
    fn remembers_verified_tokens_up_to_capacity_first_in_first_out() {
        let mut cache = TokenCache::new(2, 100);
        for t in ["a", "b", "c"] {
            cache.insert_verified(d(t), 1, jwt());
        }
        assert!(cache.get(d("a"), 0).is_none(), "the oldest went first");
        assert!(matches!(cache.get(d("b"), 0), Some(Cached::Verified(_))));
        assert!(matches!(cache.get(d("c"), 0), Some(Cached::Verified(_))));
        cache.insert_verified(d("c"), 1, jwt());
        assert_eq!(cache.len(), 2, "re-inserting does not grow the cache");
    }

    #[test]
    fn disabled_or_oversize_tokens_are_not_kept() {
        let mut off = TokenCache::new(0, 100);
        off.insert_verified(d("a"), 1, jwt());
        off.insert_refused(d("b"), 1, JwtError::BadSignature, 0);
        assert!(off.is_empty());
        let mut small = TokenCache::new(10, 3);
        small.insert_verified(d("abcd"), 4, jwt());
        assert!(small.get(d("abcd"), 0).is_none());
        small.insert_verified(d("abc"), 3, jwt());
        assert!(small.get(d("abc"), 0).is_some());
    }

    #[test]
    fn refusals_expire_and_only_key_dependent_ones_are_kept() {
        let mut cache = TokenCache::new(10, 100);
        cache.insert_refused(d("forged"), 6, JwtError::BadSignature, 1_000);
        cache.insert_refused(d("expired"), 7, JwtError::Expired, 1_000);
        assert!(matches!(cache.get(d("forged"), 1_000), Some(Cached::Refused(JwtError::BadSignature))));
        assert!(cache.get(d("forged"), 1_000 + NEGATIVE_TTL_MS).is_none(), "expired entry");
        assert!(cache.get(d("expired"), 1_000).is_none(), "time-dependent refusals are checked afresh");
    }

    #[test]
    fn negative_cache_is_bounded_separately() {
        let mut cache = TokenCache::new(10_000, 100);
        for i in 0..NEGATIVE_CAPACITY + 50 {
            cache.insert_refused(d(&i.to_string()), 1, JwtError::BadSignature, 0);
        }
        assert_eq!(cache.len(), NEGATIVE_CAPACITY);
        cache.insert_verified(d("good"), 4, jwt());
        cache.clear();
        assert!(cache.is_empty());
    }
}
