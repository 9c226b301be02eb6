//! Signature verification (rule 7), behind a small trait.
//!
//! Every policy check (key kind fits alg, exact signature length, ECDSA r and s in [1, n-1])
//! lives in [`check_shape`], outside any backend, so the pure-Rust backend here and the host
//! backend (Envoy's `verify_signature` foreign function, `filter::crypto`, with the pure half in
//! `hostcrypto`) refuse exactly the same inputs.
//!
//! Strict choices, per algorithm:
//! - RS*: RSASSA-PKCS1-v1_5; the whole encoded message, DigestInfo included, must equal the
//!   expected one (the rsa crate compares it byte for byte), so BER variants and a missing NULL
//!   are refused.
//! - PS*: RSASSA-PSS with MGF1 over the same hash and a salt exactly as long as the hash
//!   (RFC 7518 §3.5); the rsa crate's auto-detected salt length is never used.
//! - ES256/ES384: raw R||S (RFC 7518 §3.4), not DER. High-S signatures are valid ECDSA and
//!   are accepted: p256/p384 do not normalise (NORMALIZE_S is false for both curves).
//! - EdDSA: Ed25519 `verify_strict` (refuses small-order keys and R, and non-canonical S).

use crate::alg::Algorithm;
use crate::error::JwtError;
use crate::jwks::{Jwk, KeySet, PublicKey};
use p256::ecdsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use sha2::{Sha256, Sha384, Sha512};

/// A signature backend: [`RustCrypto`] (pure Rust) or the host's (`filter::crypto::HostCrypto`,
/// wasm only). Every policy check lives outside the backends, in [`check_shape`].
pub trait Crypto {
    /// `Ok` only when `signature` is a valid `alg` signature of `signing_input` under `key`.
    /// Key/alg mismatch → `NoMatchingKey`; anything else → `BadSignature`.
    fn verify(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JwtError>;

    /// Called once for each key set before it serves (parsed from the config or fetched): a
    /// backend may check each key and set aside what it cannot use. Returns one line per key set
    /// aside, for the operator's log. The default does nothing.
    fn prepare_keys(&self, _keys: &mut KeySet) -> Vec<String> {
        Vec::new()
    }
}

/// Ed25519 signatures are R||S, 32 octets each (RFC 8032 §5.1.6).
const ED25519_SIGNATURE_LEN: usize = 64;

/// Checks that do not depend on the backend: the key kind fits `alg` (else `NoMatchingKey`),
/// the signature has the exact length, and (ECDSA) r and s are in [1, n-1] (else `BadSignature`).
/// Every backend calls this first.
pub fn check_shape(alg: Algorithm, key: &PublicKey, signature: &[u8]) -> Result<(), JwtError> {
    if key.kind() != alg.key_kind() {
        return Err(JwtError::NoMatchingKey);
    }
    let well_formed = match key {
        // RFC 8017 §8.2.2 step 1: exactly k octets, leading zeros included.
        PublicKey::Rsa(key) => signature.len() == key.size(),
        // from_slice checks the length (2 × field size) and 0 < r, s < n.
        PublicKey::P256(_) => p256::ecdsa::Signature::from_slice(signature).is_ok(),
        PublicKey::P384(_) => p384::ecdsa::Signature::from_slice(signature).is_ok(),
        PublicKey::Ed25519(_) => signature.len() == ED25519_SIGNATURE_LEN,
    };
    if well_formed { Ok(()) } else { Err(JwtError::BadSignature) }
}

/// Pure-Rust verification with the RustCrypto crates.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

impl Crypto for RustCrypto {
    fn verify(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JwtError> {
        check_shape(alg, &key.key, signature)?;
        let valid = match &key.key {
            PublicKey::Rsa(key) => rsa_verify(alg, key, signing_input, signature),
            PublicKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok()),
            PublicKey::P384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok()),
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(signing_input, &sig).is_ok()),
        };
        if valid { Ok(()) } else { Err(JwtError::BadSignature) }
    }
}

