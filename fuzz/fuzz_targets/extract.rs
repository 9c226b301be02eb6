//! A request's `:path` and headers (text form, see `request`) against a configuration with every
//! kind of token location: extraction, then each token found decoded under its provider's policy,
//! and stripping, after which no token is left where one was taken from.
#![no_main]

use jwt_authn_wasm::config::{Provider, TokenLocations};
use jwt_authn_wasm::extract::{self, Location};
use jwt_authn_wasm::verify;
use jwt_authn_wasm_fuzz::{NOW, locations_config, request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (path, headers) = request(data);
    for provider in &locations_config().providers {
        check_provider(provider, &path, &headers);
    }
});

fn check_provider(provider: &Provider, path: &str, headers: &[(String, String)]) {
    let locations = &provider.locations;
    if let Ok(found) = extract::extract(locations, headers, path) {
        for token in &found {
            let t = &token.token;
            assert!(!t.is_empty() && t.len() <= locations.max_token_bytes, "{token:?}");
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token:?}");
            let _ = verify::decode(t, &provider.policy, &provider.policy.audiences, NOW);
            match &token.location {
                Location::Header(n) | Location::Param(n) | Location::Cookie(n) => assert!(!n.is_empty()),
                // Only for a provider with DPoP on, and then alone (a second token refuses).
                Location::Dpop => assert!(locations.dpop && found.len() == 1, "{found:?}"),
            }
        }
    }
    for name in &locations.params {
        let stripped = extract::strip_param(path, name);
        let only = TokenLocations {
            headers: vec![],
            params: vec![name.clone()],
            cookies: vec![],
            dpop: false,
            ..locations.clone()
        };
        assert_eq!(
            extract::extract(&only, &[] as &[(&str, &str)], &stripped),
            Ok(vec![]),
            "{name} left in {stripped:?}"
        );
    }
    for name in &locations.cookies {
        let stripped: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(n, v)| {
                if n.eq_ignore_ascii_case("cookie") {
                    extract::strip_cookie(v, name).map(|v| (n.clone(), v))
                } else {
                    Some((n.clone(), v.clone()))
                }
            })
            .collect();
        let only = TokenLocations {
            headers: vec![],
            params: vec![],
            cookies: vec![name.clone()],
            dpop: false,
            ..locations.clone()
        };
        assert_eq!(extract::extract(&only, &stripped, ""), Ok(vec![]), "{name} left in {stripped:?}");
    }
}
