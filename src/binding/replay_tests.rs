//! The replay record with shared data in memory and two or three "workers" (records with their
//! own seeds over one store), including the interleavings that matter: two workers with one
//! proof, lost races, and a slow creator whose blind write lands on a bucket in use.

use super::*;
use crate::binding::thumbprint::{Thumbprint, access_token_hash};
use crate::claims::NumericDate;
use crate::shared_record::MemStore;
use std::cell::{Cell, RefCell};

const NOW: i64 = 1_700_000_000;
const T0: u64 = NOW as u64 * 1000;

fn config(size: usize) -> DpopConfig {
    DpopConfig { mode: BindingMode::Allowed, replay_cache_size: size, ..DpopConfig::default() }
}

fn worker<S: Store>(store: S, seed: u8, config: &DpopConfig) -> ReplayRecord<S> {
    ReplayRecord::new(store, &[seed; SEED_BYTES], [("corp", config)])
}

/// One test's shared data, clock (at `T0`) and settings; the workers come from it.
struct Setup {
    store: MemStore,
    config: DpopConfig,
    clock: Clock,
}

impl Setup {
    fn new(size: usize) -> Setup {
        Setup { store: MemStore::default(), config: config(size), clock: Clock::at(T0) }
    }

    fn worker(&self, seed: u8) -> ReplayRecord<&MemStore> {
        worker(&self.store, seed, &self.config)
    }

    fn now(&self) -> impl Fn() -> u64 + '_ {
        self.clock.read()
    }

    /// A worker that prepared the record, the clock then moved past the buckets' settling.
    fn settled(&self, seed: u8) -> ReplayRecord<&MemStore> {
        let w = self.worker(seed);
        w.prepare(0, &self.clock.read());
        self.clock.advance(SETTLE_MS);
        w
    }
}

fn key(n: u8) -> Thumbprint {
    access_token_hash(&format!("key {n}"))
}

fn proof(key: Thumbprint, jti: &str, iat: i64) -> VerifiedProof {
    VerifiedProof { jkt: key, jti: jti.to_owned(), iat: NumericDate::from_secs(iat), nonce: None }
}

/// A clock the test moves.
struct Clock(Cell<u64>);

impl Clock {
    fn at(ms: u64) -> Clock {
        Clock(Cell::new(ms))
    }
    fn read(&self) -> impl Fn() -> u64 + '_ {
        || self.0.get()
    }
    fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
    fn secs(&self) -> i64 {
        (self.0.get() / 1000) as i64
    }
}

/// The store as one worker sees it, where `before_write` runs just before each of its writes
/// (with the write's CAS; `None`: a blind write): another worker's steps, or the clock moving.
struct Interleaved<'a> {
    inner: &'a MemStore,
    before_write: RefCell<Box<dyn FnMut(Option<u32>) + 'a>>,
}

impl<'a> Interleaved<'a> {
    fn new(inner: &'a MemStore, before_write: impl FnMut(Option<u32>) + 'a) -> Interleaved<'a> {
        Interleaved { inner, before_write: RefCell::new(Box::new(before_write)) }
    }
}

impl Store for Interleaved<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        (self.before_write.borrow_mut())(cas);
        self.inner.set(key, value, cas)
    }
}

/// The name of bucket `n` of provider `corp` with `buckets` buckets.
fn bucket_name(buckets: u64, n: u64) -> String {
    format!("{NAMESPACE}/dpop-jti/corp/{buckets}/{n}")
}

/// The only bucket of a record of `config(16)`, decoded.
fn bucket(store: &MemStore) -> Bucket {
    decode(&store.get(&bucket_name(1, 0)).0.unwrap_or_default())
}

#[test]
fn a_proof_is_accepted_once_by_the_whole_envoy() {
    let s = Setup::new(64);
    let (a, b) = (s.worker(1), s.worker(2));
    assert_eq!(a.prepare(0, &s.now()), Prepared { created: 4, tainted: 0 });
    s.clock.advance(SETTLE_MS);
    let p = proof(key(1), "jti-1", NOW);
    assert_eq!(a.record(0, &p, &s.now()), Ok(()));
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::Replayed), "same worker");
    assert_eq!(b.record(0, &p, &s.now()), Err(BindingError::Replayed), "another worker");
    // Another jti, or the same jti from another key, is another proof.
    assert_eq!(b.record(0, &proof(key(1), "jti-2", NOW), &s.now()), Ok(()));
    assert_eq!(b.record(0, &proof(key(2), "jti-1", NOW), &s.now()), Ok(()));
    // A proof with another iat but the same key and jti is the same proof.
    assert_eq!(a.record(0, &proof(key(1), "jti-1", NOW + 3), &s.now()), Err(BindingError::Replayed));
}

