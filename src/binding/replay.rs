//! The process-wide record of DPoP proofs seen: a proof (its key and `jti`) is accepted once per
//! window by the whole Envoy, not once per worker (RFC 9449 §11.1). It lives in proxy-wasm shared
//! data, in a fixed number of buckets per provider (`replay_cache_size / WAYS` keys named
//! `jwt_authn_wasm/v3/dpop-jti/<provider>/<buckets>/<n>`), so it never grows with traffic. This
//! module is the whole format and every rule; the shell only passes a [`Store`] and a clock.
//!
//! # The guarantee
//!
//! A proof [`ReplayRecord::record`] accepted is refused by every worker of the Envoy for as long as
//! its `iat` passes `max_age`: there is no way to have the same proof accepted twice by shifting
//! load. When the record cannot vouch for a proof, it refuses it (`dpop_replay_full`,
//! `dpop_replay_unavailable`): a client then sends a new proof, which lands in another bucket.
//!
//! Why, rule by rule:
//! - An entry is the proof's 64-bit digest (SipHash under the bucket's own random salt, over the
//!   key thumbprint and `jti`) and the second it expires (`iat + max_age`). A proof is accepted
//!   only by a compare-and-swap write of its bucket with the entry added, based on a read that
//!   did not hold it. Two workers racing with one proof read the same bucket; the first write
//!   wins, the second's CAS fails, it reads again, finds the entry and refuses. A lost race is
//!   retried a few times, then refused, never accepted unrecorded.
//! - A write keeps every unexpired entry. A bucket full of unexpired entries refuses the proof
//!   instead of evicting one (eviction would forget a proof still inside its window).
//! - A digest collision (2^-64 per entry) can only make a new proof look replayed: a refusal.
//! - Creating a shared-data key is never CAS-protected in proxy-wasm: a worker that read "absent"
//!   writes blindly, and could overwrite a bucket another worker created meanwhile, with the
//!   entries in it. So a bucket is created in two steps, and every blind write is judged by its
//!   writer:
//!   1. the creator reads the clock (`t0`), sees the bucket absent, writes a *pending* value
//!      blindly, reads the clock again (`t1`);
//!   2. it reads the bucket back and, if it still holds its own pending value, opens it with a CAS
//!      write: *usable* from `SETTLE_MS` after that read, and *clean* if `t1 - t0 <= SETTLE_MS`.
//!
//!   No bucket records anything before `SETTLE_MS` after its creation. A blind write that destroys
//!   entries was therefore made by a creator whose "absent" read came before the destroyed
//!   bucket existed, hence more than `SETTLE_MS` before the write: its `t1 - t0` exceeds
//!   `SETTLE_MS`, and it opens the bucket *tainted* instead: with a floor of
//!   `now + max_future`, below which (`iat <= floor`) the bucket refuses every proof. Any proof
//!   the lost entries had accepted had `iat <= (its acceptance) + max_future <= floor`: refused.
//! - A bucket that is neither open nor pending (an emptied value, another format), or pending for
//!   longer than `STUCK_MS` (its creator died), is reopened tainted by CAS, for the same reason.
//!
//! Proofs an honest client makes right after a tainted reopening are refused for up to
//! `max_future` seconds in that bucket (a new proof usually lands elsewhere), and every proof for
//! `SETTLE_MS` after a bucket's creation; [`ReplayRecord::prepare`] creates every bucket when the
//! configuration loads, before requests come.
//!
//! # When it weakens
//!
//! - The clock: every worker reads the same wall clock. If it steps back by more than
//!   `SETTLE_MS` during a bucket's creation, the creator's check can judge a destroying write
//!   clean; if it steps forward, entries expire early, and a step back afterwards puts their
//!   proofs inside the window again.
//! - Configuration changes: a provider renamed, or a new `replay_cache_size`, starts a new
//!   region, and a proof accepted under the old configuration may be accepted once more under the
//!   new one within its window. So may a proof whose entry was written with a shorter `max_age`
//!   than a later configuration allows, or whose bucket was reopened with a smaller `max_future`
//!   than the one it was accepted under.
//! - Capacity: the record holds `replay_cache_size` proofs, at most `WAYS` per bucket; at a third
//!   full, a few buckets fill up and their proofs are refused. Size it at three times the proofs
//!   of one window (`max_age + max_future` seconds of DPoP requests).

