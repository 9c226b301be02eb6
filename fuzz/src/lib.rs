//! Fixed inputs shared by the fuzz targets: the demo key set, the seed tokens, the policies, a
//! fixed clock, the extract target's configuration, and the text form of a request.
//!
//! Everything here is built from the committed seeds (`seeds/`), so a target's fixed side and the
//! corpus it starts from agree: the seed tokens verify against `keys()` at `NOW`, and the fuzzer
//! starts from inputs that reach the signature check.

use jwt_authn_wasm::alg::AlgorithmSet;
use jwt_authn_wasm::config::Config;
use jwt_authn_wasm::jwks::KeySet;
use jwt_authn_wasm::policy::Policy;
use std::sync::OnceLock;

/// The fixed clock (2027-01-15): after the seed tokens were minted, before they expire (minted
/// with a ten-year lifetime), so they pass every time check but `eddsa-expired`.
pub const NOW: i64 = 1_800_000_000;

/// The clock values the claim checks run at: the fixed one and the edges of the `i64` range.
pub const NOWS: [i64; 5] = [i64::MIN, -1, 0, NOW, i64::MAX];

/// The demo JWKS (the same keys as `envoy/demo-jwks.json`): RSA, P-256, P-384 and Ed25519.
pub const DEMO_JWKS: &[u8] = include_bytes!("../seeds/jwks/demo.json");

/// Seed tokens signed by the demo keys, one per algorithm family, and one by a key outside the set
/// (no kid, so the demo RSA key is tried and refuses it).
pub const TOKENS: [&str; 8] = [
    include_str!("../seeds/token/rs256"),
    include_str!("../seeds/token/ps256"),
    include_str!("../seeds/token/rs512-wrong-aud"),
    include_str!("../seeds/token/es256"),
    include_str!("../seeds/token/es384"),
    include_str!("../seeds/token/eddsa-other-iss"),
    include_str!("../seeds/token/eddsa-expired"),
    include_str!("../seeds/token/rs256-unknown-key-nokid"),
];

/// The configuration of the extract target: every kind of token location, and a local JWKS.
pub const LOCATIONS_CONFIG: &[u8] = include_bytes!("../seeds/config/locations.json");

/// The demo key set, parsed once.
pub fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::parse(DEMO_JWKS).expect("the demo JWKS parses").keys)
}

/// The extract target's configuration, parsed once.
pub fn locations_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config::parse(LOCATIONS_CONFIG).expect("the locations config parses"))
}

/// Policies the token and claims targets check against: the demo provider's (issuer, audience,
/// bounded lifetime), the default one (no issuer: more fuzzed tokens reach the signature), and
/// extreme values where arithmetic could overflow.
pub fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        vec![
            Policy {
                issuer: Some("https://issuer.example".into()),
                audiences: vec!["api.example".into()],
                require_expiration: true,
                max_lifetime_seconds: Some(20 * 365 * 86_400),
                ..Policy::default()
            },
            Policy::default(),
            Policy {
                algorithms: AlgorithmSet::all(),
                clock_skew_seconds: u64::MAX,
                max_lifetime_seconds: Some(u64::MAX),
                max_token_bytes: usize::MAX,
                ..Policy::default()
            },
        ]
    })
}

/// A request in text form, the extract target's input: the first line is `:path`, each further
/// line a header `name: value` (one space after the colon is dropped; a line without a colon is a
/// header with an empty value). Readable, so seeds are written by hand and crashes read at a glance.
pub fn request(data: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            (name.to_owned(), value.strip_prefix(' ').unwrap_or(value).to_owned())
        })
        .collect();
    (path, headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_authn_wasm::verify;

    #[test]
    fn seed_tokens_verify_as_expected_at_now() {
        let results: Vec<_> =
            TOKENS.iter().map(|t| verify::verify(t, keys(), &policies()[0], NOW).map(|_| ())).collect();
        use jwt_authn_wasm::error::JwtError::*;
        assert_eq!(
            results,
            [
                Ok(()),
                Ok(()),
                Err(AudienceNotAllowed),
                Ok(()),
                Ok(()),
                Err(IssuerNotAllowed),
                Err(Expired),
                Err(BadSignature)
            ]
        );
    }

    #[test]
    fn request_text_form() {
        let (path, headers) = request(b"/a?b\nauthorization: Bearer x\nodd\ncookie:a=b");
        assert_eq!(path, "/a?b");
        assert_eq!(
            headers,
            [("authorization", "Bearer x"), ("odd", ""), ("cookie", "a=b")]
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn locations_config_parses() {
        assert_eq!(locations_config().providers.len(), 2);
    }
}