/// The hash comes from `alg`, never from the signature. The rsa crate's `*_verify` methods hash
/// the input, compare the PKCS#1 v1.5 encoding exactly and fix the PSS salt to the hash length.
fn rsa_verify(alg: Algorithm, key: &rsa::PublicKey, input: &[u8], signature: &[u8]) -> bool {
    let result = match alg {
        Algorithm::RS256 => key.pkcs1v15_verify::<Sha256>(input, signature),
        Algorithm::RS384 => key.pkcs1v15_verify::<Sha384>(input, signature),
        Algorithm::RS512 => key.pkcs1v15_verify::<Sha512>(input, signature),
        Algorithm::PS256 => key.pss_verify::<Sha256>(input, signature),
        Algorithm::PS384 => key.pss_verify::<Sha384>(input, signature),
        Algorithm::PS512 => key.pss_verify::<Sha512>(input, signature),
        // check_shape already refused a non-RSA alg for an RSA key.
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA | Algorithm::Ed25519 => return false,
    };
    result.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::test_keys;
    use p256::ecdsa::signature::Signer;
    use sha2::Digest;
    use std::convert::Infallible;

    const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0";

    /// A signing key of the fixtures, with the public half as the verifier sees it.
    enum TestKey {
        Rsa(rsa::PrivateKey),
        P256(p256::ecdsa::SigningKey),
        P384(p384::ecdsa::SigningKey),
        Ed25519(ed25519_dalek::SigningKey),
    }

    impl TestKey {
        fn jwk(&self) -> Jwk {
            Jwk::from_key(self.public())
        }

        fn public(&self) -> PublicKey {
            match self {
                TestKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
                TestKey::P256(k) => PublicKey::P256(*k.verifying_key()),
                TestKey::P384(k) => PublicKey::P384(*k.verifying_key()),
                TestKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            }
        }

        fn sign(&self, alg: Algorithm, msg: &[u8]) -> Vec<u8> {
            use Algorithm::*;
            match (self, alg) {
                (TestKey::Rsa(k), RS256) => k.pkcs1v15_sign::<Sha256>(msg).unwrap(),
                (TestKey::Rsa(k), RS384) => k.pkcs1v15_sign::<Sha384>(msg).unwrap(),
                (TestKey::Rsa(k), RS512) => k.pkcs1v15_sign::<Sha512>(msg).unwrap(),
                (TestKey::Rsa(k), PS256) => k.pss_sign::<Sha256>(msg).unwrap(),
                (TestKey::Rsa(k), PS384) => k.pss_sign::<Sha384>(msg).unwrap(),
                (TestKey::Rsa(k), PS512) => k.pss_sign::<Sha512>(msg).unwrap(),
                (TestKey::P256(k), ES256) => Signer::<p256::ecdsa::Signature>::sign(k, msg).to_vec(),
                (TestKey::P384(k), ES384) => Signer::<p384::ecdsa::Signature>::sign(k, msg).to_vec(),
                (TestKey::Ed25519(k), EdDSA) => k.sign(msg).to_vec(),
                _ => panic!("{alg} does not fit this key"),
            }
        }
    }

    fn rsa_a() -> TestKey {
        TestKey::Rsa(test_keys::rsa("rsa2048-a"))
    }

    /// Every algorithm with a fixture key that fits it, and one of the same kind that does not.
    fn table() -> Vec<(Algorithm, TestKey, TestKey)> {
        use Algorithm::*;
        let rsa_b = || TestKey::Rsa(test_keys::rsa("rsa2048-b"));
        let mut rows: Vec<(Algorithm, TestKey, TestKey)> = [RS256, RS384, RS512, PS256, PS384, PS512]
            .into_iter()
            .map(|alg| (alg, rsa_a(), rsa_b()))
            .collect();
        rows.push((RS256, TestKey::Rsa(test_keys::rsa("rsa3072")), rsa_a()));
        rows.push((
            ES256,
            TestKey::P256(test_keys::p256("p256-a")),
            TestKey::P256(test_keys::p256("p256-b")),
        ));
        let other_p384 = p384::ecdsa::SigningKey::from_bytes(&[7u8; 48].into()).unwrap();
        rows.push((ES384, TestKey::P384(test_keys::p384()), TestKey::P384(other_p384)));
        let other_ed = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        rows.push((EdDSA, TestKey::Ed25519(test_keys::ed25519()), TestKey::Ed25519(other_ed)));
        rows
    }

    #[test]
    fn sign_then_verify_every_algorithm() {
        for (alg, signer, other) in table() {
            let key = signer.jwk();
            let sig = signer.sign(alg, INPUT);
            assert_eq!(RustCrypto.verify(alg, &key, INPUT, &sig), Ok(()), "{alg}");

            let mut tampered = sig.clone();
            *tampered.last_mut().unwrap() ^= 1;
            assert_eq!(
                RustCrypto.verify(alg, &key, INPUT, &tampered),
                Err(JwtError::BadSignature),
                "{alg} tampered"
            );
            let mut first = sig.clone();
            first[0] ^= 0x80;
            assert_eq!(
                RustCrypto.verify(alg, &key, INPUT, &first),
                Err(JwtError::BadSignature),
                "{alg} first octet"
            );
            let changed_input = [INPUT, b"x"].concat();
            assert_eq!(
                RustCrypto.verify(alg, &key, &changed_input, &sig),
                Err(JwtError::BadSignature),
                "{alg} input"
            );
            assert_eq!(
                RustCrypto.verify(alg, &other.jwk(), INPUT, &sig),
                Err(JwtError::BadSignature),
                "{alg} wrong key"
            );

            let longer = [&sig[..], &[0]].concat();
            let leading_zero = [&[0], &sig[..]].concat();
            for wrong_length in [&sig[..sig.len() - 1], &longer, &leading_zero, &[]] {
                assert_eq!(
                    RustCrypto.verify(alg, &key, INPUT, wrong_length),
                    Err(JwtError::BadSignature),
                    "{alg} length"
                );
            }
        }
    }

    #[test]
    fn algorithm_comes_from_the_caller_not_the_signature() {
        use Algorithm::*;
        let signer = rsa_a();
        let key = signer.jwk();
        // Same key kind, other padding or hash: the signature must not pass.
        for (signed, checked) in
            [(RS256, RS384), (RS256, PS256), (PS256, RS256), (PS256, PS384), (RS512, RS256)]
        {
            let sig = signer.sign(signed, INPUT);
            assert_eq!(
                RustCrypto.verify(checked, &key, INPUT, &sig),
                Err(JwtError::BadSignature),
                "{signed} as {checked}"
            );
        }
        // Another key kind: no key for that algorithm.
        let ec = TestKey::P256(test_keys::p256("p256-a"));
        let es_sig = ec.sign(ES256, INPUT);
        assert_eq!(RustCrypto.verify(ES384, &ec.jwk(), INPUT, &es_sig), Err(JwtError::NoMatchingKey));
        assert_eq!(RustCrypto.verify(RS256, &ec.jwk(), INPUT, &es_sig), Err(JwtError::NoMatchingKey));
        assert_eq!(RustCrypto.verify(ES256, &key, INPUT, &es_sig), Err(JwtError::NoMatchingKey));
        assert_eq!(RustCrypto.verify(EdDSA, &ec.jwk(), INPUT, &es_sig), Err(JwtError::NoMatchingKey));
    }

    /// Deterministic bytes for PSS salts in tests.
    struct CountingRng(u8);

    impl rsa::rand_core::TryRng for CountingRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(u32::from(self.step()))
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(u64::from(self.step()))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.iter_mut().for_each(|b| *b = self.step());
            Ok(())
        }
    }

    impl rsa::rand_core::TryCryptoRng for CountingRng {}

    impl CountingRng {
        fn step(&mut self) -> u8 {
            self.0 = self.0.wrapping_add(1);
            self.0
        }
    }

    #[test]
    fn pss_salt_must_be_the_hash_length() {
        let private = test_keys::rsa("rsa2048-a");
        let key = Jwk::from_key(PublicKey::Rsa(private.to_public_key()));
        let hash = Sha256::digest(INPUT);
        for (salt_len, expected) in [
            (32, Ok(())),
            (0, Err(JwtError::BadSignature)),
            (20, Err(JwtError::BadSignature)),
            (64, Err(JwtError::BadSignature)),
        ] {
            let padding = rsa::Pss::<Sha256>::new_with_salt(salt_len);
            let sig = private.sign_with_rng(&mut CountingRng(0), padding, &hash).unwrap();
            assert_eq!(RustCrypto.verify(Algorithm::PS256, &key, INPUT, &sig), expected, "salt {salt_len}");
        }
    }

    #[test]
    fn ecdsa_high_s_is_valid_and_range_is_checked() {
        let signer = test_keys::p256("p256-a");
        let key = Jwk::from_key(PublicKey::P256(*signer.verifying_key()));
        let sig: p256::ecdsa::Signature = signer.sign(INPUT);
        let (r, s) = sig.split_scalars();
        let negated = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        // Exactly one of the two is high-S (normalising changes it); both verify.
        assert_ne!(sig.normalize_s() == sig, negated.normalize_s() == negated);
        for variant in [sig, negated] {
            assert_eq!(RustCrypto.verify(Algorithm::ES256, &key, INPUT, &variant.to_bytes()), Ok(()));
        }

        let order = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        let zero = [0u8; 32];
        let r = r.to_bytes().to_vec();
        let s = s.to_bytes().to_vec();
        for (name, bad) in [
            ("r = 0", [&zero[..], &s].concat()),
            ("s = 0", [&r[..], &zero].concat()),
            ("r = n", [&order[..], &s].concat()),
            ("s = n", [&r[..], &order].concat()),
        ] {
            assert_eq!(check_shape(Algorithm::ES256, &key.key, &bad), Err(JwtError::BadSignature), "{name}");
        }
        // A DER signature is never accepted for a JWS.
        let der = sig.to_der();
        assert_eq!(
            RustCrypto.verify(Algorithm::ES256, &key, INPUT, der.as_bytes()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn ed25519_is_strict() {
        let signer = test_keys::ed25519();
        let key = Jwk::from_key(PublicKey::Ed25519(signer.verifying_key()));
        let sig = signer.sign(INPUT).to_bytes();
        // S + L encodes the same scalar non-canonically; verify_strict refuses it.
        let order = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut s_plus_l = sig;
        let mut carry = 0u16;
        for (byte, l) in s_plus_l[32..].iter_mut().zip(order) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(RustCrypto.verify(Algorithm::EdDSA, &key, INPUT, &sig), Ok(()));
        assert_eq!(RustCrypto.verify(Algorithm::EdDSA, &key, INPUT, &s_plus_l), Err(JwtError::BadSignature));
    }

    #[test]
    fn check_shape_table() {
        use Algorithm::*;
        let rsa = rsa_a().public();
        let p256 = TestKey::P256(test_keys::p256("p256-a")).public();
        let p384 = TestKey::P384(test_keys::p384()).public();
        let ed = TestKey::Ed25519(test_keys::ed25519()).public();
        #[rustfmt::skip]
        let cases: [(Algorithm, &PublicKey, usize, Result<(), JwtError>); 12] = [
            (RS256, &rsa, 256, Ok(())),
            (PS512, &rsa, 256, Ok(())),
            (RS256, &rsa, 255, Err(JwtError::BadSignature)),
            (RS256, &rsa, 512, Err(JwtError::BadSignature)),
            (ES256, &p256, 64, Ok(())),
            (ES256, &p256, 96, Err(JwtError::BadSignature)),
            (ES384, &p384, 96, Ok(())),
            (ES384, &p384, 64, Err(JwtError::BadSignature)),
            (EdDSA, &ed, 64, Ok(())),
            (EdDSA, &ed, 65, Err(JwtError::BadSignature)),
            (ES256, &p384, 64, Err(JwtError::NoMatchingKey)),
            (RS256, &ed, 256, Err(JwtError::NoMatchingKey)),
        ];
        for (alg, key, len, expected) in cases {
            assert_eq!(check_shape(alg, key, &vec![1u8; len]), expected, "{alg} {len}");
        }
    }

    /// Native timing, not a check: run by hand with
    /// `cargo test --release --lib verify_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run by hand with --release"]
    fn verify_timing() {
        use std::time::{Duration, Instant};
        for (alg, signer, _) in table() {
            let key = signer.jwk();
            let sig = signer.sign(alg, INPUT);
            let start = Instant::now();
            let mut runs = 0u32;
            while start.elapsed() < Duration::from_millis(500) {
                let input = std::hint::black_box(INPUT);
                assert_eq!(RustCrypto.verify(alg, &key, input, &sig), Ok(()));
                runs += 1;
            }
            let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
            println!(
                "{alg} {:?} ({} sig octets): {micros:.1} µs/verify ({runs} runs)",
                key.key.kind(),
                sig.len()
            );
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }
}
