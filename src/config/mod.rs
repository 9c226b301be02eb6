//! The plugin configuration: Envoy jwt_authn v3 `JwtAuthentication` in proto JSON (snake_case
//! names, durations as `"600s"` strings), so a jwt_authn config moves over nearly verbatim.
//! It is parsed and validated once at load into a [`Config`] with everything the request path needs
//! compiled (regexes, provider indexes, defaults); every error names the field by its dotted path.
//!
//! Every jwt_authn field this filter does not implement is decided below; a field not listed is
//! an error (a typo must not silently turn a check off). A listed scalar or list field left at its
//! default (`false`, `""`, `0`, `[]`, `null`) is accepted silently either way; a present message,
//! even `{}`, counts as set.
//!
//! | message            | field                                  | decision                      |
//! |--------------------|----------------------------------------|-------------------------------|
//! | JwtAuthentication  | providers, rules, requirement_map, bypass_cors_preflight, strip_failure_response | implemented |
//! | JwtAuthentication  | filter_state_rules                     | rejected: another filter would choose the requirement, so ignoring it changes who is let in |
//! | JwtAuthentication  | stat_prefix                            | implemented: the metric name prefix (default `jwt_authn_wasm.`) |
//! | JwtAuthentication  | max_token_bytes, startup_hold_timeout, mode, crypto | extensions of this filter |
//! | JwtAuthentication  | route_metadata                         | extension: routes choose requirements (see `route`); default on with a `requirement_map` |
//! | JwtAuthentication  | output_headers_from_client             | extension: `remove` (default, as jwt_authn) or `reject` (400) a client's copy of a header this filter writes |
//! | PerRouteConfig     | disabled, requirement_name             | implemented as route metadata `filter_metadata.jwt_authn_wasm` (see `route`), not `typed_per_filter_config` |
//! | JwtProvider        | mode, required_claims, required_scopes, claim_to_filter_state | extensions of this filter |
//! | JwtProvider        | dpop, certificate_bound                | extensions: sender-constrained tokens (see `binding`); turning one on is refused until the request path enforces it |
//! | ClaimToHeader      | format                                 | extension: `text` or `json`   |
//! | JwtProvider        | issuer, audiences, require_expiration, max_lifetime, clock_skew_seconds, remote_jwks, local_jwks, forward, from_headers, from_params, from_cookies, forward_payload_header, pad_forward_payload_header, claim_to_headers | implemented |
//! | JwtProvider        | subjects                               | implemented ([`Provider::subjects`]) |
//! | JwtProvider        | algorithms                             | extension (allow-list)        |
//! | JwtProvider        | payload_in_metadata, header_in_metadata, failed_status_in_metadata | implemented as Envoy filter state `wasm.<name>` (see `identity`): a wasm module cannot write dynamic metadata |
//! | JwtProvider        | normalize_payload_in_metadata          | warning: the payload entry is its JSON as received |
//! | JwtProvider        | clear_route_cache                      | warning: Envoy routes again after any header change by a wasm filter, as if it were true (see `route`) |
//! | JwtProvider        | jwt_cache_config                       | implemented ([`Provider::jwt_cache`]); on by default here, with the extensions `disabled` and `shared_cache_size` |
//! | JwtProvider        | extract_only_without_validation        | rejected: this filter always verifies |
//! | RemoteJwks         | http_uri, cache_duration, async_fetch.failed_refetch_duration | implemented |
//! | RemoteJwks         | retry_policy, async_fetch.fast_listener | warning: fetch tuning        |
//! | DataSource         | inline_string, inline_bytes            | implemented                   |
//! | DataSource         | filename, environment_variable, watched_directory | rejected: out of reach of the wasm sandbox (see [`LOCAL_JWKS_UNREACHABLE`]) |
//! | RouteMatch         | prefix, path, safe_regex, path_separated_prefix, case_sensitive | implemented |
//! | RouteMatch         | headers, query_parameters, runtime_fraction, grpc, tls_context, dynamic_metadata, filter_state, connect_matcher, path_match_policy | rejected: a rule narrowed by them would match more requests without them (jwt_authn itself silently ignores runtime_fraction, grpc, tls_context and dynamic_metadata; this filter is stricter) |
//! | RegexMatcher       | google_re2                             | accepted (`max_program_size`: warning) |
//! | StringMatcher      | custom                                 | rejected                      |
//!
//! Stricter than jwt_authn, on purpose: duplicate JSON members are refused; `requires_any`/
//! `requires_all` must list at least two requirements (jwt_authn's own validation rule); an empty
//! requirement `{}` is accepted only as a rule's whole requirement (jwt_authn's "no JWT needed"), not
//! nested inside a list where it would quietly satisfy the list; `max_lifetime` must be whole positive
//! seconds; `http_uri.timeout` must be positive; header names must be RFC 9110 tokens.
//!
//! One file per jwt_authn message, each with its decision table: this one `JwtAuthentication`;
//! `providers` `JwtProvider` (and `metadata` its metadata fields, written as filter state); `key_source` `RemoteJwks`,
//! `DataSource` and `oidc_discovery`; `binding` the sender-constraint extensions (`dpop`,
//! `certificate_bound`); `locations` where tokens are found; `output` what is written
//! upstream; `rules` `RequirementRule` and `RouteMatch`; `requirements` `JwtRequirement` and
//! `requirement_map`; `matchers` `StringMatcher` and `RegexMatcher`; `walk` the JSON walker.

