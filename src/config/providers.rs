//! `JwtProvider`: who issues the tokens, what a token must satisfy (the [`Policy`]), and this
//! filter's per-provider extensions (`mode`, `required_claims`, `required_scopes`, the
//! `jwt_cache_config` defaults; `dpop` and `certificate_bound` in `binding`). Where keys, tokens and output headers come from is parsed by the
//! files named for them.

use super::binding::{TokenBinding, parse_binding};
use super::key_source::parse_key_source;
use super::locations::{TokenLocations, parse_locations};
use super::matchers::{StringMatcher, parse_string_matcher};
use super::metadata::{FilterStateOutputs, METADATA_UNUSED, parse_metadata};
use super::output::{ClaimToHeader, parse_claim_to_headers, parse_forward_payload_header};
use super::walk::Decision::{Reject, Warn};
use super::walk::{Obj, Unused, non_empty, parse_algorithms, sorted_members};
use super::{KeySource, Result, error};
use crate::policy::{DEFAULT_CLOCK_SKEW_SECONDS, Policy};
use serde_json::Value;

/// Index into [`Config::providers`](super::Config::providers). Providers are sorted by name, so ids are stable for a config.
pub type ProviderId = usize;

/// One `providers` entry.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub policy: Policy,
    pub keys: KeySource,
    pub locations: TokenLocations,
    /// jwt_authn `forward`: keep the token in the request sent upstream. Default false.
    pub forward: bool,
    /// Header (lower-case) receiving the verified payload, base64url.
    pub forward_payload_header: Option<String>,
    pub pad_forward_payload_header: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// jwt_authn `subjects`. When set, the verifier MUST refuse a token whose `sub` is not allowed
    /// by [`StringMatcher::allows`]; parsing it here without enforcing it would weaken a config.
    pub subjects: Option<StringMatcher>,
    /// The verified-token cache (jwt_authn `jwt_cache_config`), always resolved.
    pub jwt_cache: JwtCacheConfig,
    /// Extension: `report` verifies and counts but never refuses (top-level `mode` when unset).
    pub mode: Mode,
    /// Extension: claims a verified token must carry (all of them), each with one of its values.
    pub required_claims: Vec<RequiredClaim>,
    /// Extension: scopes a verified token must grant (all of them), from `scope` or `scp`.
    pub required_scopes: Vec<String>,
    /// jwt_authn `payload_in_metadata`, `header_in_metadata`, `failed_status_in_metadata` (as
    /// filter state), and the extension `claim_to_filter_state`.
    pub identity: FilterStateOutputs,
    /// Extension: sender-constrained tokens (`dpop`, `certificate_bound`); off by default.
    pub binding: TokenBinding,
}

/// Whether failures refuse the request (`enforce`, the default) or are only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Enforce,
    /// Verify and count everything, never refuse; the upstream learns the outcome from the
    /// `x-jwt-authn-status` header.
    Report,
}

/// `required_claims` entry: the claim (dotted path for nested ones) must equal one of `values`,
/// or, when it is an array, contain one of them.
#[derive(Debug, Clone, PartialEq)]
pub struct RequiredClaim {
    pub name: String,
    pub values: Vec<Value>,
}

/// `jwt_cache_config`, resolved. Unlike jwt_authn (no cache unless configured), the cache is on by
/// default; the extension `disabled: true` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwtCacheConfig {
    /// Tokens kept per provider and VM; 0 when disabled. jwt_authn's 0 (proto3 unset) means the
    /// default.
    pub jwt_cache_size: usize,
    /// Longest token kept; 0 (unset) means the provider's `max_token_bytes`.
    pub jwt_max_token_size: usize,
    /// Extension: tokens kept in the process-wide record of verified tokens
    /// (`crate::shared_record`); 0 when off (set so, or `disabled`).
    pub shared_cache_size: usize,
}

/// Verified tokens kept per provider and VM by default.
pub const DEFAULT_JWT_CACHE_SIZE: usize = 1000;
/// Tokens kept per provider in the process-wide shared record by default: enough for a gateway's
/// active clients, about 1.5 MiB of shared data per provider when full.
pub const DEFAULT_SHARED_CACHE_SIZE: usize = 16_384;
/// The most `shared_cache_size` may ask for (the record's memory is the operator's to bound).
pub const MAX_SHARED_CACHE_SIZE: u32 = 1 << 20;

/// The provider's own fields; `normalize_payload_in_metadata` is in [`METADATA_UNUSED`].
const PROVIDER_UNUSED: &Unused = &[
    (
        "clear_route_cache",
        Warn("Envoy routes again after any header change by this filter, as if it were true"),
    ),
    ("extract_only_without_validation", Reject("this filter always verifies tokens")),
];

/// `providers`, sorted by name; `mode` is the top-level default for providers without their own.
pub(super) fn parse_providers(
    top: &mut Obj,
    max_token_bytes: usize,
    mode: Mode,
    warnings: &mut Vec<String>,
) -> Result<Vec<Provider>> {
    sorted_members(top, "providers")?
        .into_iter()
        .map(|(name, value)| {
            let path = format!("providers.{name}");
            non_empty(name, "providers")?;
            parse_provider(name, Obj::new(value, path)?, max_token_bytes, mode, warnings)
        })
        .collect()
}

