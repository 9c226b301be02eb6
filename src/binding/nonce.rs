//! Server nonces for DPoP proofs (RFC 9449 §9), stateless: the nonce of a time step is an
//! HMAC-SHA256 of that step under a secret every worker of the Envoy shares (the shell keeps it in
//! shared data under [`key_name`]), so any worker accepts any other's nonce without asking it, and
//! nothing grows with traffic.
//!
//! A proof's nonce is accepted when it is the current step's or the previous one's, so a nonce
//! lives between one and two steps. A proof carrying the previous step's nonce passes and the
//! answer offers the current one (`DPoP-Nonce`), so a busy client moves on before its nonce
//! expires; a proof without a nonce, or with any other, is refused with `use_dpop_nonce` and the
//! current nonce. After a restart with a new secret, every old nonce fails once and the client
//! takes the new one from that same answer.
//!
//! What a nonce adds to `iat`: the server, not the client's clock, says when a proof may have been
//! made, so proofs made in advance (by a client whose key was briefly in the wrong hands) expire
//! with the step.

use super::BindingError;
use crate::config::NonceConfig;
use crate::namespace::NAMESPACE;
use crate::token::b64url_encode;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The shared secret's length.
pub const KEY_BYTES: usize = 32;
/// A nonce is this many bytes of the MAC, in base64url (22 characters): forging one means
/// guessing 128 bits.
const NONCE_BYTES: usize = 16;
/// Domain separation: this MAC means "a DPoP nonce of this module's format", nothing else.
const LABEL: &[u8] = b"jwt_authn_wasm dpop nonce v1\0";

/// Where the shell keeps the nonce secret in shared data.
pub fn key_name() -> String {
    format!("{NAMESPACE}/dpop-nonce-key")
}

/// Makes and checks nonces under one secret with one step length.
#[derive(Clone)]
pub struct Nonces {
    /// Keyed once; cloned per nonce (the key's HMAC pads are computed once).
    mac: Hmac<Sha256>,
    step_seconds: i64,
}

impl Nonces {
    /// Nonces under the secret as shared data holds it: exactly [`KEY_BYTES`] bytes, else `None`.
    pub fn from_shared(value: &[u8], config: &NonceConfig) -> Option<Nonces> {
        if value.len() != KEY_BYTES {
            return None;
        }
        let mac = Hmac::<Sha256>::new_from_slice(value).ok()?;
        Some(Nonces { mac, step_seconds: i64::try_from(config.step_seconds.max(1)).unwrap_or(i64::MAX) })
    }

    /// The nonce to offer at `now` (Unix seconds).
    pub fn current(&self, now: i64) -> String {
        b64url_encode(&self.tag(self.step(now)))
    }

    /// Checks a proof's `nonce`: `Ok(None)` for the current step's, `Ok(Some(current))` for the
    /// previous step's (accepted; offer the current one), otherwise the refusal.
    pub fn check(&self, nonce: Option<&str>, now: i64) -> Result<Option<String>, BindingError> {
        let nonce = nonce.ok_or(BindingError::NonceMissing)?;
        let step = self.step(now);
        if self.is(nonce, step) {
            Ok(None)
        } else if self.is(nonce, step.saturating_sub(1)) {
            Ok(Some(self.current(now)))
        } else {
            Err(BindingError::NonceInvalid)
        }
    }

    fn step(&self, now: i64) -> i64 {
        now.div_euclid(self.step_seconds)
    }

    /// Whether `nonce` is the nonce of `step`, compared in constant time.
    fn is(&self, nonce: &str, step: i64) -> bool {
        let expected = b64url_encode(&self.tag(step));
        nonce.as_bytes().ct_eq(expected.as_bytes()).into()
    }

    fn tag(&self, step: i64) -> [u8; NONCE_BYTES] {
        let mac = self.mac.clone().chain_update(LABEL).chain_update(step.to_be_bytes()).finalize();
        let mut tag = [0; NONCE_BYTES];
        for (byte, macced) in tag.iter_mut().zip(mac.into_bytes()) {
            *byte = macced;
        }
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: NonceConfig = NonceConfig { step_seconds: 60 };
    /// The start of a step.
    const T: i64 = 1_700_000_040;

    #[test]
    fn any_worker_accepts_another_workers_nonce() {
        let a = Nonces::from_shared(&[7; KEY_BYTES], &STEP).unwrap();
        let b = Nonces::from_shared(&[7; KEY_BYTES], &STEP).unwrap();
        let nonce = a.current(T);
        assert_eq!(nonce.len(), 22);
        assert!(nonce.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(b.check(Some(&nonce), T + 59), Ok(None));
        assert_eq!(b.current(T + 59), nonce, "one nonce per step");
        assert_ne!(b.current(T + 60), nonce);
    }

    #[test]
    fn current_and_previous_steps_only() {
        let n = Nonces::from_shared(&[1; KEY_BYTES], &STEP).unwrap();
        let nonce = n.current(T);
        let cases: [(i64, Result<Option<String>, BindingError>); 6] = [
            (T, Ok(None)),
            (T + 59, Ok(None)),
            // The step turned: still accepted, and the new nonce is offered.
            (T + 60, Ok(Some(n.current(T + 60)))),
            (T + 119, Ok(Some(n.current(T + 119)))),
            (T + 120, Err(BindingError::NonceInvalid)),
            // A nonce of a later step was never issued before it.
            (T - 1, Err(BindingError::NonceInvalid)),
        ];
        for (now, expected) in cases {
            assert_eq!(n.check(Some(&nonce), now), expected, "at T{:+}", now - T);
        }
    }

    #[test]
    fn refusals() {
        let n = Nonces::from_shared(&[1; KEY_BYTES], &STEP).unwrap();
        let other_key = Nonces::from_shared(&[2; KEY_BYTES], &STEP).unwrap();
        let other_step = Nonces::from_shared(&[1; KEY_BYTES], &NonceConfig { step_seconds: 30 }).unwrap();
        let nonce = n.current(T);
        assert_eq!(n.check(None, T), Err(BindingError::NonceMissing));
        for bad in [
            other_key.current(T),
            other_step.current(T),
            String::new(),
            format!("{nonce}="),
            nonce[..21].to_owned(),
            nonce.to_uppercase(),
        ] {
            assert_eq!(n.check(Some(&bad), T), Err(BindingError::NonceInvalid), "{bad:?}");
        }
        assert!(Nonces::from_shared(&[1; 31], &STEP).is_none());
        assert!(Nonces::from_shared(&[1; 33], &STEP).is_none());
        assert!(Nonces::from_shared(&[], &STEP).is_none());
        assert_eq!(key_name(), "jwt_authn_wasm/v3/dpop-nonce-key");
    }

    #[test]
    fn steps_before_1970_and_at_the_ends_of_time() {
        let n = Nonces::from_shared(&[3; KEY_BYTES], &STEP).unwrap();
        assert_eq!(n.check(Some(&n.current(-1)), 0), Ok(Some(n.current(0))));
        assert_eq!(n.check(Some(&n.current(i64::MIN)), i64::MIN), Ok(None));
        assert_eq!(n.check(Some(&n.current(i64::MAX)), i64::MAX), Ok(None));
    }
}