#[test]
fn new_buckets_record_only_once_settled_and_are_prepared_once() {
    let s = Setup::new(64);
    let (a, b) = (s.worker(1), s.worker(2));
    assert_eq!(a.prepare(0, &s.now()).created, 4);
    assert_eq!(b.prepare(0, &s.now()), Prepared::default(), "the marker says the buckets exist");
    assert_eq!(s.store.names().len(), 4 + 1);
    let p = proof(key(1), "jti", NOW);
    s.clock.advance(SETTLE_MS - 1);
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::ReplayUnavailable));
    s.clock.advance(1);
    assert_eq!(a.record(0, &p, &s.now()), Ok(()));
}

#[test]
fn an_absent_bucket_is_created_by_the_request_that_needs_it() {
    let s = Setup::new(16);
    let a = s.worker(1);
    let p = proof(key(1), "jti", NOW);
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::ReplayUnavailable));
    let Bucket::Open(open) = bucket(&s.store) else { panic!("{:?}", bucket(&s.store)) };
    assert_eq!((open.floor, open.usable_from_ms, open.entries.len()), (i64::MIN, T0 + SETTLE_MS, 0));
    s.clock.advance(SETTLE_MS);
    assert_eq!(a.record(0, &p, &s.now()), Ok(()));
}

#[test]
fn a_full_bucket_refuses_rather_than_forgets() {
    let s = Setup::new(16); // one bucket
    let a = s.settled(1);
    let proofs: Vec<_> = (0..WAYS).map(|i| proof(key(1), &format!("jti-{i}"), NOW)).collect();
    for p in &proofs {
        assert_eq!(a.record(0, p, &s.now()), Ok(()));
    }
    assert_eq!(a.record(0, &proof(key(1), "one-more", NOW + 1), &s.now()), Err(BindingError::ReplayFull));
    assert!(proofs.iter().all(|p| a.record(0, p, &s.now()) == Err(BindingError::Replayed)));
    // Entries live until their proofs' `iat` no longer passes: `NOW + max_age` included.
    s.clock.0.set((NOW as u64 + 60) * 1000);
    assert_eq!(a.record(0, &proof(key(1), "later", NOW + 60), &s.now()), Err(BindingError::ReplayFull));
    s.clock.advance(1000);
    assert_eq!(a.record(0, &proof(key(1), "later", NOW + 61), &s.now()), Ok(()));
    let Bucket::Open(open) = bucket(&s.store) else { panic!() };
    assert_eq!(open.entries.len(), 1, "the expired entries went with that write");
}

#[test]
fn two_workers_with_one_proof_at_the_same_moment() {
    let s = Setup::new(16);
    let b = s.settled(2);
    let p = proof(key(1), "jti", NOW);
    // B records the proof between A's read and A's write.
    let b_result = Cell::new(None);
    let a = worker(
        Interleaved::new(&s.store, |_| {
            if b_result.get().is_none() {
                b_result.set(Some(b.record(0, &p, &s.now())));
            }
        }),
        1,
        &s.config,
    );
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::Replayed));
    assert_eq!(b_result.get(), Some(Ok(())), "exactly one of them accepted it");
}

