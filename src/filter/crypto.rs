//! The host signature backend: Envoy's `verify_signature` foreign function for RS256/384/512 and
//! ES256/384, pure Rust for the rest. What goes to the host and what its answers mean is decided
//! in `crate::hostcrypto` (pure, tested natively); this module only makes the calls.
//!
//! Trust is earned once per VM at load: the built-in self-test must be answered right both ways
//! (valid signatures accepted, forged ones refused), so neither a missing function nor a host that
//! says `true` to everything is used. Each key is then checked once when its key set is adopted;
//! a key the host cannot import is verified in Rust (see [`HostCrypto::prepare_keys`]). A DPoP
//! proof's key comes with its request, unchecked: when the host answers that it cannot import
//! it, that proof is verified in Rust too, so no verdict depends on the backend.

use super::host;
use crate::alg::Algorithm;
use crate::config::CryptoMode;
use crate::crypto::{Crypto, RustCrypto, check_shape};
use crate::error::JwtError;
use crate::hostcrypto::{self, Answer};
use crate::jwks::{Jwk, KeySet};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, Status};
use std::cell::Cell;
use std::fmt;

/// The backend chosen for a `crypto` mode, and the line to log about it (once per VM).
pub struct Selected {
    pub crypto: Box<dyn Crypto>,
    pub level: LogLevel,
    pub note: String,
}

/// Chooses the backend for `mode`, running the self-test unless it is `wasm`. `Err` (the reason,
/// for the load log) only when `host` was asked for and the host cannot do it.
pub fn select(mode: CryptoMode) -> Result<Selected, String> {
    let detected = match mode {
        CryptoMode::Wasm => None,
        CryptoMode::Auto | CryptoMode::Host => Some(HostCrypto::detect()),
    };
    match (mode, detected) {
        (_, Some(Ok(host))) => Ok(Selected {
            crypto: Box::new(host),
            level: LogLevel::Info,
            note: "crypto: RS256/384/512 and ES256/384 are verified by the host, the rest in wasm".into(),
        }),
        (CryptoMode::Host, Some(Err(why))) => Err(format!(
            "invalid configuration at `crypto`: \"host\" needs the host's verify_signature: {why}"
        )),
        (_, Some(Err(why))) => Ok(Selected {
            crypto: Box::new(RustCrypto),
            level: LogLevel::Warn,
            note: format!(
                "crypto: the host cannot verify signatures ({why}); everything is verified in wasm"
            ),
        }),
        (_, None) => Ok(Selected {
            crypto: Box::new(RustCrypto),
            level: LogLevel::Info,
            note: "crypto: \"wasm\", every signature is verified in wasm".into(),
        }),
    }
}

/// Which way one verification went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Refused by the policy checks (`crypto::check_shape`) before any backend.
    Policy,
    /// Decided by the host.
    Host,
    /// Decided in Rust: the algorithm or key is not for the host, or the host call failed.
    Rust,
}

/// Envoy's `verify_signature` where it applies, pure Rust elsewhere. Made only by
/// [`HostCrypto::detect`], so every instance has passed the self-test.
pub struct HostCrypto {
    /// Host calls that failed at request time; each verification then went to Rust.
    failures: Cell<u64>,
}

impl HostCrypto {
    /// Runs the built-in self-test through the host: every algorithm the host is used for, a
    /// valid signature that must be accepted and a forged one that must be refused.
    pub fn detect() -> Result<HostCrypto, String> {
        let answers = hostcrypto::known_answers();
        if answers.is_empty() {
            return Err("the built-in self-test vectors are missing".into());
        }
        for case in &answers {
            let which = if case.valid { "valid" } else { "forged" };
            let Some(args) = hostcrypto::arguments(case.alg, &case.key, case.text, &case.signature) else {
                return Err(format!("the {which} {} self-test vector cannot be encoded", case.alg));
            };
            match call(&args) {
                Ok(answer) if answer.result == case.valid => {}
                Ok(answer) => {
                    return Err(format!(
                        "verify_signature answered {} to the {which} {} self-test signature ({:?})",
                        answer.result, case.alg, answer.error
                    ));
                }
                Err(failure) => return Err(format!("{failure} (on the {which} {} self-test)", case.alg)),
            }
        }
        Ok(HostCrypto { failures: Cell::new(0) })
    }