fn parse_provider(
    name: &str,
    mut o: Obj,
    max_token_bytes: usize,
    default_mode: Mode,
    warnings: &mut Vec<String>,
) -> Result<Provider> {
    let policy = Policy {
        issuer: o.non_empty_str("issuer")?.map(str::to_owned),
        audiences: o.str_list("audiences")?,
        algorithms: parse_algorithms(&mut o)?,
        // jwt_authn: 0 (proto3's unset) means the default.
        clock_skew_seconds: match o.u32("clock_skew_seconds")? {
            None | Some(0) => DEFAULT_CLOCK_SKEW_SECONDS,
            Some(n) => u64::from(n),
        },
        require_expiration: o.bool("require_expiration")?,
        max_lifetime_seconds: parse_max_lifetime(&mut o)?,
        max_token_bytes,
    };
    let keys = parse_key_source(&mut o, policy.issuer.as_deref(), warnings)?;
    let locations = parse_locations(&mut o, max_token_bytes)?;
    let forward_payload_header = parse_forward_payload_header(&mut o)?;
    let provider = Provider {
        name: name.to_owned(),
        policy,
        keys,
        locations,
        forward: o.bool("forward")?,
        forward_payload_header,
        pad_forward_payload_header: o.bool("pad_forward_payload_header")?,
        claim_to_headers: parse_claim_to_headers(&mut o)?,
        subjects: o.obj("subjects")?.map(|m| parse_string_matcher(m, warnings)).transpose()?,
        jwt_cache: parse_jwt_cache(&mut o, max_token_bytes)?,
        mode: parse_mode(&mut o)?.unwrap_or(default_mode),
        required_claims: parse_required_claims(&mut o)?,
        required_scopes: parse_required_scopes(&mut o)?,
        identity: parse_metadata(&mut o)?,
        binding: parse_binding(&mut o)?,
    };
    o.finish(&[PROVIDER_UNUSED, METADATA_UNUSED], warnings)?;
    Ok(provider)
}

fn parse_max_lifetime(o: &mut Obj) -> Result<Option<u64>> {
    match o.duration("max_lifetime")? {
        None => Ok(None),
        Some(d) if d.subsec_nanos() == 0 && d.as_secs() > 0 => Ok(Some(d.as_secs())),
        Some(_) => Err(error(o.at("max_lifetime"), "expected a whole positive number of seconds")),
    }
}

/// `mode` of a provider or, as the default of every provider, of the whole configuration.
pub(super) fn parse_mode(o: &mut Obj) -> Result<Option<Mode>> {
    match o.str("mode")? {
        None => Ok(None),
        Some("enforce") => Ok(Some(Mode::Enforce)),
        Some("report") => Ok(Some(Mode::Report)),
        Some(other) => Err(error(o.at("mode"), format!("expected \"enforce\" or \"report\", not {other:?}"))),
    }
}

fn parse_required_claims(o: &mut Obj) -> Result<Vec<RequiredClaim>> {
    o.list("required_claims")?
        .into_iter()
        .map(|(path, value)| {
            let mut c = Obj::new(value, path)?;
            let name = non_empty(c.str("name")?.unwrap_or(""), &c.at("name"))?.to_owned();
            let values_path = c.at("values");
            let values: Vec<Value> = c.list("values")?.into_iter().map(|(_, v)| v.clone()).collect();
            if values.is_empty() || values.iter().any(|v| v.is_object() || v.is_array() || v.is_null()) {
                return Err(error(values_path, "expected a non-empty list of strings, numbers or booleans"));
            }
            c.finish_all_known()?;
            Ok(RequiredClaim { name, values })
        })
        .collect()
}

fn parse_required_scopes(o: &mut Obj) -> Result<Vec<String>> {
    let path = o.at("required_scopes");
    let scopes = o.str_list("required_scopes")?;
    match scopes.iter().find(|s| s.contains(' ')) {
        Some(s) => Err(error(path, format!("a scope has no spaces: {s:?}"))),
        None => Ok(scopes),
    }
}