mod binding;
mod key_source;
mod locations;
mod matchers;
mod metadata;
mod output;
mod providers;
mod requirements;
mod rules;
mod walk;

#[cfg(test)]
mod fixtures;

pub use binding::{
    BindingMode, DEFAULT_DPOP_MAX_AGE, DEFAULT_DPOP_MAX_FUTURE, DEFAULT_NONCE_STEP,
    DEFAULT_REPLAY_CACHE_SIZE, DpopConfig, NonceConfig, TokenBinding,
};
pub use key_source::{
    DEFAULT_CACHE_DURATION, DEFAULT_FAILED_REFETCH_DURATION, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_JWKS_BYTES,
    DEFAULT_MAX_STALE, DEFAULT_MIN_CACHE_DURATION, DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL, Discovery,
    KeySource, LOCAL_JWKS_UNREACHABLE, MAX_CONFIGURABLE_JWKS_BYTES, RemoteJwks, split_uri, valid_authority,
};
pub use locations::{HeaderLocation, TokenLocations};
pub use matchers::{StringMatcher, StringPattern};
pub use metadata::{ClaimToFilterState, FilterStateOutputs};
pub use output::{ClaimFormat, ClaimToHeader, STATUS_HEADER};
pub use providers::{
    DEFAULT_JWT_CACHE_SIZE, DEFAULT_SHARED_CACHE_SIZE, JwtCacheConfig, MAX_SHARED_CACHE_SIZE, Mode, Provider,
    ProviderId, RequiredClaim,
};
pub use requirements::{NamedRequirement, Requirement};
pub(crate) use rules::path_only;
pub use rules::{PathMatcher, Rule};
pub(crate) use walk::{is_blank, is_tchar};

use crate::policy::DEFAULT_MAX_TOKEN_BYTES;
use providers::{parse_mode, parse_providers};
use requirements::{named_requirements, parse_requirement_map};
use rules::parse_rules;
use serde_json::Value;
use std::fmt;
use std::time::Duration;
use walk::Decision::Reject;
use walk::{Obj, Unused, parse_document};

/// How long a paused request waits for a provider's first keys, unless configured.
pub const DEFAULT_STARTUP_HOLD_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for `max_token_bytes`: it bounds per-request copies, and no real header is larger.
pub const MAX_CONFIGURABLE_TOKEN_BYTES: usize = 1024 * 1024;

