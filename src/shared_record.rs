//! The process-wide record of verified tokens: a token whose signature one worker verified is not
//! verified again by another worker of the same Envoy (Envoy's own jwt_authn cache is per worker,
//! so a token seen on W workers costs W signature checks there).
//!
//! The record lives in proxy-wasm shared data, in a fixed number of buckets per provider (keys
//! `jwt_authn_wasm/v3/tokens/<provider>/<n>`), each holding up to `WAYS` entries. An entry is
//! 32 bytes: the token's digest and the identity of the key set its signature verified under.
//! This module is the whole format and the match rules; the shell only reads and writes the
//! buckets through [`Store`].
//!
//! Why an entry can never admit a token that would fail verification:
//! - A hit requires the exact token: its 128-bit digest under a secret per-process key
//!   ([`Digester`], SipHash-2-4-128 keyed with 128 random bits from WASI `random_get`). The
//!   tokens are chosen by whoever sends requests, who may probe the record with as many as they
//!   like, so the digest is a MAC: SipHash-2-4 is the variant its authors recommend as one
//!   (SipHash-1-3 only as a hash-table hash). Without the key an attacker cannot compute digests,
//!   so a forged token matches a recorded one with probability 2^-128 per try (the same header and
//!   payload with another signature is another token, another digest).
//! - A hit requires the exact key set the asking VM verifies with: [`KeySetId`] is a SHA-256 of
//!   the module's build identity (a hash of its sources, lock file and compiler, see `build.rs`,
//!   so two builds with one version number never share entries), the provider, the key source,
//!   the signature backend and the key document's exact bytes that VM parsed. A signature check is a pure function of those and the
//!   token, so a token recorded under an identical key set verifies again. VMs adopt published
//!   keys at different moments: a VM still on the old set looks for the old identity, one on the
//!   new set for the new one; a key-set change retires every older entry at once.
//! - A hit skips only the signature: the form, header (`alg` allow-list), time, issuer, audience,
//!   subjects, claims and scopes are checked on every request as for any token.
//! - Anything else in a bucket (another format, a torn or truncated value, an empty value left by
//!   `remove_shared_data`) decodes to no entries: never a hit. Writes use the bucket's CAS: a lost
//!   race drops the write (a later verification), never mixes two buckets.

use crate::config::CryptoMode;
use crate::namespace::{self, NAMESPACE};
use sha2::{Digest, Sha256};
use siphasher::sip128::SipHasher24;

/// Entries per bucket.
pub const WAYS: usize = 4;

/// The first byte of a bucket value, so that no other value of the namespace reads as a bucket.
const BUCKET_TAG: u8 = 0xB2;
const DIGEST_BYTES: usize = 16;
/// One entry: the token's digest, then its key set's identity.
pub const ENTRY_BYTES: usize = DIGEST_BYTES + KEY_SET_ID_BYTES;
const KEY_SET_ID_BYTES: usize = 16;

/// Where the per-process digest key lives in shared data.
pub fn digest_key_name() -> String {
    format!("{NAMESPACE}/token-digest-key")
}

/// A token's 128-bit keyed digest: names the exact token, in this record and in the per-VM cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(u128);

impl TokenDigest {
    fn bytes(self) -> [u8; DIGEST_BYTES] {
        self.0.to_le_bytes()
    }
}

/// Computes token digests under one secret key (the process's, shared by every VM).
#[derive(Debug, Clone)]
pub struct Digester {
    hasher: SipHasher24,
}

impl Digester {
    pub const KEY_BYTES: usize = 16;

    pub fn new(key: &[u8; Digester::KEY_BYTES]) -> Digester {
        Digester { hasher: SipHasher24::new_with_key(key) }
    }

    /// The key as shared data holds it, if `value` is one.
    pub fn from_shared(value: &[u8]) -> Option<Digester> {
        <&[u8; Digester::KEY_BYTES]>::try_from(value).ok().map(Digester::new)
    }

    pub fn digest(&self, token: &str) -> TokenDigest {
        TokenDigest(self.hasher.hash(token.as_bytes()).as_u128())
    }

    pub fn key(&self) -> [u8; Digester::KEY_BYTES] {
        self.hasher.key()
    }
}