fn parse_jwt_cache(o: &mut Obj, max_token_bytes: usize) -> Result<JwtCacheConfig> {
    let resolved = |size: Option<u32>, max: Option<u32>, shared: Option<u32>| JwtCacheConfig {
        jwt_cache_size: size.filter(|n| *n > 0).map_or(DEFAULT_JWT_CACHE_SIZE, |n| n as usize),
        jwt_max_token_size: max.filter(|n| *n > 0).map_or(max_token_bytes, |n| n as usize),
        // An extension field: 0 means off, as written.
        shared_cache_size: shared.map_or(DEFAULT_SHARED_CACHE_SIZE, |n| n as usize),
    };
    let Some(mut c) = o.obj("jwt_cache_config")? else { return Ok(resolved(None, None, None)) };
    let shared_path = c.at("shared_cache_size");
    let shared = c.u32("shared_cache_size")?;
    if shared.is_some_and(|n| n > MAX_SHARED_CACHE_SIZE) {
        return Err(error(shared_path, format!("at most {MAX_SHARED_CACHE_SIZE}")));
    }
    let mut config = resolved(c.u32("jwt_cache_size")?, c.u32("jwt_max_token_size")?, shared);
    if c.bool("disabled")? {
        config.jwt_cache_size = 0;
        config.shared_cache_size = 0;
    }
    c.finish_all_known()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::super::ClaimFormat;
    use super::super::fixtures::{P, assert_refused, base, parse, with};
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(P, "algorithms", json!(["RS256", "XS1"])), "providers.p.algorithms[1]", "unknown algorithm `XS1`"),
            (with(P, "algorithms", json!(["none"])), "providers.p.algorithms[0]", "`none` is never accepted"),
            (with(P, "algorithms", json!(["HS256"])), "providers.p.algorithms[0]", "HMAC"),
            (with(P, "algorithms", json!(["rs256"])), "providers.p.algorithms[0]", "unknown algorithm"),
            (with(P, "algorithms", json!([])), "providers.p.algorithms", "at least one"),
            (with(P, "algorithms", json!("RS256")), "providers.p.algorithms", "expected a list"),
            (with(P, "max_lifetime", json!("1.5s")), "providers.p.max_lifetime", "whole positive"),
            (with(P, "max_lifetime", json!("0s")), "providers.p.max_lifetime", "whole positive"),
            (with(P, "clock_skew_seconds", json!(-1)), "providers.p.clock_skew_seconds", "integer"),
            (with(P, "clock_skew_seconds", json!(4294967296u64)), "providers.p.clock_skew_seconds", "integer"),
            (with(P, "isuer", json!("x")), "providers.p.isuer", "unknown field"),
            (with(P, "audiences", json!([""])), "providers.p.audiences[0]", "empty"),
            (with(P, "issuer", json!(1)), "providers.p.issuer", "expected a string"),
            (with(P, "forward", json!("yes")), "providers.p.forward", "true or false"),
            (with("/providers", "p", json!([])), "providers.p", "expected an object"),
            (with(P, "extract_only_without_validation", json!(true)), "providers.p.extract_only_without_validation", "always verifies"),
        ]);
    }

    #[test]
    fn observability_and_authorization_extensions() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.stat_prefix, "jwt_authn_wasm.");
        assert!(config.providers.iter().all(|p| p.mode == Mode::Enforce));
        assert!(
            config.providers[0].required_claims.is_empty() && config.providers[0].required_scopes.is_empty()
        );

        let mut doc = base();
        doc["stat_prefix"] = json!("edge.jwt");
        doc["mode"] = json!("report");
        doc["providers"]["q"]["mode"] = json!("enforce");
        let p = &mut doc["providers"]["p"];
        p["required_claims"] =
            json!([{"name": "realm.roles", "values": ["admin", "ops"]}, {"name": "n", "values": [1, true]}]);
        p["required_scopes"] = json!(["read", "write:all"]);
        p["claim_to_headers"] =
            json!([{"header_name": "x-roles", "claim_name": "realm.roles", "format": "json"}]);
        let config = parse(&doc).unwrap();
        assert_eq!(config.stat_prefix, "edge.jwt.");
        let (p, q) = (&config.providers[0], &config.providers[1]);
        assert_eq!((p.mode, q.mode), (Mode::Report, Mode::Enforce));
        assert_eq!(
            p.required_claims[0],
            RequiredClaim { name: "realm.roles".into(), values: vec![json!("admin"), json!("ops")] }
        );
        assert_eq!(p.required_claims[1].values, [json!(1), json!(true)]);
        assert_eq!(p.required_scopes, ["read", "write:all"]);
        assert_eq!(p.claim_to_headers[0].format, ClaimFormat::Json);

        let cases = [
            (with("", "mode", json!("audit")), "mode"),
            (with("/providers/p", "mode", json!("Report")), "providers.p.mode"),
            (with("", "stat_prefix", json!("a b")), "stat_prefix"),
            (
                with("/providers/p", "required_claims", json!([{"name": "x", "values": []}])),
                "providers.p.required_claims[0].values",
            ),
            (
                with("/providers/p", "required_claims", json!([{"name": "x", "values": [{"a": 1}]}])),
                "providers.p.required_claims[0].values",
            ),
            (
                with("/providers/p", "required_claims", json!([{"values": ["a"]}])),
                "providers.p.required_claims[0].name",
            ),
            (
                with(
                    "/providers/p",
                    "required_claims",
                    json!([{"name": "x", "values": ["a"], "value": "a"}]),
                ),
                "providers.p.required_claims[0].value",
            ),
            (with("/providers/p", "required_scopes", json!(["a b"])), "providers.p.required_scopes"),
            (
                with(
                    "/providers/p",
                    "claim_to_headers",
                    json!([{"header_name": "x", "claim_name": "c", "format": "csv"}]),
                ),
                "providers.p.claim_to_headers[0].format",
            ),
        ];
        for (doc, field) in cases {
            let e = parse(&doc).unwrap_err();
            assert_eq!(e.field, field, "{doc}: {e}");
        }
    }
}