/// The validated configuration: built once at load, read-only afterwards.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sorted by name; a [`ProviderId`] indexes this list.
    pub providers: Vec<Provider>,
    /// In configuration order; the first matching rule applies.
    pub rules: Vec<Rule>,
    /// Extension: the longest token accepted, copied into every provider's policy and locations.
    pub max_token_bytes: usize,
    /// Extension: how long a request may wait for a provider's first keys.
    pub startup_hold_timeout: Duration,
    /// Extension: which signature backend verifies, `"auto"` (default), `"host"` or `"wasm"`.
    pub crypto: CryptoMode,
    /// jwt_authn: let CORS preflight requests through without a token.
    pub bypass_cors_preflight: bool,
    /// jwt_authn: answer failures with a bare 401/403, without the reason in the body.
    pub strip_failure_response: bool,
    /// jwt_authn `stat_prefix`: the prefix of every metric name, ending in a dot.
    pub stat_prefix: String,
    /// Accepted jwt_authn fields this filter ignores, one line each (for the load log).
    pub warnings: Vec<String>,
    /// Every header the filter writes upstream ([`output::output_headers`]), worked out once.
    pub output_headers: Vec<String>,
    /// jwt_authn `requirement_map`, sorted by name: what rules and routes name.
    pub requirement_map: Vec<NamedRequirement>,
    /// Extension `route_metadata`: read each request's route metadata (see `route`); by default
    /// on when `requirement_map` is set.
    pub route_metadata: bool,
    /// Extension `output_headers_from_client`: what a client's copy of an output header gets.
    pub output_headers_from_client: ClientOutputHeaders,
    /// Every provider is in report mode: nothing is ever refused, not even a request the filter
    /// cannot place (a route it cannot follow, a client-sent output header); it is reported.
    pub reports_only: bool,
}

/// The `output_headers_from_client` extension: what happens to a request that carries a header
/// this filter writes (`forward_payload_header`, `claim_to_headers`, `x-jwt-authn-status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientOutputHeaders {
    /// `"remove"`, the default (as jwt_authn): the client's copy is removed and the filter writes
    /// its own. Works behind another Envoy that wrote them (a gateway in front of a sidecar).
    #[default]
    Remove,
    /// `"reject"`: the request is refused (400 `output_header_from_client`), for deployments whose
    /// routes match on these headers: Envoy matched the route with the client's copy and will
    /// route again without it (see `route`).
    Reject,
}

/// Default metric name prefix.
pub const DEFAULT_STAT_PREFIX: &str = "jwt_authn_wasm.";

/// The `crypto` extension: where signatures are verified. Every policy check runs in Rust either
/// way; only the final signature arithmetic moves to the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CryptoMode {
    /// `"auto"`, the default: the host (Envoy's `verify_signature`) for RS256/384/512 and
    /// ES256/384 when it passes a self-test at load, pure Rust otherwise and for PS* and EdDSA.
    #[default]
    Auto,
    /// `"host"`: as `Auto`, but a host without working `verify_signature` fails the load.
    Host,
    /// `"wasm"`: always pure Rust inside the module.
    Wasm,
}

/// A configuration refused at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field (`rules[2].requires.provider_name`); empty for the whole
    /// document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid configuration: {}", self.message)
        } else {
            write!(f, "invalid configuration at `{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn error(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

type Result<T> = std::result::Result<T, ConfigError>;

impl Config {
    /// Parses and validates the plugin configuration (UTF-8 JSON).
    pub fn parse(json: &[u8]) -> Result<Config> {
        let root = Value::Object(parse_document(json)?);
        let mut warnings = Vec::new();
        let mut top = Obj::new(&root, String::new())?;
        let max_token_bytes = parse_max_token_bytes(&mut top)?;
        let startup_hold_timeout =
            top.duration("startup_hold_timeout")?.unwrap_or(DEFAULT_STARTUP_HOLD_TIMEOUT);
        let crypto = parse_crypto_mode(&mut top)?;
        let bypass_cors_preflight = top.bool("bypass_cors_preflight")?;
        let strip_failure_response = top.bool("strip_failure_response")?;
        let stat_prefix = parse_stat_prefix(&mut top)?;
        let mode = parse_mode(&mut top)?.unwrap_or_default();
        let providers = parse_providers(&mut top, max_token_bytes, mode, &mut warnings)?;
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        let requirement_map = parse_requirement_map(&mut top, &names)?;
        let rules = parse_rules(&mut top, &providers, &names, &requirement_map, &mut warnings)?;
        let route_metadata = match top.get("route_metadata") {
            None => !requirement_map.is_empty(),
            Some(_) => top.bool("route_metadata")?,
        };
        let output_headers_from_client = parse_client_output_headers(&mut top)?;
        let reports_only = !providers.is_empty() && providers.iter().all(|p| p.mode == Mode::Report);
        top.finish(&[JWT_AUTHENTICATION_UNUSED], &mut warnings)?;
        let requirement_map = named_requirements(requirement_map, &providers);
        Ok(Config {
            output_headers: output::output_headers(&providers),
            providers,
            rules,
            max_token_bytes,
            startup_hold_timeout,
            crypto,
            bypass_cors_preflight,
            strip_failure_response,
            stat_prefix,
            warnings,
            reports_only,
            requirement_map,
            route_metadata,
            output_headers_from_client,
        })
    }

    /// The first rule matching `path` (`:path`, query allowed), as jwt_authn: no rule means no JWT
    /// is needed.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(path))
    }
}

// ---- Top level ------------------------------------------------------------------------------

const JWT_AUTHENTICATION_UNUSED: &Unused =
    &[("filter_state_rules", Reject("another filter would choose the requirement; use rules"))];

fn parse_max_token_bytes(top: &mut Obj) -> Result<usize> {
    let path = top.at("max_token_bytes");
    match top.get("max_token_bytes") {
        None => Ok(DEFAULT_MAX_TOKEN_BYTES),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_CONFIGURABLE_TOKEN_BYTES).contains(n))
            .ok_or_else(|| {
                error(path, format!("expected an integer from 1 to {MAX_CONFIGURABLE_TOKEN_BYTES}"))
            }),
    }
}