/// The identity of a key set exactly as one VM verifies with it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetId([u8; KEY_SET_ID_BYTES]);

impl KeySetId {
    /// Keys fetched from `source` (the JWKS location), `jwks` the exact document parsed.
    pub fn remote(provider: &str, source: &str, crypto: CryptoMode, jwks: &[u8]) -> KeySetId {
        KeySetId::of(&[b"remote", provider.as_bytes(), source.as_bytes(), crypto_label(crypto), jwks])
    }

    /// Keys inline in the plugin configuration: `config` is the configuration's exact bytes,
    /// which fix the provider's keys (two filter chains may name different keys `corp`).
    pub fn local(provider: &str, crypto: CryptoMode, config: &[u8]) -> KeySetId {
        KeySetId::of(&[b"local", provider.as_bytes(), crypto_label(crypto), config])
    }

    /// SHA-256 over the module's build identity and every part, each length-prefixed (so no two
    /// lists of parts hash the same input), cut to 128 bits.
    fn of(parts: &[&[u8]]) -> KeySetId {
        KeySetId::of_build(BUILD_ID, parts)
    }

    fn of_build(build: &str, parts: &[&[u8]]) -> KeySetId {
        let mut sha = Sha256::new();
        for part in [NAMESPACE.as_bytes(), build.as_bytes()].iter().chain(parts) {
            sha.update((part.len() as u64).to_le_bytes());
            sha.update(part);
        }
        let mut id = [0; KEY_SET_ID_BYTES];
        for (byte, hashed) in id.iter_mut().zip(sha.finalize()) {
            *byte = hashed;
        }
        KeySetId(id)
    }
}

/// This build's identity (`build.rs`): the module version alone does not tell two builds apart.
pub const BUILD_ID: &str = env!("JWT_AUTHN_WASM_BUILD_ID");

/// Within one Envoy the same mode resolves to the same backend (`auto` runs the same self-test on
/// the same host), and backends may differ on edge cases, so the mode is part of the identity.
fn crypto_label(crypto: CryptoMode) -> &'static [u8] {
    match crypto {
        CryptoMode::Auto => b"auto",
        CryptoMode::Host => b"host",
        CryptoMode::Wasm => b"wasm",
    }
}

/// Shared data as the record needs it (the shell's host calls; a map in tests).
pub trait Store {
    /// The value and its CAS; an absent or empty value is `None`.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value`; with `cas`, only if nobody wrote since. False when refused.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// What the decision asks of the record (object-safe, so `authn` needs no store type).
pub trait TokenRecord {
    /// Whether `digest`'s signature verified under `keys` for `provider` (one shared read).
    fn verified(&mut self, provider: usize, keys: &KeySetId, digest: TokenDigest) -> bool;
    /// Records that it did (one shared write, with the CAS of the read `verified` made).
    fn record(&mut self, provider: usize, keys: &KeySetId, digest: TokenDigest);
}

/// A record that keeps nothing (every provider's `shared_cache_size` 0).
pub struct NoRecord;

impl TokenRecord for NoRecord {
    fn verified(&mut self, _: usize, _: &KeySetId, _: TokenDigest) -> bool {
        false
    }
    fn record(&mut self, _: usize, _: &KeySetId, _: TokenDigest) {}
}

/// The record over a store, with every provider's buckets.
pub struct SharedRecord<S> {
    store: S,
    /// By provider id: the bucket name prefix and the bucket count (0: off).
    regions: Vec<(String, u64)>,
    /// The bucket the last lookup read, for the write that may follow its verification.
    last: Option<LastRead>,
}

struct LastRead {
    name: String,
    digest: TokenDigest,
    entries: Vec<u8>,
    cas: Option<u32>,
}

impl<S: Store> SharedRecord<S> {
    /// `providers`: each provider's name and `shared_cache_size` (entries; 0: off), by id.
    pub fn new<'a>(store: S, providers: impl IntoIterator<Item = (&'a str, usize)>) -> SharedRecord<S> {
        let regions = providers
            .into_iter()
            .map(|(name, size)| (format!("{NAMESPACE}/tokens/{name}/"), size.div_ceil(WAYS) as u64))
            .collect();
        SharedRecord { store, regions, last: None }
    }

    /// The bucket `digest` lives in, `None` when the provider keeps none. The digest is secret-
    /// keyed, so nobody can aim tokens at one bucket to evict a chosen entry.
    fn bucket_name(&self, provider: usize, digest: TokenDigest) -> Option<String> {
        let (prefix, buckets) = self.regions.get(provider).filter(|(_, n)| *n > 0)?;
        Some(namespace::bucket_name(prefix, (digest.0 as u64) % buckets))
    }

    fn read(&self, name: String, digest: TokenDigest) -> LastRead {
        let (value, cas) = self.store.get(&name);
        let entries = value.as_deref().map_or(&[][..], bucket_entries).to_vec();
        LastRead { name, digest, entries, cas }
    }
}