use super::BindingError;
use super::proof::VerifiedProof;
use crate::config::{BindingMode, DpopConfig};
use crate::namespace::{self, NAMESPACE};
use crate::shared_record::Store;
use siphasher::sip::SipHasher13 as Sip64;
use siphasher::sip128::SipHasher13;

/// Entries per bucket.
pub const WAYS: usize = 16;
/// How long a new bucket waits before it records, in milliseconds (see the module doc).
pub const SETTLE_MS: u64 = 250;
/// A bucket pending this long is opened by anyone (its creator died between its two steps).
pub const STUCK_MS: u64 = 5_000;
/// The bytes of per-worker randomness [`ReplayRecord::new`] takes.
pub const SEED_BYTES: usize = 16;
/// CAS writes tried before a bucket that other workers keep changing refuses the proof.
const TRIES: usize = 3;

const PENDING_TAG: u8 = 0xD0;
const OPEN_TAG: u8 = 0xD1;
const PENDING_BYTES: usize = 1 + 8 + 8;
const SALT_BYTES: usize = 16;
const ENTRY_BYTES: usize = 8 + 8;

/// The record over a store, with every provider's region.
pub struct ReplayRecord<S> {
    store: S,
    /// This worker's secret randomness: its creator id and the salts of buckets it opens.
    seed: SipHasher13,
    creator: u64,
    /// By provider id; `None` for a provider without DPoP.
    regions: Vec<Option<Region>>,
}

struct Region {
    /// `…/dpop-jti/<provider>/<buckets>/`.
    prefix: String,
    buckets: u64,
    max_age: i64,
    max_future: i64,
}

/// What [`ReplayRecord::prepare`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prepared {
    /// Buckets this worker created.
    pub created: usize,
    /// Of those, opened tainted (the creation was slow; see the module doc).
    pub tainted: usize,
}

/// A bucket value, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bucket {
    Pending {
        creator: u64,
        started_ms: u64,
    },
    Open(Open),
    /// Empty, truncated or of another format.
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Open {
    salt: [u8; SALT_BYTES],
    usable_from_ms: u64,
    /// Proofs with `iat <= floor` are refused (`i64::MIN`: none).
    floor: i64,
    /// Digest and expiry (Unix seconds) of each proof recorded.
    entries: Vec<(u64, i64)>,
}