#[test]
fn a_lost_race_is_retried_and_persistent_contention_refuses() {
    let s = Setup::new(16);
    let b = s.settled(2);
    // One lost race: A reads again and records its proof beside B's.
    let raced = Cell::new(false);
    let a = worker(
        Interleaved::new(&s.store, |_| {
            if !raced.replace(true) {
                assert_eq!(b.record(0, &proof(key(2), "b-1", NOW), &s.now()), Ok(()));
            }
        }),
        1,
        &s.config,
    );
    let mine = proof(key(1), "a-1", NOW);
    assert_eq!(a.record(0, &mine, &s.now()), Ok(()));
    assert_eq!(b.record(0, &mine, &s.now()), Err(BindingError::Replayed));

    // B writes before every one of A's writes: A gives up, and has recorded nothing.
    let n = Cell::new(0);
    let a = worker(
        Interleaved::new(&s.store, |_| {
            n.set(n.get() + 1);
            assert_eq!(b.record(0, &proof(key(2), &format!("b-{}", n.get() + 1), NOW), &s.now()), Ok(()));
        }),
        1,
        &s.config,
    );
    let contended = proof(key(1), "a-2", NOW);
    assert_eq!(a.record(0, &contended, &s.now()), Err(BindingError::ReplayUnavailable));
    assert_eq!(n.get(), 3);
    assert_eq!(b.record(0, &contended, &s.now()), Ok(()), "A's proof was never recorded");
}

/// The blind-write hazard: A sees the bucket absent, stalls; B creates it, records a proof; then
/// A's blind write replaces the bucket. A notices it was slow and opens the bucket tainted, so
/// the lost proof cannot be replayed, even with the largest `iat` it could have been accepted with.
#[test]
fn a_slow_creator_that_overwrote_a_bucket_in_use_taints_it() {
    let s = Setup::new(16);
    let b = s.worker(2);
    let lost = proof(key(1), "lost", NOW + 10);
    let a = worker(
        Interleaved::new(&s.store, |cas| {
            if cas.is_none() && bucket(&s.store) == Bucket::Unreadable {
                assert_eq!(b.prepare(0, &s.now()), Prepared { created: 1, tainted: 0 });
                s.clock.advance(SETTLE_MS);
                assert_eq!(b.record(0, &lost, &s.now()), Ok(()));
                s.clock.advance(1);
            }
        }),
        1,
        &s.config,
    );
    assert_eq!(a.prepare(0, &s.now()), Prepared { created: 1, tainted: 1 });
    let Bucket::Open(open) = bucket(&s.store) else { panic!() };
    assert!(open.entries.is_empty(), "the blind write lost the entry");
    assert_eq!(open.floor, s.clock.secs() + 10);
    s.clock.advance(SETTLE_MS);
    for w in [&b, &s.worker(3)] {
        assert_eq!(w.record(0, &lost, &s.now()), Err(BindingError::ReplayUnavailable));
    }
    // New proofs pass again once their `iat` is above the floor.
    let new = |iat| proof(key(1), "new", iat);
    assert_eq!(b.record(0, &new(s.clock.secs()), &s.now()), Err(BindingError::ReplayUnavailable));
    assert_eq!(b.record(0, &new(open.floor + 1), &s.now()), Ok(()));
}

/// Two creators at once, neither slow: the later blind write replaces a bucket that cannot have
/// recorded anything yet (it was still settling), and both open it clean.
#[test]
fn two_quick_creators_open_clean() {
    let s = Setup::new(16);
    let b = s.worker(2);
    let a = worker(
        Interleaved::new(&s.store, |cas| {
            if cas.is_none() && bucket(&s.store) == Bucket::Unreadable {
                assert_eq!(b.prepare(0, &s.now()), Prepared { created: 1, tainted: 0 });
            }
        }),
        1,
        &s.config,
    );
    assert_eq!(a.prepare(0, &s.now()), Prepared { created: 1, tainted: 0 });
    s.clock.advance(SETTLE_MS);
    let p = proof(key(1), "jti", NOW);
    assert_eq!(b.record(0, &p, &s.now()), Ok(()));
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::Replayed));
}

#[test]
fn unreadable_buckets_are_reopened_tainted() {
    let open = |entries| encode_open(&Open { salt: [1; 16], usable_from_ms: 0, floor: i64::MIN, entries });
    let good_open = open(vec![(1, 2)]);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        b"garbage".to_vec(),
        good_open[..good_open.len() - 1].to_vec(),
        good_open[..20].to_vec(),
        open(vec![(1, 2); WAYS + 1]),
        [&[0xB2][..], &good_open[1..]].concat(),
        pending(7, T0)[..PENDING_BYTES - 1].to_vec(),
    ];
    for value in garbage {
        let s = Setup::new(16);
        let a = s.worker(1);
        s.store.put(&bucket_name(1, 0), &value);
        let p = proof(key(1), "jti", NOW);
        assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::ReplayUnavailable), "{value:?}");
        let Bucket::Open(open) = bucket(&s.store) else { panic!("{value:?}") };
        assert_eq!((open.floor, open.entries.len()), (NOW + 10, 0), "{value:?}");
        s.clock.advance(SETTLE_MS);
        assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::ReplayUnavailable), "below the floor");
        assert_eq!(a.record(0, &proof(key(1), "jti", NOW + 11), &s.now()), Ok(()));
    }
}