impl<S: Store> TokenRecord for SharedRecord<S> {
    fn verified(&mut self, provider: usize, keys: &KeySetId, digest: TokenDigest) -> bool {
        let Some(name) = self.bucket_name(provider, digest) else { return false };
        let read = self.read(name, digest);
        let hit = contains(&read.entries, digest, keys);
        self.last = Some(read);
        hit
    }

    fn record(&mut self, provider: usize, keys: &KeySetId, digest: TokenDigest) {
        let Some(name) = self.bucket_name(provider, digest) else { return };
        // Normally the read `verified` just made; else (it was not asked) read now.
        let read = match self.last.take().filter(|l| l.name == name && l.digest == digest) {
            Some(read) => read,
            None => self.read(name, digest),
        };
        // A refused CAS means another VM wrote this bucket meanwhile: its write stands, this
        // token is verified once more when next seen (the cost of a lost race, never a wrong
        // answer).
        self.store.set(&read.name, &with_entry(&read.entries, digest, keys), read.cas);
    }
}

/// The entries of a bucket value (a whole number of entries, at most `WAYS`, after the tag);
/// anything else has none.
pub fn bucket_entries(value: &[u8]) -> &[u8] {
    match value.split_first() {
        Some((&BUCKET_TAG, entries))
            if !entries.is_empty()
                && entries.len() % ENTRY_BYTES == 0
                && entries.len() <= WAYS * ENTRY_BYTES =>
        {
            entries
        }
        _ => &[],
    }
}

/// Whether the entries hold exactly this token under exactly this key set.
pub fn contains(entries: &[u8], digest: TokenDigest, keys: &KeySetId) -> bool {
    let wanted = entry(digest, keys);
    entries.chunks_exact(ENTRY_BYTES).any(|e| e == wanted)
}

/// A bucket value with this entry first, then the others but any of the same token (recorded
/// under another key set, now useless), the oldest dropped past `WAYS`.
pub fn with_entry(entries: &[u8], digest: TokenDigest, keys: &KeySetId) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + WAYS * ENTRY_BYTES);
    value.push(BUCKET_TAG);
    value.extend_from_slice(&entry(digest, keys));
    let token = digest.bytes();
    let others = entries.chunks_exact(ENTRY_BYTES).filter(|e| e.get(..DIGEST_BYTES) != Some(&token[..]));
    for other in others.take(WAYS - 1) {
        value.extend_from_slice(other);
    }
    value
}

fn entry(digest: TokenDigest, keys: &KeySetId) -> [u8; ENTRY_BYTES] {
    let mut e = [0; ENTRY_BYTES];
    let (token, set) = e.split_at_mut(DIGEST_BYTES);
    token.copy_from_slice(&digest.bytes());
    set.copy_from_slice(&keys.0);
    e
}

/// Shared data in memory, with the host's CAS rules (tests, and the authn tests' two "VMs").
#[derive(Default)]
pub struct MemStore {
    map: std::cell::RefCell<std::collections::HashMap<String, (Vec<u8>, u32)>>,
    next_cas: std::cell::Cell<u32>,
}

impl Store for MemStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.map.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()).filter(|v| !v.is_empty()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut map = self.map.borrow_mut();
        if let (Some(cas), Some((_, current))) = (cas, map.get(key)) {
            if cas != *current {
                return false;
            }
        }
        self.next_cas.set(self.next_cas.get().wrapping_add(1));
        map.insert(key.to_owned(), (value.to_vec(), self.next_cas.get()));
        true
    }
}

impl<S: Store> Store for &S {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        (*self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        (*self).set(key, value, cas)
    }
}