fn parse_client_output_headers(top: &mut Obj) -> Result<ClientOutputHeaders> {
    let path = top.at("output_headers_from_client");
    match top.str("output_headers_from_client")? {
        None | Some("remove") => Ok(ClientOutputHeaders::Remove),
        Some("reject") => Ok(ClientOutputHeaders::Reject),
        Some(_) => Err(error(path, "expected \"remove\" (the default) or \"reject\"")),
    }
}

fn parse_crypto_mode(top: &mut Obj) -> Result<CryptoMode> {
    let path = top.at("crypto");
    match top.str("crypto")? {
        None | Some("auto") => Ok(CryptoMode::Auto),
        Some("host") => Ok(CryptoMode::Host),
        Some("wasm") => Ok(CryptoMode::Wasm),
        Some(_) => Err(error(path, "expected \"auto\" (the default), \"host\" or \"wasm\"")),
    }
}

/// `stat_prefix`: metric names start with it (a dot is added); only characters that survive in
/// Envoy's stat names and Prometheus output.
fn parse_stat_prefix(o: &mut Obj) -> Result<String> {
    let Some(prefix) = o.non_empty_str("stat_prefix")? else { return Ok(DEFAULT_STAT_PREFIX.to_owned()) };
    let prefix = prefix.trim_end_matches('.');
    let ok = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.".contains(&b));
    if !ok {
        return Err(error(o.at("stat_prefix"), "expected letters, digits, `_` and `.`"));
    }
    Ok(format!("{prefix}."))
}

#[cfg(test)]
mod tests {
    use super::fixtures::{EXAMPLE, assert_refused, base, parse, with};
    use super::*;
    use crate::alg::{Algorithm, AlgorithmSet};
    use crate::jwks::KeySet;
    use crate::policy::Policy;
    use serde_json::json;