impl<S: Store> ReplayRecord<S> {
    /// `seed`: fresh randomness per worker (WASI `random_get`); `providers`: each provider's name
    /// and DPoP settings, by provider id (those with `dpop.mode` disabled get no region).
    pub fn new<'a>(
        store: S,
        seed: &[u8; SEED_BYTES],
        providers: impl IntoIterator<Item = (&'a str, &'a DpopConfig)>,
    ) -> ReplayRecord<S> {
        let seed = SipHasher13::new_with_key(seed);
        let creator = seed.hash(b"creator").as_u128() as u64;
        let regions = providers.into_iter().map(|(name, config)| Region::new(name, config)).collect();
        ReplayRecord { store, seed, creator, regions }
    }

    /// Creates the provider's buckets that do not exist yet (run when the configuration loads,
    /// before requests). Once every bucket exists a marker says so, and later workers read only
    /// the marker.
    pub fn prepare(&self, provider: usize, clock: &dyn Fn() -> u64) -> Prepared {
        let mut prepared = Prepared::default();
        let Some(region) = self.region(provider) else { return prepared };
        let marker = format!("{}ready", region.prefix);
        if self.store.get(&marker).0.is_some() {
            return prepared;
        }
        for n in 0..region.buckets {
            match self.create(&region.bucket_name(n), region, clock) {
                Some(true) => prepared.created += 1,
                Some(false) => {
                    prepared.created += 1;
                    prepared.tainted += 1;
                }
                None => {}
            }
        }
        self.store.set(&marker, b"1", None);
        prepared
    }

    /// Records `proof` for `provider`, or says why it must be refused (the rules in the module
    /// doc). Call it last, once everything else about the request has passed: a recorded proof
    /// can never be used again.
    pub fn record(
        &self,
        provider: usize,
        proof: &VerifiedProof,
        clock: &dyn Fn() -> u64,
    ) -> Result<(), BindingError> {
        let region = self.region(provider).ok_or(BindingError::ReplayUnavailable)?;
        let name = region.bucket_name(region.bucket_of(proof));
        for _ in 0..TRIES {
            let (value, cas) = self.store.get(&name);
            let now_ms = clock();
            let cas = match cas {
                None => {
                    self.create(&name, region, clock);
                    return Err(BindingError::ReplayUnavailable);
                }
                // 0 would make the write unconditional (the host's rule): never trust it.
                Some(0) => return Err(BindingError::ReplayUnavailable),
                Some(cas) => cas,
            };
            let open = match decode(value.as_deref().unwrap_or_default()) {
                Bucket::Open(open) => open,
                Bucket::Pending { started_ms, .. } if now_ms < started_ms.saturating_add(STUCK_MS) => {
                    return Err(BindingError::ReplayUnavailable);
                }
                Bucket::Pending { .. } | Bucket::Unreadable => {
                    self.open(&name, region, cas, now_ms, false);
                    return Err(BindingError::ReplayUnavailable);
                }
            };
            let value = with_proof(open, region, proof, now_ms)?;
            if self.store.set(&name, &value, Some(cas)) {
                return Ok(());
            }
            // Another worker wrote the bucket since the read (maybe this very proof): read again.
        }
        Err(BindingError::ReplayUnavailable)
    }

    fn region(&self, provider: usize) -> Option<&Region> {
        self.regions.get(provider).and_then(Option::as_ref)
    }

    /// Creates an absent bucket in the two steps of the module doc. `None` when it existed (or
    /// another worker's value replaced this one's); else whether it was opened clean.
    fn create(&self, name: &str, region: &Region, clock: &dyn Fn() -> u64) -> Option<bool> {
        let started_ms = clock();
        if self.store.get(name).1.is_some() {
            return None;
        }
        self.store.set(name, &pending(self.creator, started_ms), None);
        let written_ms = clock();
        let (value, cas) = self.store.get(name);
        let cas = cas.filter(|cas| *cas != 0)?;
        let ours = Bucket::Pending { creator: self.creator, started_ms };
        if decode(value.as_deref().unwrap_or_default()) != ours {
            return None;
        }
        let clean = written_ms.saturating_sub(started_ms) <= SETTLE_MS;
        self.open(name, region, cas, clock(), clean);
        Some(clean)
    }

    /// Opens a bucket by CAS, empty, usable `SETTLE_MS` after `now_ms` (read after the read that
    /// gave `cas`); unless `clean`, with the floor that refuses every proof a lost entry may have
    /// accepted.
    fn open(&self, name: &str, region: &Region, cas: u32, now_ms: u64, clean: bool) -> bool {
        let floor = match clean {
            true => i64::MIN,
            false => seconds(now_ms).saturating_add(region.max_future),
        };
        let salt = self.seed.hash(format!("salt {name} {now_ms}").as_bytes()).as_bytes();
        let open =
            Open { salt, usable_from_ms: now_ms.saturating_add(SETTLE_MS), floor, entries: Vec::new() };
        self.store.set(name, &encode_open(&open), Some(cas))
    }
}

impl Region {
    fn new(provider: &str, config: &DpopConfig) -> Option<Region> {
        if config.mode == BindingMode::Disabled {
            return None;
        }
        let buckets = config.replay_cache_size.div_ceil(WAYS).max(1) as u64;
        Some(Region {
            prefix: format!("{NAMESPACE}/dpop-jti/{provider}/{buckets}/"),
            buckets,
            max_age: i64::try_from(config.max_age_seconds).unwrap_or(i64::MAX),
            max_future: i64::try_from(config.max_future_seconds).unwrap_or(i64::MAX),
        })
    }

    fn bucket_name(&self, n: u64) -> String {
        namespace::bucket_name(&self.prefix, n)
    }

