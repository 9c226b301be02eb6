//! A decoded payload: strict claim parsing, then every check at the edges of the clock and of the
//! policy values, where time arithmetic could overflow.
#![no_main]

use jwt_authn_wasm::claims::Claims;
use jwt_authn_wasm::error::JwtError;
use jwt_authn_wasm_fuzz::{NOWS, policies};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(claims) = Claims::parse(data) else { return };
    for policy in policies() {
        for now in NOWS {
            match claims.check(policy, now) {
                // A token that passes was not expired: exp (if any) is after now minus the skew.
                Ok(()) => {
                    if let Some(exp) = claims.exp {
                        let skew = i128::from(policy.clock_skew_seconds);
                        assert!(i128::from(now) < i128::from(exp.floor()) + skew);
                    }
                }
                Err(JwtError::Expired) => assert!(claims.exp.is_some()),
                Err(_) => {}
            }
        }
    }
    for allowed in [&[][..], &["api.example".to_owned()], &[String::new(), "a".repeat(3)]] {
        let _ = claims.check_audience(allowed);
    }
    for date in [claims.exp, claims.nbf, claims.iat].into_iter().flatten() {
        assert!(date.ceil() >= date.floor() && date.ceil() - date.floor() <= 1);
    }
});