impl MemStore {
    /// Every name in the store (tests look at what was written).
    pub fn names(&self) -> Vec<String> {
        self.map.borrow().keys().cloned().collect()
    }

    /// Overwrites a value behind the record's back (garbage, truncation, `remove_shared_data`).
    pub fn put(&self, key: &str, value: &[u8]) {
        self.set(key, value, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &[u8] = br#"{"keys":[]}"#;

    fn ids() -> (Digester, KeySetId) {
        (Digester::new(&[7; 16]), KeySetId::remote("corp", "idp/jwks", CryptoMode::Auto, JWKS))
    }

    fn record(store: &MemStore, size: usize) -> SharedRecord<&MemStore> {
        SharedRecord::new(store, [("corp", size), ("other", size)])
    }

    #[test]
    fn a_recorded_token_is_a_hit_for_the_same_key_set_only() {
        let (d, keys) = ids();
        let store = MemStore::default();
        let mut a = record(&store, 64);
        let mut b = record(&store, 64);
        let token = d.digest("header.payload.signature");
        assert!(!a.verified(0, &keys, token));
        a.record(0, &keys, token);
        assert!(b.verified(0, &keys, token), "another VM finds it");

        assert!(!b.verified(0, &keys, d.digest("header.payload.signaturf")), "another token");
        assert!(!b.verified(1, &keys, token), "another provider's region");
        let other_provider = KeySetId::remote("other", "idp/jwks", CryptoMode::Auto, JWKS);
        assert!(!b.verified(0, &other_provider, token), "another provider's key set");
        let newer = KeySetId::remote("corp", "idp/jwks", CryptoMode::Auto, br#"{"keys":[{}]}"#);
        assert!(!b.verified(0, &newer, token), "an older key set is retired at once");
        let other_source = KeySetId::remote("corp", "idp/other", CryptoMode::Auto, JWKS);
        assert!(!b.verified(0, &other_source, token), "another source");
        let other_backend = KeySetId::remote("corp", "idp/jwks", CryptoMode::Wasm, JWKS);
        assert!(!b.verified(0, &other_backend, token), "another signature backend");
        let other_key = Digester::new(&[8; 16]);
        assert!(!b.verified(0, &keys, other_key.digest("header.payload.signature")), "another digest key");
    }

    #[test]
    fn two_builds_never_share_a_key_set_id() {
        assert!(BUILD_ID.len() == 64 && BUILD_ID.bytes().all(|b| b.is_ascii_hexdigit()), "{BUILD_ID}");
        let parts: &[&[u8]] = &[b"remote", b"corp", b"idp/jwks", b"auto", JWKS];
        assert_eq!(KeySetId::of(parts), KeySetId::of_build(BUILD_ID, parts));
        let other = format!("{:0>64}", "1");
        assert_ne!(KeySetId::of(parts), KeySetId::of_build(&other, parts), "same version, other build");
    }

    #[test]
    fn key_set_ids_separate_their_parts() {
        let local = KeySetId::local("corp", CryptoMode::Auto, b"{}");
        assert_ne!(local, KeySetId::local("corp", CryptoMode::Auto, b"{ }"), "other config bytes");
        assert_ne!(local, KeySetId::local("corpx", CryptoMode::Auto, b"{}"));
        assert_ne!(
            KeySetId::remote("ab", "c", CryptoMode::Auto, b""),
            KeySetId::remote("a", "bc", CryptoMode::Auto, b""),
            "parts are length-prefixed"
        );
        assert_eq!(local, KeySetId::local("corp", CryptoMode::Auto, b"{}"), "deterministic");
    }

    #[test]
    fn a_zero_size_keeps_nothing_and_reads_nothing() {
        let (d, keys) = ids();
        let store = MemStore::default();
        let mut off = record(&store, 0);
        off.record(0, &keys, d.digest("t"));
        assert!(!off.verified(0, &keys, d.digest("t")));
        assert!(store.names().is_empty());
    }

    #[test]
    fn garbage_truncated_foreign_or_emptied_buckets_are_never_hits() {
        let (d, keys) = ids();
        let store = MemStore::default();
        let mut r = record(&store, 4); // one bucket
        let token = d.digest("t");
        r.record(0, &keys, token);
        let name = format!("{NAMESPACE}/tokens/corp/0");
        let (good, _) = store.get(&name);
        let good = good.unwrap();
        assert!(r.verified(0, &keys, token));
        let mut wrong_tag = good.clone();
        wrong_tag[0] ^= 1;
        let mut overlong = good.clone();
        overlong.extend_from_slice(&good[1..]);
        overlong.extend_from_slice(&good[1..]);
        overlong.extend_from_slice(&good[1..]);
        overlong.extend_from_slice(&good[1..]);
        for bad in [&good[..good.len() - 1], &good[1..], &wrong_tag, &overlong, b"", b"\xB2", &good[..1]] {
            store.put(&name, bad);
            assert!(!r.verified(0, &keys, token), "{bad:?}");
        }
        // A damaged bucket is simply rewritten by the next record.
        r.record(0, &keys, token);
        assert!(r.verified(0, &keys, token));
    }

    #[test]
    fn buckets_are_bounded_and_keep_the_newest() {
        let (d, keys) = ids();
        let store = MemStore::default();
        let mut r = record(&store, 4); // one bucket of WAYS entries
        let tokens: Vec<_> = (0..WAYS + 2).map(|i| d.digest(&i.to_string())).collect();
        for t in &tokens {
            r.record(0, &keys, *t);
        }
        let hits: Vec<bool> = tokens.iter().map(|t| r.verified(0, &keys, *t)).collect();
        assert_eq!(hits, [false, false, true, true, true, true]);
        // Recording a token again under a new key set replaces its old entry, not another's.
        let newer = KeySetId::remote("corp", "idp/jwks", CryptoMode::Auto, b"{}");
        r.record(0, &newer, tokens[5]);
        assert!(r.verified(0, &newer, tokens[5]));
        assert!(!r.verified(0, &keys, tokens[5]));
        assert!(tokens[2..5].iter().all(|t| r.verified(0, &keys, *t)));
        let (value, _) = store.get(&format!("{NAMESPACE}/tokens/corp/0"));
        assert_eq!(value.unwrap().len(), 1 + WAYS * ENTRY_BYTES);
    }

    #[test]
    fn the_number_of_buckets_is_fixed_whatever_the_tokens() {
        let (d, keys) = ids();
        let store = MemStore::default();
        let mut r = record(&store, 64);
        for i in 0..10_000 {
            r.record(0, &keys, d.digest(&format!("token {i}")));
        }
        assert_eq!(store.names().len(), 64 / WAYS);
    }

    #[test]
    fn a_write_that_lost_the_race_is_dropped_and_the_winner_stands() {
        let (d, keys) = ids();
        let store = MemStore::default();
        let mut a = record(&store, 4);
        let mut b = record(&store, 4);
        let (ta, tb, tc) = (d.digest("a"), d.digest("b"), d.digest("c"));
        // A bucket's creation cannot be CAS-protected (the host's rule): the later write wins
        // whole, and the other token is only verified again.
        assert!(!a.verified(0, &keys, ta) && !b.verified(0, &keys, tb));
        b.record(0, &keys, tb);
        a.record(0, &keys, ta);
        assert!(a.verified(0, &keys, ta) && !a.verified(0, &keys, tb));
        // Once it exists, a write from a stale read is refused.
        assert!(!a.verified(0, &keys, tc));
        b.record(0, &keys, tb);
        a.record(0, &keys, tc);
        assert!(a.verified(0, &keys, tb) && a.verified(0, &keys, ta), "the winner's write stands");
        assert!(!a.verified(0, &keys, tc), "the loser verifies again next time");
        a.record(0, &keys, tc); // with a fresh read it goes in
        assert!([ta, tb, tc].iter().all(|t| b.verified(0, &keys, *t)));
    }

    #[test]
    fn digest_keys_come_from_shared_data_of_exactly_sixteen_bytes() {
        assert!(Digester::from_shared(&[1; 15]).is_none());
        assert!(Digester::from_shared(&[1; 17]).is_none());
        let d = Digester::from_shared(&[1; 16]).unwrap();
        assert_eq!(d.key(), [1; 16]);
        assert_eq!(d.digest("x"), Digester::new(&[1; 16]).digest("x"));
        assert_ne!(d.digest("x"), d.digest("y"));
    }
}