    /// Which bucket holds a proof. Not keyed: the `jti` of someone else's next proof is random,
    /// so nobody can aim at the bucket it will need; a client aiming its own proofs at one bucket
    /// fills it with valid proofs no faster than it could fill the whole record.
    fn bucket_of(&self, proof: &VerifiedProof) -> u64 {
        let digest = SipHasher13::new_with_key(&[0; 16]).hash(&proof_bytes(proof)).as_u128();
        ((digest >> 64) as u64) % self.buckets
    }
}

/// The proof as its digests cover it: the key thumbprint (fixed length), then `jti`.
fn proof_bytes(proof: &VerifiedProof) -> Vec<u8> {
    [proof.jkt.as_bytes().as_slice(), proof.jti.as_bytes()].concat()
}

/// The bucket value with `proof` added, or why it cannot be (replayed, not usable yet, below
/// the floor, full). Expired entries are dropped; no unexpired one ever is.
fn with_proof(
    mut open: Open,
    region: &Region,
    proof: &VerifiedProof,
    now_ms: u64,
) -> Result<Vec<u8>, BindingError> {
    let digest = Sip64::new_with_key(&open.salt).hash(&proof_bytes(proof));
    if open.entries.iter().any(|(d, _)| *d == digest) {
        return Err(BindingError::Replayed);
    }
    if now_ms < open.usable_from_ms || proof.iat.floor() <= open.floor {
        return Err(BindingError::ReplayUnavailable);
    }
    let now = seconds(now_ms);
    open.entries.retain(|(_, expiry)| *expiry >= now);
    if open.entries.len() >= WAYS {
        return Err(BindingError::ReplayFull);
    }
    // The proof passes `iat` until `floor(iat) + max_age`; its entry outlives that.
    open.entries.push((digest, proof.iat.ceil().saturating_add(region.max_age)));
    Ok(encode_open(&open))
}

fn seconds(ms: u64) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

fn pending(creator: u64, started_ms: u64) -> Vec<u8> {
    [&[PENDING_TAG][..], &creator.to_le_bytes(), &started_ms.to_le_bytes()].concat()
}

fn encode_open(open: &Open) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + SALT_BYTES + 16 + open.entries.len() * ENTRY_BYTES);
    value.push(OPEN_TAG);
    value.extend_from_slice(&open.salt);
    value.extend_from_slice(&open.usable_from_ms.to_le_bytes());
    value.extend_from_slice(&open.floor.to_le_bytes());
    for (digest, expiry) in &open.entries {
        value.extend_from_slice(&digest.to_le_bytes());
        value.extend_from_slice(&expiry.to_le_bytes());
    }
    value
}

fn decode(value: &[u8]) -> Bucket {
    match value.split_first() {
        Some((&PENDING_TAG, rest)) if value.len() == PENDING_BYTES => {
            Bucket::Pending { creator: u64_at(rest, 0), started_ms: u64_at(rest, 8) }
        }
        Some((&OPEN_TAG, rest)) => decode_open(rest).map_or(Bucket::Unreadable, Bucket::Open),
        _ => Bucket::Unreadable,
    }
}

/// An open bucket after its tag: salt, `usable_from_ms`, `floor`, then whole entries, at most
/// `WAYS`.
fn decode_open(rest: &[u8]) -> Option<Open> {
    let (salt, rest) = rest.split_at_checked(SALT_BYTES)?;
    let entries = rest.get(16..)?;
    if entries.len() % ENTRY_BYTES != 0 || entries.len() > WAYS * ENTRY_BYTES {
        return None;
    }
    Some(Open {
        salt: salt.try_into().ok()?,
        usable_from_ms: u64_at(rest, 0),
        floor: i64::from_le_bytes(le8(rest, 8)),
        entries: entries
            .chunks_exact(ENTRY_BYTES)
            .map(|e| (u64_at(e, 0), i64::from_le_bytes(le8(e, 8))))
            .collect(),
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(le8(bytes, at))
}

/// The 8 bytes at `at` (the callers checked the length; zeros if short).
fn le8(bytes: &[u8], at: usize) -> [u8; 8] {
    bytes.get(at..at.saturating_add(8)).and_then(|b| b.try_into().ok()).unwrap_or_default()
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
