//! The plugin configuration (operator input, but a malformed one must fail the load cleanly, not
//! take down the VM): parsing and validation, then the request-time lookups it compiles.
#![no_main]

use jwt_authn_wasm::config::{Config, KeySource};
use jwt_authn_wasm::extract;
use jwt_authn_wasm::verify;
use jwt_authn_wasm_fuzz::{NOW, TOKENS};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 6] = ["", "/", "/healthz", "/API/v1/x?access_token=a.b.c#f", "/both/", "//%2e%2e/?&="];

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(data) else { return };
    for path in PATHS {
        let _ = config.rule_for(path);
    }
    let headers = [("authorization".to_owned(), format!("Bearer {}", TOKENS[0]))];
    for provider in &config.providers {
        let _ = extract::extract(&provider.locations, &headers, PATHS[3]);
        if let Some(subjects) = &provider.subjects {
            for sub in [None, Some(""), Some("alice"), Some("ALICE\u{130}")] {
                let _ = subjects.allows(sub);
            }
        }
        // A local JWKS is parsed at load: its keys must serve a verification.
        if let KeySource::Local(keys) = &provider.keys {
            for token in TOKENS {
                let _ = verify::verify(token, keys, &provider.policy, NOW);
            }
        }
    }
});