    #[test]
    fn example_parses_to_the_expected_structure() {
        let config = Config::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            config.warnings,
            ["`providers.local.local_jwks`: JWKS has no keys; every token of this provider will be refused"]
        );
        assert_eq!((config.max_token_bytes, config.startup_hold_timeout), (8192, Duration::from_secs(10)));
        assert!(!config.bypass_cors_preflight && !config.strip_failure_response);
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["corp", "local"]);

        let corp = &config.providers[0];
        assert_eq!(
            corp.policy,
            Policy {
                issuer: Some("https://issuer.example".into()),
                audiences: vec!["api.example".into()],
                algorithms: [Algorithm::RS256, Algorithm::ES256].into_iter().collect(),
                clock_skew_seconds: 60,
                require_expiration: false,
                max_lifetime_seconds: Some(86400),
                max_token_bytes: 8192,
            }
        );
        assert_eq!(
            corp.keys,
            KeySource::Remote(Box::new(RemoteJwks {
                uri: "http://idp.internal/jwks.json".into(),
                cluster: "idp".into(),
                authority: "idp.internal".into(),
                path: "/jwks.json".into(),
                timeout: Duration::from_secs(5),
                cache_duration: Duration::from_secs(600),
                failed_refetch_duration: Duration::from_secs(1),
                min_cache_duration: DEFAULT_MIN_CACHE_DURATION,
                max_stale: DEFAULT_MAX_STALE,
                unknown_kid_refetch_interval: DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL,
                max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
                discovery: None,
            }))
        );
        assert_eq!(
            corp.locations,
            TokenLocations {
                headers: vec![HeaderLocation {
                    name: "authorization".into(),
                    value_prefix: "Bearer ".into()
                }],
                params: vec!["access_token".into()],
                cookies: vec!["session".into()],
                max_token_bytes: 8192,
            }
        );
        assert!(!corp.forward && !corp.pad_forward_payload_header);
        assert_eq!(corp.forward_payload_header.as_deref(), Some("x-jwt-payload"));
        assert_eq!(
            corp.claim_to_headers,
            [ClaimToHeader {
                header_name: "x-jwt-sub".into(),
                claim_name: "sub".into(),
                format: ClaimFormat::Text
            }]
        );
        assert!(corp.subjects.is_none());
        let cache =
            JwtCacheConfig { jwt_cache_size: 1000, jwt_max_token_size: 8192, shared_cache_size: 16_384 };
        assert_eq!(corp.jwt_cache, cache);

        let local = &config.providers[1];
        assert_eq!(local.policy.issuer.as_deref(), Some("https://local.example"));
        assert_eq!(local.keys, KeySource::Local(KeySet::default()));
        assert_eq!(local.policy.algorithms, AlgorithmSet::all());

        let rules = &config.rules;
        assert_eq!(rules.len(), 4);
        assert!(matches!(&rules[0].matcher, PathMatcher::Prefix(p) if p == "/healthz"));
        assert_eq!(rules[0].requires, None);
        assert!(matches!(&rules[1].matcher, PathMatcher::Path(p) if p == "/public"));
        assert_eq!(rules[1].requires, Some(Requirement::AllowMissing));
        assert!(matches!(&rules[2].matcher, PathMatcher::Regex(r) if r.as_str() == "^(?:/api/v[0-9]+/.*)$"));
        assert_eq!(
            rules[2].requires,
            Some(Requirement::Any(vec![
                Requirement::Provider { id: 0, audiences: None },
                Requirement::Provider { id: 1, audiences: Some(vec!["a".into()]) },
            ]))
        );
        assert!(matches!(&rules[3].matcher, PathMatcher::Prefix(p) if p == "/"));
        assert_eq!(rules[3].requires, Some(Requirement::Provider { id: 0, audiences: None }));
        assert!(rules.iter().all(|r| r.case_sensitive));
    }

    #[test]
    fn crypto_modes() {
        for (value, mode) in [
            (json!("auto"), CryptoMode::Auto),
            (json!("host"), CryptoMode::Host),
            (json!("wasm"), CryptoMode::Wasm),
            (Value::Null, CryptoMode::Auto),
        ] {
            assert_eq!(parse(&with("", "crypto", value.clone())).unwrap().crypto, mode, "{value}");
        }
    }

    #[test]
    fn client_output_headers_and_report_only() {
        for (value, chosen) in [
            (json!("remove"), ClientOutputHeaders::Remove),
            (json!("reject"), ClientOutputHeaders::Reject),
            (Value::Null, ClientOutputHeaders::Remove),
        ] {
            let config = parse(&with("", "output_headers_from_client", value.clone())).unwrap();
            assert_eq!(config.output_headers_from_client, chosen, "{value}");
        }
        assert!(!parse(&json!({})).unwrap().reports_only, "no provider: nothing reports");
        assert!(parse(&with("", "mode", json!("report"))).unwrap().reports_only);
        let one_enforcing = with("/providers/q", "mode", json!("report"));
        assert!(!parse(&one_enforcing).unwrap().reports_only);
    }

    #[test]
    fn defaults() {
        let config = parse(&json!({"providers": {
            "r": {"remote_jwks": {"http_uri": {"uri": "https://idp.example", "cluster": "idp"}}},
            "l": {"local_jwks": {"inline_string": "{\"keys\":[]}"}}}}))
        .unwrap();
        assert_eq!(config.max_token_bytes, DEFAULT_MAX_TOKEN_BYTES);
        assert_eq!(config.startup_hold_timeout, Duration::from_secs(10));
        assert_eq!(config.crypto, CryptoMode::Auto);
        assert!(!config.bypass_cors_preflight && !config.strip_failure_response);
        assert!(config.rules.is_empty() && config.rule_for("/").is_none());
        let remote = &config.providers[1];
        assert_eq!(remote.name, "r");
        let KeySource::Remote(jwks) = &remote.keys else { panic!("remote expected") };
        assert_eq!((jwks.authority.as_str(), jwks.path.as_str()), ("idp.example", "/"));
        assert_eq!(jwks.timeout, Duration::from_secs(5));
        assert_eq!(jwks.cache_duration, Duration::from_secs(600));
        assert_eq!(jwks.failed_refetch_duration, Duration::from_secs(1));
        for provider in &config.providers {
            assert_eq!(provider.policy, Policy::default());
            assert_eq!(
                provider.locations,
                TokenLocations {
                    headers: vec![HeaderLocation {
                        name: "authorization".into(),
                        value_prefix: "Bearer ".into()
                    }],
                    params: vec!["access_token".into()],
                    cookies: vec![],
                    max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                }
            );
            assert!(!provider.forward && provider.forward_payload_header.is_none());
            assert!(provider.claim_to_headers.is_empty() && provider.subjects.is_none());
        }
        // Any configured location replaces both defaults; clock_skew_seconds 0 means 60, as jwt_authn.
        let doc = with("/providers/q", "from_cookies", json!(["s"]));
        let doc = {
            let mut d = doc;
            d["providers"]["q"]["clock_skew_seconds"] = json!(0);
            d
        };
        let q = &parse(&doc).unwrap().providers[1];
        assert_eq!((q.locations.headers.len(), q.locations.params.len()), (0, 0));
        assert_eq!(q.policy.clock_skew_seconds, 60);
        // An empty audiences list in provider_and_audiences keeps the provider's own.
        let doc = with(
            "/rules/0",
            "requires",
            json!({"provider_and_audiences": {"provider_name": "q", "audiences": []}}),
        );
        assert_eq!(
            parse(&doc).unwrap().rules[0].requires,
            Some(Requirement::Provider { id: 1, audiences: None })
        );
        // `requires: {}` is jwt_authn's "no JWT needed".
        let doc = with("/rules/0", "requires", json!({}));
        assert_eq!(parse(&doc).unwrap().rules[0].requires, None);
    }

    #[test]
    fn top_level_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with("", "startup_hold_timeout", json!("10")), "startup_hold_timeout", "duration"),
            (with("", "max_token_bytes", json!(0)), "max_token_bytes", "from 1 to"),
            (with("", "max_token_bytes", json!("8192")), "max_token_bytes", "from 1 to"),
            (with("", "crypto", json!("Host")), "crypto", "expected \"auto\" (the default), \"host\" or \"wasm\""),
            (with("", "crypto", json!("")), "crypto", "\"host\" or \"wasm\""),
            (with("", "crypto", json!(true)), "crypto", "expected a string"),
            (with("", "output_headers_from_client", json!("drop")), "output_headers_from_client", "\"remove\" (the default) or \"reject\""),
            (with("", "provders", json!({})), "provders", "unknown field (misspelt?)"),
            (with("", "rules", json!({})), "rules", "expected a list"),
            (with("", "filter_state_rules", json!({"name": "x"})), "filter_state_rules", "not supported"),
        ]);
    }

    #[test]
    fn document_errors() {
        for (doc, message) in [
            (&b"{\"providers\": "[..], "not valid JSON"),
            (b"[]", "expected a JSON object"),
            (b"{\"rules\":[],\"rules\":[]}", "same member twice"),
            (b"\xff", "not valid JSON"),
        ] {
            let e = Config::parse(doc).unwrap_err();
            assert_eq!(e.field, "");
            assert!(e.message.contains(message), "{e}");
        }
    }

    #[test]
    fn error_display() {
        let e = parse(&with("/providers/p/remote_jwks/http_uri", "timeout", json!("5"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration at `providers.p.remote_jwks.http_uri.timeout`: expected a duration like \"5s\""
        );
        assert_eq!(error("", "x").to_string(), "invalid configuration: x");
    }

    #[test]
    fn warnings_for_ignored_fields() {
        let mut doc = base();
        let p = &mut doc["providers"]["p"];
        p["normalize_payload_in_metadata"] = json!({"space_delimited_claims": ["scope"]});
        p["header_in_metadata"] = json!(""); // unset: no warning
        p["clear_route_cache"] = json!(false); // unset: no warning
        p["jwt_cache_config"] = json!({"jwt_cache_size": 200, "jwt_max_token_size": 4096});
        p["remote_jwks"]["retry_policy"] = json!({"num_retries": 3});
        p["remote_jwks"]["async_fetch"] = json!({"fast_listener": true});
        doc["rules"][0]["match"] =
            json!({"safe_regex": {"google_re2": {"max_program_size": 100}, "regex": "/.*"}});
        let config = parse(&doc).unwrap();
        let fields: Vec<&str> = config.warnings.iter().map(|w| w.split('`').nth(1).unwrap()).collect();
        assert_eq!(
            fields,
            [
                "providers.p.remote_jwks.async_fetch.fast_listener",
                "providers.p.remote_jwks.retry_policy",
                "providers.p.normalize_payload_in_metadata",
                "providers.q.local_jwks",
                "rules[0].match.safe_regex.google_re2.max_program_size",
            ]
        );
        assert_eq!(
            config.providers[0].jwt_cache,
            JwtCacheConfig {
                jwt_cache_size: 200,
                jwt_max_token_size: 4096,
                shared_cache_size: DEFAULT_SHARED_CACHE_SIZE
            }
        );
        let mut doc = base();
        doc["providers"]["p"]["jwt_cache_config"] = json!({"disabled": true, "jwt_cache_size": 5});
        let off = parse(&doc).unwrap().providers[0].jwt_cache;
        assert_eq!((off.jwt_cache_size, off.shared_cache_size), (0, 0), "disabled turns both off");
        doc["providers"]["p"]["jwt_cache_config"] = json!({"shared_cache_size": 0});
        let shared_off = parse(&doc).unwrap().providers[0].jwt_cache;
        assert_eq!((shared_off.jwt_cache_size, shared_off.shared_cache_size), (DEFAULT_JWT_CACHE_SIZE, 0));
        doc["providers"]["p"]["jwt_cache_config"] = json!({"shared_cache_size": 100});
        assert_eq!(parse(&doc).unwrap().providers[0].jwt_cache.shared_cache_size, 100);
        doc["providers"]["p"]["jwt_cache_config"] = json!({"shared_cache_size": MAX_SHARED_CACHE_SIZE + 1});
        let e = parse(&doc).unwrap_err().to_string();
        assert!(e.contains("providers.p.jwt_cache_config.shared_cache_size"), "{e}");
        doc["providers"]["p"]["jwt_cache_config"] = json!({"jwt_cache_size": 0});
        assert_eq!(parse(&doc).unwrap().providers[0].jwt_cache.jwt_cache_size, DEFAULT_JWT_CACHE_SIZE);
    }

    #[test]
    fn optional_fields_parse() {
        let mut doc = base();
        doc["bypass_cors_preflight"] = json!(true);
        doc["strip_failure_response"] = json!(true);
        let p = &mut doc["providers"]["p"];
        p["forward"] = json!(true);
        p["forward_payload_header"] = json!("X-JWT-Payload");
        p["pad_forward_payload_header"] = json!(true);
        p["require_expiration"] = json!(true);
        p["from_headers"] = json!([{"name": "X-Token"}]);
        p["remote_jwks"]["http_uri"]["uri"] = json!("HTTPS://[::1]:8443?a=b");
        let config = parse(&doc).unwrap();
        assert!(config.bypass_cors_preflight && config.strip_failure_response);
        let p = &config.providers[0];
        assert!(p.forward && p.pad_forward_payload_header && p.policy.require_expiration);
        assert_eq!(p.forward_payload_header.as_deref(), Some("x-jwt-payload"));
        assert_eq!(
            p.locations.headers,
            [HeaderLocation { name: "x-token".into(), value_prefix: String::new() }]
        );
        let KeySource::Remote(jwks) = &p.keys else { panic!("remote expected") };
        assert_eq!((jwks.authority.as_str(), jwks.path.as_str()), ("[::1]:8443", "/?a=b"));
        // inline_bytes: proto JSON bytes, either base64 alphabet.
        let doc = with("/providers/q", "local_jwks", json!({"inline_bytes": "eyJrZXlzIjpbXX0"}));
        assert_eq!(parse(&doc).unwrap().providers[1].keys, KeySource::Local(KeySet::default()));
    }
}