#[test]
fn a_pending_bucket_waits_for_its_creator_then_anyone_opens_it() {
    let s = Setup::new(16);
    let a = s.worker(1);
    s.store.put(&bucket_name(1, 0), &pending(99, T0));
    let p = proof(key(1), "jti", NOW + 20);
    s.clock.advance(STUCK_MS - 1);
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::ReplayUnavailable));
    assert!(matches!(bucket(&s.store), Bucket::Pending { creator: 99, .. }), "left to its creator");
    s.clock.advance(1);
    assert_eq!(a.record(0, &p, &s.now()), Err(BindingError::ReplayUnavailable));
    let Bucket::Open(open) = bucket(&s.store) else { panic!() };
    assert_eq!(open.floor, s.clock.secs() + 10, "opened tainted");
    s.clock.advance(SETTLE_MS);
    assert_eq!(a.record(0, &p, &s.now()), Ok(()));
}

/// A store that answers every read with the CAS 0, which would make a write unconditional.
struct CasZero(MemStore);

impl Store for CasZero {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        (self.0.get(key).0, Some(0))
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.0.set(key, value, cas)
    }
}

#[test]
fn a_cas_of_zero_is_never_trusted() {
    let s = Setup::new(16);
    let a = worker(CasZero(MemStore::default()), 1, &s.config);
    a.prepare(0, &s.now());
    s.clock.advance(SETTLE_MS);
    assert_eq!(a.record(0, &proof(key(1), "jti", NOW), &s.now()), Err(BindingError::ReplayUnavailable));
}

#[test]
fn the_record_never_grows_with_traffic() {
    let s = Setup::new(64);
    let a = s.settled(1);
    let mut accepted = 0;
    for i in 0..5_000 {
        s.clock.advance(2_000);
        match a.record(0, &proof(key(1), &format!("jti-{i}"), s.clock.secs()), &s.now()) {
            Ok(()) => accepted += 1,
            Err(e) => assert_eq!(e, BindingError::ReplayFull),
        }
    }
    assert!(accepted > 4_900, "{accepted}");
    assert_eq!(s.store.names().len(), 4 + 1);
    for n in 0..4 {
        let value = s.store.get(&bucket_name(4, n)).0.unwrap_or_default();
        let Bucket::Open(open) = decode(&value) else { panic!() };
        assert!(open.entries.len() <= WAYS);
    }
}

#[test]
fn providers_without_dpop_have_no_record() {
    let s = Setup::new(16);
    let off = DpopConfig::default();
    let r = ReplayRecord::new(&s.store, &[1; SEED_BYTES], [("off", &off), ("on", &s.config)]);
    assert_eq!(r.prepare(0, &s.now()), Prepared::default());
    assert_eq!(r.record(0, &proof(key(1), "j", NOW), &s.now()), Err(BindingError::ReplayUnavailable));
    assert_eq!(r.record(7, &proof(key(1), "j", NOW), &s.now()), Err(BindingError::ReplayUnavailable));
    assert_eq!(r.prepare(1, &s.now()).created, 1);
    assert!(s.store.names().iter().all(|n| n.starts_with(&format!("{NAMESPACE}/dpop-jti/on/1/"))));
}

#[test]
fn bucket_values_round_trip() {
    let open =
        Open { salt: [9; 16], usable_from_ms: T0, floor: -5, entries: vec![(1, NOW), (u64::MAX, i64::MIN)] };
    assert_eq!(decode(&encode_open(&open)), Bucket::Open(open));
    assert_eq!(decode(&pending(42, T0)), Bucket::Pending { creator: 42, started_ms: T0 });
    let full = Open { salt: [0; 16], usable_from_ms: 0, floor: 0, entries: vec![(3, 4); WAYS] };
    assert_eq!(decode(&encode_open(&full)), Bucket::Open(full));
}
