//! What a DPoP request repeats from one request to the next, worked out once per VM. A client
//! signs every proof with the same key, so each proof's protected header (`typ`, `alg`, `jwk`) is
//! the same text; and it presents the same access token until that expires. Decoding and checking
//! that header, importing its key, the key's RFC 7638 thumbprint and the token's `ath` hash are
//! most of a proof's cost besides its signature; they are kept here for the few clients a VM saw
//! last.
//!
//! Why a kept entry can never let through a proof that the full checks would refuse: an entry is
//! found only by the exact text it was computed from (the header segment together with the `alg`
//! allow-list it was checked against; the whole access token), and what it holds is a function
//! of that text alone, with no clock and nothing else of the request in it: the same checks on
//! the same bytes give the same answer. Only headers that passed are kept, so a refused one is
//! checked again every time. Everything that differs per proof (its claims, its signature, its
//! `jti`) is checked on every request as before.

use super::thumbprint::{Thumbprint, access_token_hash};
use crate::alg::AlgorithmSet;
use crate::jwks::Jwk;
use crate::token::Header;
use std::cell::RefCell;
use std::rc::Rc;

/// Clients remembered: a VM sees one client per connection at a time, and a proxy in front of
/// many clients interleaves them; more slots than this cost a longer scan on every miss.
pub const SLOTS: usize = 8;

/// A proof header that passed `proof`'s rules 2 and 3, and what came out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofKey {
    pub header: Header,
    pub key: Jwk,
    /// The RFC 7638 thumbprint of `key`.
    pub jkt: Thumbprint,
}

/// One VM's memo (a `RefCell` each: the checks read it through the shared `BindingHost`).
#[derive(Debug, Default)]
pub struct ProofMemo {
    keys: RefCell<Slots<(AlgorithmSet, String), Rc<ProofKey>>>,
    hashes: RefCell<Slots<String, Thumbprint>>,
}

impl ProofMemo {
    /// The key of a proof whose header segment is `header`, checked against `algorithms`, if it
    /// was kept.
    pub fn key(&self, algorithms: AlgorithmSet, header: &str) -> Option<Rc<ProofKey>> {
        self.keys.borrow().find(|(algs, text)| *algs == algorithms && text == header).cloned()
    }

    /// Keeps `key`, which the header segment `header` gave under `algorithms`.
    pub fn keep_key(&self, algorithms: AlgorithmSet, header: &str, key: ProofKey) -> Rc<ProofKey> {
        let key = Rc::new(key);
        self.keys.borrow_mut().keep((algorithms, header.to_owned()), Rc::clone(&key));
        key
    }

    /// `ath` of `token`: base64url-decoded SHA-256 of its text (RFC 9449 §4.2).
    pub fn token_hash(&self, token: &str) -> Thumbprint {
        if let Some(hash) = self.hashes.borrow().find(|text| text == token) {
            return *hash;
        }
        let hash = access_token_hash(token);
        self.hashes.borrow_mut().keep(token.to_owned(), hash);
        hash
    }
}

/// A few entries, the oldest replaced first.
#[derive(Debug)]
struct Slots<K, V> {
    entries: Vec<(K, V)>,
    /// The slot the next new entry takes once all are used.
    next: usize,
}

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Slots { entries: Vec::with_capacity(SLOTS), next: 0 }
    }
}

impl<K, V> Slots<K, V> {
    fn find(&self, matches: impl Fn(&K) -> bool) -> Option<&V> {
        self.entries.iter().find(|(k, _)| matches(k)).map(|(_, v)| v)
    }

    fn keep(&mut self, key: K, value: V) {
        if self.entries.len() < SLOTS {
            self.entries.push((key, value));
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = (key, value);
        }
        self.next = (self.next + 1) % SLOTS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::Algorithm;
    use crate::binding::thumbprint::jwk_thumbprint;
    use crate::jwks::{PublicKey, test_keys};

    /// A proof key told apart by its header's `kid`.
    fn proof_key(kid: &str) -> ProofKey {
        let key = Jwk::from_key(PublicKey::P256(*test_keys::p256("p256-a").verifying_key()));
        let header = Header { alg: Algorithm::ES256, kid: Some(kid.to_owned()) };
        ProofKey { header, jkt: jwk_thumbprint(&key.key), key }
    }

    #[test]
    fn a_key_is_found_by_its_exact_header_and_allow_list_only() {
        let memo = ProofMemo::default();
        let es256: AlgorithmSet = [Algorithm::ES256].into_iter().collect();
        let kept = memo.keep_key(es256, "eyJh", proof_key("a"));
        assert_eq!(memo.key(es256, "eyJh"), Some(kept));
        assert_eq!(memo.key(es256, "eyJi"), None, "another header");
        assert_eq!(memo.key(es256, "eyJ"), None, "a prefix");
        assert_eq!(memo.key(es256, "eyJhx"), None, "a longer header");
        assert_eq!(memo.key([Algorithm::RS256].into_iter().collect(), "eyJh"), None, "another allow-list");
    }

    #[test]
    fn the_oldest_entry_goes_first() {
        let memo = ProofMemo::default();
        let all = AlgorithmSet::all();
        for i in 0..=SLOTS {
            memo.keep_key(all, &i.to_string(), proof_key(&i.to_string()));
        }
        assert_eq!(memo.key(all, "0"), None, "replaced by the ninth");
        for i in 1..=SLOTS {
            assert_eq!(
                memo.key(all, &i.to_string()).map(|k| k.header.kid.clone()),
                Some(Some(i.to_string()))
            );
        }
    }

    #[test]
    fn a_token_hash_is_the_hash_of_that_exact_token() {
        let memo = ProofMemo::default();
        let tokens = ["a.b.c", "a.b.d", "a.b.c.", "", "A.b.c"];
        for _ in 0..2 {
            for token in tokens.iter().chain(&tokens) {
                assert!(memo.token_hash(token) == access_token_hash(token), "{token:?}");
            }
        }
        // More tokens than slots: every answer is still the token's own hash.
        for i in 0..3 * SLOTS {
            let token = format!("t{}", i % (SLOTS + 1));
            assert!(memo.token_hash(&token) == access_token_hash(&token), "{token}");
        }
    }
}