    /// [`Crypto::verify`], also telling which way the verification went.
    pub fn verify_traced(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> (Result<(), JwtError>, Route) {
        if let Err(refused) = check_shape(alg, &key.key, signature) {
            return (Err(refused), Route::Policy);
        }
        let Some(args) = hostcrypto::arguments(alg, key, signing_input, signature) else {
            return (RustCrypto.verify(alg, key, signing_input, signature), Route::Rust);
        };
        match call(&args) {
            Ok(Answer { result: true, .. }) => (Ok(()), Route::Host),
            // A key no key set held (a DPoP proof's own): the host's refusal to import it must
            // not decide the verdict, which Rust gives as for any key the host cannot use.
            Ok(answer) if hostcrypto::key_not_imported(&answer) => {
                (RustCrypto.verify(alg, key, signing_input, signature), Route::Rust)
            }
            Ok(_) => (Err(JwtError::BadSignature), Route::Host),
            Err(failure) => {
                // The self-test passed, so this is the host failing now: Rust gives the same
                // verdict, more slowly. Logged the first time only: it could repeat per request.
                let failures = self.failures.get().saturating_add(1);
                self.failures.set(failures);
                if failures == 1 {
                    host::log(LogLevel::Warn, &format!("{failure}; verifying in wasm instead"));
                }
                (RustCrypto.verify(alg, key, signing_input, signature), Route::Rust)
            }
        }
    }

    /// Host calls that failed at request time since the VM started.
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }
}

impl Crypto for HostCrypto {
    fn verify(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JwtError> {
        self.verify_traced(alg, key, signing_input, signature).0
    }

    /// Checks each key through the host once. A key the host cannot import (or whose check fails)
    /// loses its SPKI, so it is verified in Rust: it passed this filter's own key policy, and the
    /// verdicts must not depend on the backend, so it is not dropped. Its tokens then cost the
    /// Rust price, which the returned line tells the operator.
    fn prepare_keys(&self, keys: &mut KeySet) -> Vec<String> {
        let mut notes = Vec::new();
        keys.withdraw_spki(|key| {
            let Some(args) = hostcrypto::key_check_arguments(key) else { return false };
            let why = match call(&args) {
                Ok(answer) if hostcrypto::key_imported(&answer) => return false,
                Ok(answer) if answer.result => "it accepted a signature no key makes".to_owned(),
                Ok(answer) => answer.error,
                Err(failure) => failure.to_string(),
            };
            // Debug quoting escapes control characters: a hostile kid cannot forge log lines.
            notes.push(format!(
                "key (kid {:?}) is verified in wasm: the host cannot use it ({why})",
                key.kid.as_deref().unwrap_or("")
            ));
            true
        });
        notes
    }
}

/// A call that did not produce an answer.
enum Failure {
    /// The host has no such function (`NotFound`).
    Missing,
    Status(Status),
    /// The host answered bytes that are not a `VerifySignatureResult`.
    Garbled,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing => write!(f, "the host has no {} function", hostcrypto::FUNCTION),
            Failure::Status(status) => write!(f, "{} failed with {status:?}", hostcrypto::FUNCTION),
            Failure::Garbled => write!(f, "{} gave an answer that does not decode", hostcrypto::FUNCTION),
        }
    }
}

fn call(args: &[u8]) -> Result<Answer, Failure> {
    match hostcalls::call_foreign_function(hostcrypto::FUNCTION, Some(args)) {
        Ok(bytes) => hostcrypto::decode_answer(bytes.as_deref().unwrap_or_default()).ok_or(Failure::Garbled),
        Err(Status::NotFound) => Err(Failure::Missing),
        Err(status) => Err(Failure::Status(status)),
    }
}
