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
//! | JwtProvider        | mode, required_claims, required_scopes | extensions of this filter     |
//! | ClaimToHeader      | format                                 | extension: `text` or `json`   |
//! | JwtProvider        | issuer, audiences, require_expiration, max_lifetime, clock_skew_seconds, remote_jwks, local_jwks, forward, from_headers, from_params, from_cookies, forward_payload_header, pad_forward_payload_header, claim_to_headers | implemented |
//! | JwtProvider        | subjects                               | implemented ([`Provider::subjects`]) |
//! | JwtProvider        | algorithms                             | extension (allow-list)        |
//! | JwtProvider        | payload_in_metadata, header_in_metadata, failed_status_in_metadata, normalize_payload_in_metadata | warning: no dynamic metadata is written (a DENY-style policy reading it sees nothing) |
//! | JwtProvider        | clear_route_cache                      | warning: routing tuning       |
//! | JwtProvider        | jwt_cache_config                       | implemented ([`Provider::jwt_cache`]); on by default here, with the extension `disabled` |
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

use crate::alg::{Algorithm, AlgorithmSet};
use crate::forward;
use crate::json::{self, StrictJsonError};
use crate::jwks::{JwksError, KeySet};
use crate::policy::{DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_TOKEN_BYTES, Policy};
use base64::Engine;
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Index into [`Config::providers`]. Providers are sorted by name, so ids are stable for a config.
pub type ProviderId = usize;

/// How long a paused request waits for a provider's first keys, unless configured.
pub const DEFAULT_STARTUP_HOLD_TIMEOUT: Duration = Duration::from_secs(10);
/// `http_uri.timeout` when absent. jwt_authn requires the field; this filter defaults it instead.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// `remote_jwks.cache_duration` when absent, as jwt_authn.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
/// `async_fetch.failed_refetch_duration` when absent, as jwt_authn.
pub const DEFAULT_FAILED_REFETCH_DURATION: Duration = Duration::from_secs(1);
/// Default least freshness of fetched keys, whatever the answer's caching headers say.
pub const DEFAULT_MIN_CACHE_DURATION: Duration = Duration::from_secs(60);
/// Default bound on serving keys past their freshness while refreshes fail.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// Default least time between refetches caused by unknown `kid`s.
pub const DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default largest JWKS answer accepted.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;
/// Largest `max_jwks_bytes` allowed.
pub const MAX_CONFIGURABLE_JWKS_BYTES: usize = 16 * 1024 * 1024;
/// Upper bound for `max_token_bytes`: it bounds per-request copies, and no real header is larger.
pub const MAX_CONFIGURABLE_TOKEN_BYTES: usize = 1024 * 1024;
/// Why `local_jwks.filename` / `environment_variable` / `watched_directory` cannot work.
pub const LOCAL_JWKS_UNREACHABLE: &str = "the wasm sandbox cannot read Envoy's files, and sees \
     only environment variables passed through vm_config, which this filter does not read; \
     put the JWKS in `inline_string`";

// Nesting allowed in the configuration document: requirement trees add three levels per step.
const CONFIG_MAX_DEPTH: usize = 64;
// google.protobuf.Duration's own range.
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

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
    /// Every header the filter writes upstream ([`forward::output_headers`]), worked out once.
    pub output_headers: Vec<String>,
}

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

/// Where a provider's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An inline JWKS document, parsed at load.
    Local(KeySet),
    Remote(Box<RemoteJwks>),
}

/// `remote_jwks`, split for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub uri: String,
    pub cluster: String,
    /// `:authority` (host and optional port).
    pub authority: String,
    /// `:path`, with the query if any; `/` when the uri has none.
    pub path: String,
    pub timeout: Duration,
    pub cache_duration: Duration,
    pub failed_refetch_duration: Duration,
    /// Extension: the least freshness an answer's caching headers can ask for.
    pub min_cache_duration: Duration,
    /// Extension: how long past their freshness keys keep serving while refreshes fail.
    pub max_stale: Duration,
    /// Extension: least time between refetches caused by unknown `kid`s.
    pub unknown_kid_refetch_interval: Duration,
    /// Extension: largest JWKS answer accepted.
    pub max_jwks_bytes: usize,
    /// Extension (`oidc_discovery`): `uri` is then the issuer's discovery document, which names
    /// the JWKS.
    pub discovery: Option<Discovery>,
}

/// OIDC discovery (provider field `oidc_discovery`): the JWKS URI comes from
/// `<issuer>/.well-known/openid-configuration`, fetched through `RemoteJwks::cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The provider's issuer: the document must name exactly it.
    pub issuer: String,
    /// Hosts (`host[:port]`, lower case) the document's `jwks_uri` may point at besides the
    /// issuer's own.
    pub allowed_jwks_hosts: Vec<String>,
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
}

/// Verified tokens kept per provider and VM by default.
pub const DEFAULT_JWT_CACHE_SIZE: usize = 1000;

/// Where a provider looks for tokens. Without `from_headers`, `from_params` and `from_cookies`,
/// jwt_authn's defaults apply: `Authorization: Bearer <token>` and the `access_token` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLocations {
    pub headers: Vec<HeaderLocation>,
    pub params: Vec<String>,
    pub cookies: Vec<String>,
    /// Longer values are refused before they are decoded or copied.
    pub max_token_bytes: usize,
}

/// `from_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLocation {
    /// Lower-case.
    pub name: String,
    /// As configured, e.g. `"Bearer "`; empty means the whole value is the token.
    pub value_prefix: String,
}

impl HeaderLocation {
    /// The scheme (`value_prefix` without surrounding blanks), and whether blanks must separate it
    /// from the token: always after a word such as `Bearer`, and after any prefix configured with a
    /// trailing space; a prefix such as `token=` may be followed by the token directly.
    pub fn scheme(&self) -> (&str, bool) {
        let scheme = self.value_prefix.trim_matches(is_blank);
        let trailing_blank = self.value_prefix.ends_with(is_blank);
        let ends_in_word = scheme.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        (scheme, trailing_blank || ends_in_word)
    }

    /// Whether both locations find the same token in the same request.
    pub fn same_location(&self, other: &HeaderLocation) -> bool {
        let ((a, a_space), (b, b_space)) = (self.scheme(), other.scheme());
        self.name == other.name && a.eq_ignore_ascii_case(b) && a_space == b_space
    }
}

/// `claim_to_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Lower-case.
    pub header_name: String,
    /// Dotted path for nested claims, as jwt_authn (`claim.nested.key`); a top-level claim whose
    /// name contains dots (`https://example.com/roles`) is found first.
    pub claim_name: String,
    /// Extension: how the value is written.
    pub format: ClaimFormat,
}

/// How a claim becomes a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimFormat {
    /// Strings as they are, numbers and booleans as JSON text, arrays of those comma-joined,
    /// objects as JSON.
    #[default]
    Text,
    /// Always the claim's JSON text.
    Json,
}

/// `type.matcher.v3.StringMatcher`, as used by `subjects`.
#[derive(Debug, Clone)]
pub struct StringMatcher {
    pub pattern: StringPattern,
    /// ASCII case folding, as Envoy; never applies to `safe_regex`.
    pub ignore_case: bool,
}

#[derive(Debug, Clone)]
pub enum StringPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Full match, compiled anchored.
    Regex(regex_lite::Regex),
}

impl StringMatcher {
    /// Whether a token's `sub` is allowed. A token without `sub` never is: stricter than
    /// jwt_authn, which matches the empty string in that case.
    pub fn allows(&self, sub: Option<&str>) -> bool {
        let Some(sub) = sub else { return false };
        let fold = |s: &str| if self.ignore_case { s.to_ascii_lowercase() } else { s.to_owned() };
        match &self.pattern {
            StringPattern::Regex(re) => re.is_match(sub),
            // Patterns are stored lower-cased when ignore_case is set.
            StringPattern::Exact(p) => fold(sub) == *p,
            StringPattern::Prefix(p) => fold(sub).starts_with(p.as_str()),
            StringPattern::Suffix(p) => fold(sub).ends_with(p.as_str()),
            StringPattern::Contains(p) => fold(sub).contains(p.as_str()),
        }
    }
}

/// One `rules` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matcher: PathMatcher,
    /// RouteMatch `case_sensitive` (default true); ignored by `safe_regex`, as in Envoy.
    pub case_sensitive: bool,
    /// `None`: requests matching this rule need no JWT (a rule without `requires`, or `{}`).
    pub requires: Option<Requirement>,
    /// Its requests are only reported, never refused ([`Requirement::only_reports`]).
    pub reports: bool,
}

/// RouteMatch path specifier. All kinds match the path without its query and fragment, as
/// Envoy's `PathMatcher` does.
#[derive(Debug, Clone)]
pub enum PathMatcher {
    Prefix(String),
    Path(String),
    /// Full match, compiled anchored.
    Regex(regex_lite::Regex),
    /// The prefix followed by nothing or by `/`.
    PathSeparatedPrefix(String),
}

impl Rule {
    /// Whether `path` (`:path`, query allowed) falls under this rule.
    pub fn matches(&self, path: &str) -> bool {
        let path = path_only(path);
        let starts = |prefix: &str| match path.get(..prefix.len()) {
            Some(head) if self.case_sensitive => head == prefix,
            Some(head) => head.eq_ignore_ascii_case(prefix),
            None => false,
        };
        match &self.matcher {
            PathMatcher::Prefix(prefix) => starts(prefix),
            PathMatcher::Path(exact) => path.len() == exact.len() && starts(exact),
            PathMatcher::Regex(re) => re.is_match(path),
            PathMatcher::PathSeparatedPrefix(prefix) => {
                starts(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
            }
        }
    }
}

/// `:path` without query and fragment.
pub(crate) fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// jwt_authn `JwtRequirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `provider_name`, or `provider_and_audiences` (whose non-empty audiences replace the
    /// provider's; an empty list keeps them, as jwt_authn).
    Provider {
        id: ProviderId,
        audiences: Option<Vec<String>>,
    },
    Any(Vec<Requirement>),
    All(Vec<Requirement>),
    AllowMissing,
    AllowMissingOrFailed,
}

impl Requirement {
    /// `allow_missing` and `allow_missing_or_failed`: inside `requires_any` they are flags that ask
    /// no provider, unless they are all there is (see `requirement`).
    pub fn is_flag(&self) -> bool {
        matches!(self, Requirement::AllowMissing | Requirement::AllowMissingOrFailed)
    }

    /// Whether a request under this requirement is only reported: every provider it may ask is in
    /// report mode. Decided from the requirement, not from the providers a request happened to
    /// ask: `requires_all` stops at the first denial, and a report provider's denial must not let
    /// through a request that an enforcing provider later in the list was never asked about.
    pub fn only_reports(&self, providers: &[Provider]) -> bool {
        let all_report = || !providers.is_empty() && providers.iter().all(|p| p.mode == Mode::Report);
        match self {
            Requirement::Provider { id, .. } => providers.get(*id).is_some_and(|p| p.mode == Mode::Report),
            Requirement::All(children) => children.iter().all(|c| c.only_reports(providers)),
            Requirement::Any(children) => {
                let mut regular = children.iter().filter(|c| !c.is_flag()).peekable();
                match regular.peek() {
                    Some(_) => regular.all(|c| c.only_reports(providers)),
                    None => all_report(),
                }
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => all_report(),
        }
    }
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
        top.finish(JWT_AUTHENTICATION_UNUSED, &mut warnings)?;
        Ok(Config {
            output_headers: forward::output_headers(&providers),
            providers,
            rules,
            max_token_bytes,
            startup_hold_timeout,
            crypto,
            bypass_cors_preflight,
            strip_failure_response,
            stat_prefix,
            warnings,
        })
    }

    /// The first rule matching `path` (`:path`, query allowed), as jwt_authn: no rule means no JWT
    /// is needed.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(path))
    }
}

// ---- The decision table, as data -------------------------------------------------------------

enum Decision {
    Warn(&'static str),
    Reject(&'static str),
}
use Decision::{Reject, Warn};

type Unused = [(&'static str, Decision)];

const NO_METADATA: &str = "this filter writes no dynamic metadata; a policy reading it sees none";
const JWT_AUTHENTICATION_UNUSED: &Unused =
    &[("filter_state_rules", Reject("another filter would choose the requirement; use rules"))];
const PROVIDER_UNUSED: &Unused = &[
    ("payload_in_metadata", Warn(NO_METADATA)),
    ("header_in_metadata", Warn(NO_METADATA)),
    ("failed_status_in_metadata", Warn(NO_METADATA)),
    ("normalize_payload_in_metadata", Warn(NO_METADATA)),
    ("clear_route_cache", Warn("the route cache is not cleared")),
    ("extract_only_without_validation", Reject("this filter always verifies tokens")),
];
const REMOTE_JWKS_UNUSED: &Unused =
    &[("retry_policy", Warn("failed fetches are retried after failed_refetch_duration"))];
const ASYNC_FETCH_UNUSED: &Unused =
    &[("fast_listener", Warn("requests wait for first keys up to startup_hold_timeout"))];
const DATA_SOURCE_UNUSED: &Unused = &[
    ("filename", Reject(LOCAL_JWKS_UNREACHABLE)),
    ("environment_variable", Reject(LOCAL_JWKS_UNREACHABLE)),
    ("watched_directory", Reject(LOCAL_JWKS_UNREACHABLE)),
];
const NARROWING: &str = "rules match on the path only; without this condition the rule would \
     apply to more requests than intended";
const ROUTE_MATCH_UNUSED: &Unused = &[
    ("headers", Reject(NARROWING)),
    ("query_parameters", Reject(NARROWING)),
    ("runtime_fraction", Reject(NARROWING)),
    ("grpc", Reject(NARROWING)),
    ("tls_context", Reject(NARROWING)),
    ("dynamic_metadata", Reject(NARROWING)),
    ("filter_state", Reject(NARROWING)),
    ("connect_matcher", Reject("CONNECT requests are not matched by this filter")),
    ("path_match_policy", Reject("path match extensions are not available in wasm")),
];
const GOOGLE_RE2_UNUSED: &Unused = &[("max_program_size", Warn("deprecated in Envoy"))];
const STRING_MATCHER_UNUSED: &Unused =
    &[("custom", Reject("string matcher extensions are not available in wasm"))];
const NONE_UNUSED: &Unused = &[];

// ---- Reading JSON objects with paths ----------------------------------------------------------

fn parse_document(json: &[u8]) -> Result<Map<String, Value>> {
    json::parse_object(json, CONFIG_MAX_DEPTH).map_err(|e| match e {
        StrictJsonError::DuplicateMember => {
            error("", "an object names the same member twice (duplicates are refused)")
        }
        StrictJsonError::TooDeep => error("", format!("nested deeper than {CONFIG_MAX_DEPTH} levels")),
        StrictJsonError::Invalid => match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
            Err(e) => error("", format!("not valid JSON: {e}")),
            Ok(_) => error("", "expected a JSON object"),
        },
    })
}

/// A JSON object being read: knows its path for errors and which members were read, so that
/// leftovers are classified by the decision table or refused as unknown.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    read: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: String) -> Result<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj { map, path, read: Vec::new() }),
            _ => Err(error(path, "expected an object")),
        }
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The member, unless absent or null (proto JSON: null means unset).
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn obj(&mut self, key: &'static str) -> Result<Option<Obj<'a>>> {
        let path = self.at(key);
        self.get(key).map(|v| Obj::new(v, path)).transpose()
    }

    fn str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        let path = self.at(key);
        self.get(key).map(|v| as_str(v, &path)).transpose()
    }

    /// A string where proto3's empty string means unset.
    fn non_empty_str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        Ok(self.str(key)?.filter(|s| !s.is_empty()))
    }

    fn bool(&mut self, key: &'static str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(error(self.at(key), "expected true or false")),
        }
    }

    fn u32(&mut self, key: &'static str) -> Result<Option<u32>> {
        let path = self.at(key);
        self.get(key)
            .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
            .map(|n| n.ok_or_else(|| error(path, "expected an integer from 0 to 4294967295")))
            .transpose()
    }

    fn duration(&mut self, key: &'static str) -> Result<Option<Duration>> {
        let path = self.at(key);
        self.get(key)
            .map(|v| v.as_str().and_then(parse_duration))
            .map(|d| d.ok_or_else(|| error(path, "expected a duration like \"5s\"")))
            .transpose()
    }

    /// A list (absent: empty) and the path of each item.
    fn list(&mut self, key: &'static str) -> Result<Vec<(String, &'a Value)>> {
        let path = self.at(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                Ok(items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect())
            }
            Some(_) => Err(error(path, "expected a list")),
        }
    }

    fn str_list(&mut self, key: &'static str) -> Result<Vec<String>> {
        self.list(key)?
            .into_iter()
            .map(|(path, v)| non_empty(as_str(v, &path)?, &path).map(str::to_owned))
            .collect()
    }

    /// [`Obj::finish`] for messages whose every field this filter reads.
    fn finish_all_known(self) -> Result<()> {
        self.finish(NONE_UNUSED, &mut Vec::new())
    }

    /// Refuses members not read, unless the decision table accepts them.
    fn finish(self, unused: &Unused, warnings: &mut Vec<String>) -> Result<()> {
        for (key, value) in self.map {
            if self.read.contains(&key.as_str()) {
                continue;
            }
            let path = self.at(key);
            match unused.iter().find(|(field, _)| field == key) {
                None => return Err(error(path, "unknown field (misspelt?)")),
                Some(_) if is_unset(value) => {}
                Some((_, Warn(why))) => warnings.push(format!("`{path}` is ignored: {why}")),
                Some((_, Reject(why))) => return Err(error(path, format!("not supported: {why}"))),
            }
        }
        Ok(())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        // A present message has a meaning even when empty (`grpc: {}` narrows a rule to gRPC).
        Value::Object(_) => false,
    }
}

fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str> {
    value.as_str().ok_or_else(|| error(path, "expected a string"))
}

fn non_empty<'a>(s: &'a str, path: &str) -> Result<&'a str> {
    if s.is_empty() { Err(error(path, "must not be empty")) } else { Ok(s) }
}

/// google.protobuf.Duration in proto JSON: decimal seconds with up to 9 fraction digits and a
/// final `s`. No sign, no exponent, no other unit.
fn parse_duration(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) {
        return None;
    }
    let seconds: u64 = whole.parse().ok().filter(|s| *s <= MAX_DURATION_SECONDS)?;
    let nanos = match fraction {
        None => 0,
        Some(f) if digits(f) && f.len() <= 9 => {
            let scale = 10u32.pow(9 - u32::try_from(f.len()).ok()?);
            f.parse::<u32>().ok()? * scale
        }
        Some(_) => return None,
    };
    Some(Duration::new(seconds, nanos))
}

fn in_range(d: Duration, path: &str, min: Duration, max: Duration, what: &str) -> Result<Duration> {
    if d < min || d >= max { Err(error(path, what)) } else { Ok(d) }
}

pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An HTTP header name (RFC 9110 token, so no pseudo-header), lower-cased.
fn header_name(s: &str, path: &str) -> Result<String> {
    if s.is_empty() || !s.bytes().all(is_tchar) {
        return Err(error(path, "expected an HTTP header name"));
    }
    Ok(s.to_ascii_lowercase())
}

// ---- Top level ------------------------------------------------------------------------------

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

fn parse_crypto_mode(top: &mut Obj) -> Result<CryptoMode> {
    let path = top.at("crypto");
    match top.str("crypto")? {
        None | Some("auto") => Ok(CryptoMode::Auto),
        Some("host") => Ok(CryptoMode::Host),
        Some("wasm") => Ok(CryptoMode::Wasm),
        Some(_) => Err(error(path, "expected \"auto\" (the default), \"host\" or \"wasm\"")),
    }
}

/// Members of a JSON map field sorted by name (the order does not depend on serde_json features).
fn sorted_members<'a>(top: &mut Obj<'a>, key: &'static str) -> Result<Vec<(&'a String, &'a Value)>> {
    let mut members: Vec<_> = match top.obj(key)? {
        Some(map) => map.map.iter().collect(),
        None => Vec::new(),
    };
    members.sort_by(|a, b| a.0.cmp(b.0));
    Ok(members)
}

fn parse_providers(
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

// ---- Providers --------------------------------------------------------------------------------

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
    let forward_payload_header = match o.non_empty_str("forward_payload_header")? {
        Some(h) => Some(header_name(h, &o.at("forward_payload_header"))?),
        None => None,
    };
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
    };
    o.finish(PROVIDER_UNUSED, warnings)?;
    Ok(provider)
}

fn parse_algorithms(o: &mut Obj) -> Result<AlgorithmSet> {
    if o.get("algorithms").is_none() {
        return Ok(AlgorithmSet::all());
    }
    let items = o.list("algorithms")?;
    if items.is_empty() {
        return Err(error(o.at("algorithms"), "list at least one algorithm, or omit the field to allow all"));
    }
    items
        .into_iter()
        .map(|(path, v)| {
            let name = as_str(v, &path)?;
            Algorithm::from_name(name).ok_or_else(|| error(path, refused_algorithm(name)))
        })
        .collect()
}

fn refused_algorithm(name: &str) -> String {
    if name.eq_ignore_ascii_case("none") {
        "`none` is never accepted: unsigned tokens would pass".to_owned()
    } else if name.to_ascii_uppercase().starts_with("HS") {
        format!("`{name}` is never accepted: HMAC keys would have to be public in the JWKS")
    } else {
        let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!("unknown algorithm `{name}` (known: {})", known.join(", "))
    }
}

fn parse_max_lifetime(o: &mut Obj) -> Result<Option<u64>> {
    match o.duration("max_lifetime")? {
        None => Ok(None),
        Some(d) if d.subsec_nanos() == 0 && d.as_secs() > 0 => Ok(Some(d.as_secs())),
        Some(_) => Err(error(o.at("max_lifetime"), "expected a whole positive number of seconds")),
    }
}

fn parse_key_source(o: &mut Obj, issuer: Option<&str>, warnings: &mut Vec<String>) -> Result<KeySource> {
    let path = o.path.clone();
    match (o.obj("remote_jwks")?, o.obj("local_jwks")?, o.obj("oidc_discovery")?) {
        (None, Some(local), None) => parse_local_jwks(local, warnings).map(KeySource::Local),
        (None, None, None) => Err(error(path, "set remote_jwks, local_jwks or oidc_discovery")),
        (_, Some(_), _) => Err(error(path, "set only one of remote_jwks and local_jwks (or oidc_discovery)")),
        (remote, None, discovery) => parse_remote_jwks(remote, discovery, issuer, &path, warnings)
            .map(|r| KeySource::Remote(Box::new(r))),
    }
}

fn parse_local_jwks(mut o: Obj, warnings: &mut Vec<String>) -> Result<KeySet> {
    let path = o.path.clone();
    let bytes_path = o.at("inline_bytes");
    let inline_string = o.str("inline_string")?;
    let inline_bytes = o.str("inline_bytes")?;
    // The decision table first: `filename` deserves its own explanation.
    o.finish(DATA_SOURCE_UNUSED, warnings)?;
    let jwks = match (inline_string, inline_bytes) {
        (Some(s), None) => s.to_owned(),
        (None, Some(b64)) => decode_inline_bytes(b64, &bytes_path)?,
        (Some(_), Some(_)) => {
            return Err(error(path, "set only one of inline_string and inline_bytes"));
        }
        (None, None) => return Err(error(path, "set inline_string with the JWKS document")),
    };
    if jwks.trim().is_empty() {
        return Err(error(path, "the inline JWKS is empty"));
    }
    local_key_set(&jwks, &path, warnings)
}

/// An inline JWKS that is not a JWKS is a config error. One without a usable key is accepted with
/// a warning (as jwt_authn, and the `{"keys": []}` placeholder of its docs): every token of that
/// provider is then refused, which is the safe reading of "no keys".
fn local_key_set(jwks: &str, path: &str, warnings: &mut Vec<String>) -> Result<KeySet> {
    match KeySet::parse(jwks.as_bytes()) {
        Ok(parsed) => {
            for skipped in &parsed.skipped {
                warnings.push(format!("`{path}`: key skipped: {skipped}"));
            }
            Ok(parsed.keys)
        }
        Err(e @ JwksError::NoUsableKey(_)) => {
            warnings.push(format!("`{path}`: {e}; every token of this provider will be refused"));
            Ok(KeySet::default())
        }
        Err(e) => Err(error(path, e.to_string())),
    }
}

/// proto JSON `bytes`: base64, standard or URL-safe alphabet, padded or not.
fn decode_inline_bytes(b64: &str, path: &str) -> Result<String> {
    use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
    let bytes = STANDARD_PAD_INDIFFERENT
        .decode(b64)
        .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(b64))
        .map_err(|_| error(path, "expected base64"))?;
    String::from_utf8(bytes).map_err(|_| error(path, "the decoded JWKS is not UTF-8"))
}

/// Where a remote key set is fetched from: `remote_jwks.http_uri`, or the discovery document.
struct Source {
    uri: String,
    cluster: String,
    timeout: Duration,
    discovery: Option<Discovery>,
}

fn parse_remote_jwks(
    remote: Option<Obj>,
    discovery: Option<Obj>,
    issuer: Option<&str>,
    provider_path: &str,
    warnings: &mut Vec<String>,
) -> Result<RemoteJwks> {
    let mut remote = remote;
    let http_uri = match remote.as_mut() {
        Some(r) => r.obj("http_uri")?,
        None => None,
    };
    let source = match (http_uri, discovery) {
        (Some(http_uri), None) => parse_http_uri(http_uri)?,
        (None, Some(discovery)) => parse_discovery(discovery, issuer, provider_path)?,
        (None, None) => return Err(error(format!("{provider_path}.remote_jwks.http_uri"), "required")),
        (Some(_), Some(_)) => {
            return Err(error(
                format!("{provider_path}.oidc_discovery"),
                "oidc_discovery replaces remote_jwks.http_uri: set only one",
            ));
        }
    };
    let (authority, path) = split_uri(&source.uri).ok_or_else(|| error(provider_path, "unreachable URI"))?;
    let mut jwks = RemoteJwks {
        uri: source.uri,
        cluster: source.cluster,
        authority,
        path,
        timeout: source.timeout,
        cache_duration: DEFAULT_CACHE_DURATION,
        failed_refetch_duration: DEFAULT_FAILED_REFETCH_DURATION,
        min_cache_duration: DEFAULT_MIN_CACHE_DURATION,
        max_stale: DEFAULT_MAX_STALE,
        unknown_kid_refetch_interval: DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL,
        max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
        discovery: source.discovery,
    };
    if let Some(remote) = remote {
        parse_remote_tuning(remote, &mut jwks, warnings)?;
    }
    Ok(jwks)
}

fn parse_http_uri(mut http_uri: Obj) -> Result<Source> {
    let uri_path = http_uri.at("uri");
    let uri = non_empty(http_uri.str("uri")?.unwrap_or(""), &uri_path)?;
    if split_uri(uri).is_none() {
        return Err(error(
            &uri_path,
            "expected an http:// or https:// URL with a host and no user info or fragment",
        ));
    }
    let cluster_path = http_uri.at("cluster");
    let cluster = non_empty(http_uri.str("cluster")?.unwrap_or(""), &cluster_path)?.to_owned();
    let timeout = parse_timeout(&mut http_uri)?;
    http_uri.finish_all_known()?;
    Ok(Source { uri: uri.to_owned(), cluster, timeout, discovery: None })
}

/// `oidc_discovery: {cluster, timeout, allowed_jwks_hosts}`: the issuer must be an http(s) URL.
fn parse_discovery(mut o: Obj, issuer: Option<&str>, provider_path: &str) -> Result<Source> {
    let issuer_path = format!("{provider_path}.issuer");
    let issuer = issuer.ok_or_else(|| error(&issuer_path, "oidc_discovery needs the provider's issuer"))?;
    let uri = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    if split_uri(&uri).is_none() || uri.contains('?') {
        return Err(error(
            issuer_path,
            "oidc_discovery needs an http:// or https:// issuer URL without query",
        ));
    }
    let cluster_path = o.at("cluster");
    let cluster = non_empty(o.str("cluster")?.unwrap_or(""), &cluster_path)?.to_owned();
    let timeout = parse_timeout(&mut o)?;
    let hosts_path = o.at("allowed_jwks_hosts");
    let allowed_jwks_hosts = o
        .str_list("allowed_jwks_hosts")?
        .into_iter()
        .map(|h| match valid_authority(&h) {
            true => Ok(h.to_ascii_lowercase()),
            false => Err(error(&hosts_path, format!("`{h}` is not a host[:port]"))),
        })
        .collect::<Result<Vec<_>>>()?;
    o.finish_all_known()?;
    Ok(Source {
        uri,
        cluster,
        timeout,
        discovery: Some(Discovery { issuer: issuer.to_owned(), allowed_jwks_hosts }),
    })
}

fn parse_timeout(o: &mut Obj) -> Result<Duration> {
    match o.duration("timeout")? {
        None => Ok(DEFAULT_FETCH_TIMEOUT),
        Some(d) => in_range(
            d,
            &o.at("timeout"),
            Duration::from_millis(1),
            Duration::from_secs(1 << 32),
            "expected a positive timeout",
        ),
    }
}

/// The rest of `remote_jwks`: refresh, retry and the key-lifecycle extensions.
fn parse_remote_tuning(mut o: Obj, jwks: &mut RemoteJwks, warnings: &mut Vec<String>) -> Result<()> {
    let positive = |o: &mut Obj, key: &'static str, max: Duration, what: &str| -> Result<Option<Duration>> {
        let path = o.at(key);
        o.duration(key)?.map(|d| in_range(d, &path, Duration::from_millis(1), max, what)).transpose()
    };
    // jwt_authn's validation range.
    let cache = positive(
        &mut o,
        "cache_duration",
        Duration::from_secs(9_000_000_000),
        "expected at least 1ms and less than 9000000000s",
    )?;
    jwks.cache_duration = cache.unwrap_or(DEFAULT_CACHE_DURATION);
    if let Some(mut fetch) = o.obj("async_fetch")? {
        // Below 1ms the identity provider would be hammered while it is down.
        let retry = positive(&mut fetch, "failed_refetch_duration", Duration::MAX, "expected at least 1ms")?;
        jwks.failed_refetch_duration = retry.unwrap_or(DEFAULT_FAILED_REFETCH_DURATION);
        fetch.finish(ASYNC_FETCH_UNUSED, warnings)?;
    }
    let any = Duration::MAX;
    if let Some(d) = positive(&mut o, "min_cache_duration", any, "expected at least 1ms")? {
        jwks.min_cache_duration = d;
    }
    if let Some(d) = o.duration("max_stale")? {
        jwks.max_stale = d;
    }
    if let Some(d) = positive(&mut o, "unknown_kid_refetch_interval", any, "expected at least 1ms")? {
        jwks.unknown_kid_refetch_interval = d;
    }
    let max_path = o.at("max_jwks_bytes");
    if let Some(n) = o.u32("max_jwks_bytes")? {
        let n = n as usize;
        if !(1024..=MAX_CONFIGURABLE_JWKS_BYTES).contains(&n) {
            return Err(error(max_path, format!("expected 1024 to {MAX_CONFIGURABLE_JWKS_BYTES}")));
        }
        jwks.max_jwks_bytes = n;
    }
    o.finish(REMOTE_JWKS_UNUSED, warnings)
}

/// `http(s)://host[:port][/path][?query]` → (`host[:port]`, `/path?query`).
pub fn split_uri(uri: &str) -> Option<(String, String)> {
    let scheme_end = uri.find("://")?;
    let scheme = uri.get(..scheme_end)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = uri.get(scheme_end + 3..)?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if !valid_authority(authority) || !visible(path) || path.contains('#') {
        return None;
    }
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    Some((authority.to_owned(), path))
}

/// `host[:port]` with a DNS name, IPv4 or bracketed IPv6 host; user info is refused.
pub fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

fn parse_locations(o: &mut Obj, max_token_bytes: usize) -> Result<TokenLocations> {
    let mut headers = Vec::new();
    for (path, value) in o.list("from_headers")? {
        let mut h = Obj::new(value, path.clone())?;
        let name = header_name(h.str("name")?.unwrap_or(""), &h.at("name"))?;
        let value_prefix = h.str("value_prefix")?.unwrap_or("").to_owned();
        if !value_prefix.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(error(h.at("value_prefix"), "expected visible ASCII characters and spaces"));
        }
        h.finish_all_known()?;
        let location = HeaderLocation { name, value_prefix };
        if headers.iter().any(|l: &HeaderLocation| l.same_location(&location)) {
            return Err(error(path, "the same header location is listed twice"));
        }
        headers.push(location);
    }
    let params = unique(o.str_list("from_params")?, &o.at("from_params"))?;
    let cookies = unique(o.str_list("from_cookies")?, &o.at("from_cookies"))?;
    if let Some(bad) = cookies.iter().position(|c| !c.bytes().all(is_tchar)) {
        return Err(error(format!("{}[{bad}]", o.at("from_cookies")), "expected a cookie name"));
    }
    if headers.is_empty() && params.is_empty() && cookies.is_empty() {
        // jwt_authn's defaults (RFC 6750 §2.1 and §2.3).
        headers.push(HeaderLocation { name: "authorization".into(), value_prefix: "Bearer ".into() });
        return Ok(TokenLocations { headers, params: vec!["access_token".into()], cookies, max_token_bytes });
    }
    Ok(TokenLocations { headers, params, cookies, max_token_bytes })
}

fn unique(items: Vec<String>, path: &str) -> Result<Vec<String>> {
    match items.iter().enumerate().find(|(i, item)| items.iter().take(*i).any(|x| x == *item)) {
        Some((i, _)) => Err(error(format!("{path}[{i}]"), "listed twice")),
        None => Ok(items),
    }
}

fn parse_claim_to_headers(o: &mut Obj) -> Result<Vec<ClaimToHeader>> {
    o.list("claim_to_headers")?
        .into_iter()
        .map(|(path, value)| {
            let mut c = Obj::new(value, path)?;
            let header_name = header_name(c.str("header_name")?.unwrap_or(""), &c.at("header_name"))?;
            let claim_path = c.at("claim_name");
            let claim_name = non_empty(c.str("claim_name")?.unwrap_or(""), &claim_path)?.to_owned();
            let format = match c.str("format")? {
                None | Some("text") => ClaimFormat::Text,
                Some("json") => ClaimFormat::Json,
                Some(other) => {
                    return Err(error(
                        c.at("format"),
                        format!("expected \"text\" or \"json\", not {other:?}"),
                    ));
                }
            };
            c.finish_all_known()?;
            Ok(ClaimToHeader { header_name, claim_name, format })
        })
        .collect()
}

fn parse_mode(o: &mut Obj) -> Result<Option<Mode>> {
    match o.str("mode")? {
        None => Ok(None),
        Some("enforce") => Ok(Some(Mode::Enforce)),
        Some("report") => Ok(Some(Mode::Report)),
        Some(other) => Err(error(o.at("mode"), format!("expected \"enforce\" or \"report\", not {other:?}"))),
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
    let resolved = |size: Option<u32>, max: Option<u32>| JwtCacheConfig {
        jwt_cache_size: size.filter(|n| *n > 0).map_or(DEFAULT_JWT_CACHE_SIZE, |n| n as usize),
        jwt_max_token_size: max.filter(|n| *n > 0).map_or(max_token_bytes, |n| n as usize),
    };
    let Some(mut c) = o.obj("jwt_cache_config")? else { return Ok(resolved(None, None)) };
    let mut config = resolved(c.u32("jwt_cache_size")?, c.u32("jwt_max_token_size")?);
    if c.bool("disabled")? {
        config.jwt_cache_size = 0;
    }
    c.finish_all_known()?;
    Ok(config)
}

fn parse_string_matcher(mut o: Obj, warnings: &mut Vec<String>) -> Result<StringMatcher> {
    let ignore_case = o.bool("ignore_case")?;
    let fold = |s: &str| if ignore_case { s.to_ascii_lowercase() } else { s.to_owned() };
    let exact = o.str("exact")?.map(|s| StringPattern::Exact(fold(s)));
    let affix = |o: &mut Obj, key: &'static str, make: fn(String) -> StringPattern| {
        let path = o.at(key);
        o.str(key)?.map(|s| Ok(make(fold(non_empty(s, &path)?)))).transpose()
    };
    let prefix = affix(&mut o, "prefix", StringPattern::Prefix)?;
    let suffix = affix(&mut o, "suffix", StringPattern::Suffix)?;
    let contains = affix(&mut o, "contains", StringPattern::Contains)?;
    let regex = match o.obj("safe_regex")? {
        Some(r) => Some(StringPattern::Regex(parse_regex(r, warnings)?)),
        None => None,
    };
    let path = o.path.clone();
    o.finish(STRING_MATCHER_UNUSED, warnings)?;
    let mut set = [exact, prefix, suffix, contains, regex].into_iter().flatten();
    match (set.next(), set.next()) {
        (Some(pattern), None) => Ok(StringMatcher { pattern, ignore_case }),
        _ => Err(error(path, "set exactly one of exact, prefix, suffix, contains, safe_regex")),
    }
}

/// `type.matcher.v3.RegexMatcher`, compiled for a full match (RE2 `FullMatch`, as Envoy).
fn parse_regex(mut o: Obj, warnings: &mut Vec<String>) -> Result<regex_lite::Regex> {
    if let Some(re2) = o.obj("google_re2")? {
        re2.finish(GOOGLE_RE2_UNUSED, warnings)?;
    }
    let path = o.at("regex");
    let pattern = non_empty(o.str("regex")?.unwrap_or(""), &path)?;
    o.finish_all_known()?;
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| error(path, format!("invalid regex: {e}")))
}

// ---- Rules and requirements -------------------------------------------------------------------

/// `requirement_map`, sorted by name; `None` values are empty requirements (no JWT needed).
type RequirementMap = Vec<(String, Option<Requirement>)>;

fn parse_requirement_map(top: &mut Obj, names: &[&str]) -> Result<RequirementMap> {
    sorted_members(top, "requirement_map")?
        .into_iter()
        .map(|(name, value)| {
            non_empty(name, "requirement_map")?;
            let requirement = parse_requirement(value, format!("requirement_map.{name}"), names)?;
            Ok((name.clone(), requirement))
        })
        .collect()
}

/// `names`: the providers' names, what requirements refer to them by.
fn parse_rules(
    top: &mut Obj,
    providers: &[Provider],
    names: &[&str],
    map: &RequirementMap,
    warnings: &mut Vec<String>,
) -> Result<Vec<Rule>> {
    top.list("rules")?
        .into_iter()
        .map(|(path, value)| parse_rule(Obj::new(value, path)?, providers, names, map, warnings))
        .collect()
}

fn parse_rule(
    mut o: Obj,
    providers: &[Provider],
    names: &[&str],
    map: &RequirementMap,
    warnings: &mut Vec<String>,
) -> Result<Rule> {
    let route_match = o.obj("match")?.ok_or_else(|| error(o.at("match"), "required"))?;
    let (matcher, case_sensitive) = parse_route_match(route_match, warnings)?;
    let requires_path = o.at("requires");
    let requires = o.get("requires").map(|v| parse_requirement(v, requires_path, names)).transpose()?;
    let name_path = o.at("requirement_name");
    let requires = match (requires, o.str("requirement_name")?) {
        (Some(requirement), None) => requirement,
        (None, Some(name)) => lookup_requirement(name, &name_path, map)?,
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(error(&o.path, "set only one of requires and requirement_name"));
        }
    };
    o.finish_all_known()?;
    let reports = requires.as_ref().is_some_and(|r| r.only_reports(providers));
    Ok(Rule { matcher, case_sensitive, requires, reports })
}

fn lookup_requirement(name: &str, path: &str, map: &RequirementMap) -> Result<Option<Requirement>> {
    match map.iter().find(|(n, _)| n == name) {
        Some((_, requirement)) => Ok(requirement.clone()),
        None => {
            let known: Vec<&str> = map.iter().map(|(n, _)| n.as_str()).collect();
            Err(error(
                path,
                format!("unknown requirement_name `{name}` (requirement_map has: {})", known.join(", ")),
            ))
        }
    }
}

fn parse_route_match(mut o: Obj, warnings: &mut Vec<String>) -> Result<(PathMatcher, bool)> {
    let path = o.path.clone();
    let case_sensitive = match o.get("case_sensitive") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(error(o.at("case_sensitive"), "expected true or false")),
    };
    let mut found = Vec::new();
    if let Some(prefix) = o.str("prefix")? {
        found.push(PathMatcher::Prefix(prefix.to_owned()));
    }
    if let Some(exact) = o.str("path")? {
        found.push(PathMatcher::Path(exact.to_owned()));
    }
    if let Some(regex) = o.obj("safe_regex")? {
        found.push(PathMatcher::Regex(parse_regex(regex, warnings)?));
    }
    if let Some(prefix) = o.str("path_separated_prefix")? {
        // Envoy's validation: `^[^?#]+[^?#/]$`.
        if prefix.is_empty() || prefix.contains(['?', '#']) || prefix.ends_with('/') {
            return Err(error(o.at("path_separated_prefix"), "expected a path without ?, # or a final /"));
        }
        found.push(PathMatcher::PathSeparatedPrefix(prefix.to_owned()));
    }
    o.finish(ROUTE_MATCH_UNUSED, warnings)?;
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(matcher), None) => Ok((matcher, case_sensitive)),
        _ => Err(error(path, "set exactly one of prefix, path, safe_regex, path_separated_prefix")),
    }
}

/// A `JwtRequirement`; `None` for the empty requirement `{}`, which jwt_authn reads as "no JWT
/// needed". The caller decides where that is acceptable.
fn parse_requirement(value: &Value, path: String, names: &[&str]) -> Result<Option<Requirement>> {
    let mut o = Obj::new(value, path)?;
    let mut found = Vec::new();
    if let Some(name) = o.str("provider_name")? {
        let id = provider_id(name, &o.at("provider_name"), names)?;
        found.push(Requirement::Provider { id, audiences: None });
    }
    if let Some(p) = o.obj("provider_and_audiences")? {
        found.push(parse_provider_and_audiences(p, names)?);
    }
    if let Some(list) = o.obj("requires_any")? {
        found.push(Requirement::Any(parse_requirement_list(list, names)?));
    }
    if let Some(list) = o.obj("requires_all")? {
        found.push(Requirement::All(parse_requirement_list(list, names)?));
    }
    if let Some(empty) = o.obj("allow_missing")? {
        empty.finish_all_known()?;
        found.push(Requirement::AllowMissing);
    }
    if let Some(empty) = o.obj("allow_missing_or_failed")? {
        empty.finish_all_known()?;
        found.push(Requirement::AllowMissingOrFailed);
    }
    let path = o.path.clone();
    o.finish_all_known()?;
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (requirement, None) => Ok(requirement),
        _ => Err(error(
            path,
            "set only one of provider_name, provider_and_audiences, requires_any, requires_all, \
             allow_missing, allow_missing_or_failed",
        )),
    }
}

fn provider_id(name: &str, path: &str, names: &[&str]) -> Result<ProviderId> {
    names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| error(path, format!("unknown provider `{name}` (configured: {})", names.join(", "))))
}

fn parse_provider_and_audiences(mut o: Obj, names: &[&str]) -> Result<Requirement> {
    let name_path = o.at("provider_name");
    let id = provider_id(o.str("provider_name")?.unwrap_or(""), &name_path, names)?;
    let audiences = o.str_list("audiences")?;
    o.finish_all_known()?;
    // jwt_authn: an empty list keeps the provider's audiences.
    Ok(Requirement::Provider { id, audiences: (!audiences.is_empty()).then_some(audiences) })
}

fn parse_requirement_list(mut o: Obj, names: &[&str]) -> Result<Vec<Requirement>> {
    let path = o.at("requirements");
    let items = o.list("requirements")?;
    o.finish_all_known()?;
    if items.len() < 2 {
        return Err(error(path, "list at least two requirements"));
    }
    items
        .into_iter()
        .map(|(path, value)| {
            parse_requirement(value, path.clone(), names)?.ok_or_else(|| {
                error(
                    path,
                    "an empty requirement here would satisfy the list for every request; \
                             use allow_missing_or_failed if that is intended",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = r#"{"providers":{"corp":{"issuer":"https://issuer.example","audiences":["api.example"],"algorithms":["RS256","ES256"],
      "remote_jwks":{"http_uri":{"uri":"http://idp.internal/jwks.json","cluster":"idp","timeout":"5s"},"cache_duration":"600s","async_fetch":{"failed_refetch_duration":"1s"}},
      "from_headers":[{"name":"authorization","value_prefix":"Bearer "}],"from_params":["access_token"],"from_cookies":["session"],
      "forward":false,"forward_payload_header":"x-jwt-payload","claim_to_headers":[{"header_name":"x-jwt-sub","claim_name":"sub"}],
      "clock_skew_seconds":60,"require_expiration":false,"max_lifetime":"86400s"},
      "local":{"issuer":"https://local.example","local_jwks":{"inline_string":"{\"keys\": []}"}}},
     "rules":[{"match":{"prefix":"/healthz"}},{"match":{"path":"/public"},"requires":{"allow_missing":{}}},
      {"match":{"safe_regex":{"regex":"/api/v[0-9]+/.*"}},"requires":{"requires_any":{"requirements":[{"provider_name":"corp"},{"provider_and_audiences":{"provider_name":"local","audiences":["a"]}}]}}},
      {"match":{"prefix":"/"},"requires":{"provider_name":"corp"}}],
     "max_token_bytes":8192,"startup_hold_timeout":"10s"}"#;

    fn parse(doc: &Value) -> Result<Config> {
        Config::parse(doc.to_string().as_bytes())
    }

    /// Two providers (`p` remote, `q` local) and one rule requiring `p`.
    fn base() -> Value {
        json!({
            "providers": {
                "p": {"issuer": "https://p.example",
                      "remote_jwks": {"http_uri": {"uri": "https://idp.example/jwks", "cluster": "idp", "timeout": "1s"}}},
                "q": {"local_jwks": {"inline_string": "{\"keys\":[]}"}}
            },
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
        })
    }

    /// `base()` with `key` set to `value` in the object at JSON pointer `parent`.
    fn with(parent: &str, key: &str, value: Value) -> Value {
        let mut doc = base();
        doc.pointer_mut(parent).unwrap().as_object_mut().unwrap().insert(key.into(), value);
        doc
    }

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
        assert_eq!(corp.jwt_cache, JwtCacheConfig { jwt_cache_size: 1000, jwt_max_token_size: 8192 });

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
    fn errors_name_the_field() {
        let p = "/providers/p";
        let jwks = "/providers/p/remote_jwks";
        let uri = "/providers/p/remote_jwks/http_uri";
        let rule = "/rules/0";
        let any2 = |a: Value, b: Value| json!({"requires_any": {"requirements": [a, b]}});
        #[rustfmt::skip]
        let cases: Vec<(Value, &str, &str)> = vec![
            (with(rule, "requires", json!({"provider_name": "nope"})), "rules[0].requires.provider_name", "unknown provider `nope` (configured: p, q)"),
            (with(rule, "requires", any2(json!({"provider_name": "p"}), json!({"provider_name": "x"}))), "rules[0].requires.requires_any.requirements[1].provider_name", "unknown provider"),
            (with(rule, "requires", json!({"provider_and_audiences": {"audiences": ["a"]}})), "rules[0].requires.provider_and_audiences.provider_name", "unknown provider ``"),
            (with(p, "algorithms", json!(["RS256", "XS1"])), "providers.p.algorithms[1]", "unknown algorithm `XS1`"),
            (with(p, "algorithms", json!(["none"])), "providers.p.algorithms[0]", "`none` is never accepted"),
            (with(p, "algorithms", json!(["HS256"])), "providers.p.algorithms[0]", "HMAC"),
            (with(p, "algorithms", json!(["rs256"])), "providers.p.algorithms[0]", "unknown algorithm"),
            (with(p, "algorithms", json!([])), "providers.p.algorithms", "at least one"),
            (with(p, "algorithms", json!("RS256")), "providers.p.algorithms", "expected a list"),
            (with(uri, "timeout", json!("5")), "providers.p.remote_jwks.http_uri.timeout", "expected a duration like \"5s\""),
            (with(uri, "timeout", json!({"seconds": 5})), "providers.p.remote_jwks.http_uri.timeout", "like \"5s\""),
            (with(uri, "timeout", json!("0s")), "providers.p.remote_jwks.http_uri.timeout", "positive"),
            (with(jwks, "cache_duration", json!("0s")), "providers.p.remote_jwks.cache_duration", "at least 1ms"),
            (with(jwks, "cache_duration", json!("9000000000s")), "providers.p.remote_jwks.cache_duration", "less than"),
            (with(jwks, "async_fetch", json!({"failed_refetch_duration": "1m"})), "providers.p.remote_jwks.async_fetch.failed_refetch_duration", "duration"),
            (with(p, "max_lifetime", json!("1.5s")), "providers.p.max_lifetime", "whole positive"),
            (with(p, "max_lifetime", json!("0s")), "providers.p.max_lifetime", "whole positive"),
            (with("", "startup_hold_timeout", json!("10")), "startup_hold_timeout", "duration"),
            (with("", "max_token_bytes", json!(0)), "max_token_bytes", "from 1 to"),
            (with("", "max_token_bytes", json!("8192")), "max_token_bytes", "from 1 to"),
            (with("", "crypto", json!("Host")), "crypto", "expected \"auto\" (the default), \"host\" or \"wasm\""),
            (with("", "crypto", json!("")), "crypto", "\"host\" or \"wasm\""),
            (with("", "crypto", json!(true)), "crypto", "expected a string"),
            (with(p, "clock_skew_seconds", json!(-1)), "providers.p.clock_skew_seconds", "integer"),
            (with(p, "clock_skew_seconds", json!(4294967296u64)), "providers.p.clock_skew_seconds", "integer"),
            (with(p, "remote_jwks", Value::Null), "providers.p", "set remote_jwks, local_jwks or oidc_discovery"),
            (with(p, "local_jwks", json!({"inline_string": "{}"})), "providers.p", "only one of remote_jwks and local_jwks"),
            (with("/providers/q/local_jwks", "filename", json!("/etc/jwks.json")), "providers.q.local_jwks.filename", "wasm sandbox cannot read"),
            (with("/providers/q", "local_jwks", json!({"environment_variable": "JWKS"})), "providers.q.local_jwks.environment_variable", "vm_config"),
            (with("/providers/q", "local_jwks", json!({})), "providers.q.local_jwks", "set inline_string"),
            (with("/providers/q", "local_jwks", json!({"inline_string": " "})), "providers.q.local_jwks", "empty"),
            (with("/providers/q", "local_jwks", json!({"inline_bytes": "%%%"})), "providers.q.local_jwks.inline_bytes", "base64"),
            (with("/providers/q", "local_jwks", json!({"inline_bytes": "e30=", "inline_string": "{}"})), "providers.q.local_jwks", "only one"),
            (with(uri, "cluster", Value::Null), "providers.p.remote_jwks.http_uri.cluster", "must not be empty"),
            (with(uri, "uri", json!("ftp://idp.example/jwks")), "providers.p.remote_jwks.http_uri.uri", "http:// or https://"),
            (with(uri, "uri", json!("https://user:pw@idp.example/jwks")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(uri, "uri", json!("https:///jwks")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(uri, "uri", json!("https://idp.example/jwks#x")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(uri, "uri", json!("https://idp.example:99999/")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(uri, "uri", json!("idp.example/jwks")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(jwks, "http_uri", Value::Null), "providers.p.remote_jwks.http_uri", "required"),
            (with(rule, "match", json!({"safe_regex": {"google_re2": {}, "regex": "(unclosed"}})), "rules[0].match.safe_regex.regex", "invalid regex"),
            (with(rule, "match", Value::Null), "rules[0].match", "required"),
            (with(rule, "match", json!({"case_sensitive": false})), "rules[0].match", "exactly one of prefix"),
            (with(rule, "match", json!({"prefix": "/", "path": "/a"})), "rules[0].match", "exactly one"),
            (with(rule, "match", json!({"path_separated_prefix": "/a/"})), "rules[0].match.path_separated_prefix", "final /"),
            (with("", "provders", json!({})), "provders", "unknown field (misspelt?)"),
            (with(p, "isuer", json!("x")), "providers.p.isuer", "unknown field"),
            (with(rule, "require", json!({})), "rules[0].require", "unknown field"),
            (with(rule, "requires", json!({"provider": "p"})), "rules[0].requires.provider", "unknown field"),
            (with(jwks, "cache_duraton", json!("1s")), "providers.p.remote_jwks.cache_duraton", "unknown field"),
            (with(p, "from_headers", json!([{"name": "x", "prefix": "B"}])), "providers.p.from_headers[0].prefix", "unknown field"),
            (with(p, "from_headers", json!([{"value_prefix": "B"}])), "providers.p.from_headers[0].name", "header name"),
            (with(p, "from_headers", json!([{"name": "a"}, {"name": "A"}])), "providers.p.from_headers[1]", "twice"),
            (with(p, "from_params", json!(["t", "t"])), "providers.p.from_params[1]", "twice"),
            (with(p, "from_cookies", json!(["a b"])), "providers.p.from_cookies[0]", "cookie name"),
            (with(p, "forward_payload_header", json!("x jwt")), "providers.p.forward_payload_header", "header name"),
            (with(p, "claim_to_headers", json!([{"header_name": "x-sub"}])), "providers.p.claim_to_headers[0].claim_name", "empty"),
            (with(p, "audiences", json!([""])), "providers.p.audiences[0]", "empty"),
            (with(p, "issuer", json!(1)), "providers.p.issuer", "expected a string"),
            (with(p, "forward", json!("yes")), "providers.p.forward", "true or false"),
            (with("/providers", "p", json!([])), "providers.p", "expected an object"),
            (with("", "rules", json!({})), "rules", "expected a list"),
            (with("", "filter_state_rules", json!({"name": "x"})), "filter_state_rules", "not supported"),
            (with(rule, "match", json!({"prefix": "/", "headers": [{"name": "x"}]})), "rules[0].match.headers", "not supported"),
            (with(rule, "match", json!({"prefix": "/", "query_parameters": [{"name": "x"}]})), "rules[0].match.query_parameters", "not supported"),
            (with(rule, "match", json!({"prefix": "/", "grpc": {}})), "rules[0].match.grpc", "not supported"),
            (with(rule, "match", json!({"connect_matcher": {}})), "rules[0].match.connect_matcher", "CONNECT"),
            (with(p, "extract_only_without_validation", json!(true)), "providers.p.extract_only_without_validation", "always verifies"),
            (with(p, "subjects", json!({"custom": {}})), "providers.p.subjects.custom", "not supported"),
            (with(p, "subjects", json!({"prefix": "a", "suffix": "b"})), "providers.p.subjects", "exactly one"),
            (with(p, "subjects", json!({"prefix": ""})), "providers.p.subjects.prefix", "empty"),
            (with(rule, "requires", json!({"requires_any": {"requirements": [{"provider_name": "p"}]}})), "rules[0].requires.requires_any.requirements", "at least two"),
            (with(rule, "requires", json!({"requires_all": {"requirements": [{"provider_name": "p"}, {}]}})), "rules[0].requires.requires_all.requirements[1]", "empty requirement"),
            (with(rule, "requires", json!({"provider_name": "p", "allow_missing": {}})), "rules[0].requires", "only one of provider_name"),
            (with(rule, "requires", json!({"allow_missing": {"x": 1}})), "rules[0].requires.allow_missing.x", "unknown field"),
            (with(rule, "requirement_name", json!("m")), "rules[0]", "only one of requires and requirement_name"),
            (with("", "requirement_map", json!({"m": {"provider_name": "zz"}})), "requirement_map.m.provider_name", "unknown provider"),
        ];
        for (doc, field, message) in cases {
            let e = parse(&doc).expect_err(field);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(message), "{field}: {e}");
        }
        let mut doc = base();
        doc["rules"][0] = json!({"match": {"prefix": "/"}, "requirement_name": "nope"});
        doc["requirement_map"] = json!({"m": {"provider_name": "p"}});
        let e = parse(&doc).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("rules[0].requirement_name", "unknown requirement_name `nope` (requirement_map has: m)")
        );
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
    fn durations() {
        for (text, expected) in [
            ("600s", Duration::from_secs(600)),
            ("0s", Duration::ZERO),
            ("1.5s", Duration::from_millis(1500)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("1.000000000s", Duration::from_secs(1)),
            ("0.05s", Duration::from_millis(50)),
            ("315576000000s", Duration::from_secs(MAX_DURATION_SECONDS)),
        ] {
            assert_eq!(parse_duration(text), Some(expected), "{text}");
        }
        for text in [
            "10",
            "10m",
            "-1s",
            "s",
            "",
            "+1s",
            ".5s",
            "1.s",
            "1.0000000001s",
            " 1s",
            "1s ",
            "1e3s",
            "1,5s",
            "0x10s",
            "1.5.5s",
            "315576000001s",
            "99999999999999999999s",
            "1S",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn warnings_for_ignored_fields() {
        let mut doc = base();
        let p = &mut doc["providers"]["p"];
        p["payload_in_metadata"] = json!("payload");
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
                "providers.p.payload_in_metadata",
                "providers.q.local_jwks",
                "rules[0].match.safe_regex.google_re2.max_program_size",
            ]
        );
        assert_eq!(
            config.providers[0].jwt_cache,
            JwtCacheConfig { jwt_cache_size: 200, jwt_max_token_size: 4096 }
        );
        let mut doc = base();
        doc["providers"]["p"]["jwt_cache_config"] = json!({"disabled": true, "jwt_cache_size": 5});
        assert_eq!(parse(&doc).unwrap().providers[0].jwt_cache.jwt_cache_size, 0);
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

    #[test]
    fn key_lifecycle_fields_and_discovery() {
        let mut doc = base();
        let remote = &mut doc["providers"]["p"]["remote_jwks"];
        remote["min_cache_duration"] = json!("5s");
        remote["max_stale"] = json!("3600s");
        remote["unknown_kid_refetch_interval"] = json!("10s");
        remote["max_jwks_bytes"] = json!(65536);
        let config = parse(&doc).unwrap();
        let KeySource::Remote(jwks) = &config.providers[0].keys else { panic!("remote expected") };
        assert_eq!(
            (jwks.min_cache_duration, jwks.max_stale, jwks.unknown_kid_refetch_interval, jwks.max_jwks_bytes),
            (Duration::from_secs(5), Duration::from_secs(3600), Duration::from_secs(10), 65536)
        );

        let discovery = |issuer: &str, d: Value, remote: Option<Value>| {
            let mut p = json!({"issuer": issuer, "oidc_discovery": d});
            if let Some(r) = remote {
                p["remote_jwks"] = r;
            }
            json!({"providers": {"p": p}})
        };
        let doc = discovery(
            "https://idp.example/realms/a/",
            json!({"cluster": "idp", "timeout": "2s", "allowed_jwks_hosts": ["Keys.Example:8443"]}),
            Some(json!({"cache_duration": "60s"})),
        );
        let config = parse(&doc).unwrap();
        let KeySource::Remote(jwks) = &config.providers[0].keys else { panic!("remote expected") };
        assert_eq!(jwks.uri, "https://idp.example/realms/a/.well-known/openid-configuration");
        assert_eq!(
            (jwks.authority.as_str(), jwks.path.as_str()),
            ("idp.example", "/realms/a/.well-known/openid-configuration")
        );
        assert_eq!(
            (jwks.cluster.as_str(), jwks.timeout, jwks.cache_duration),
            ("idp", Duration::from_secs(2), Duration::from_secs(60))
        );
        assert_eq!(
            jwks.discovery,
            Some(Discovery {
                issuer: "https://idp.example/realms/a/".into(),
                allowed_jwks_hosts: vec!["keys.example:8443".into()]
            })
        );

        let cases = [
            (
                discovery("https://idp.example", json!({"timeout": "2s"}), None),
                "providers.p.oidc_discovery.cluster",
            ),
            (json!({"providers": {"p": {"oidc_discovery": {"cluster": "idp"}}}}), "providers.p.issuer"),
            (discovery("urn:example", json!({"cluster": "idp"}), None), "providers.p.issuer"),
            (discovery("https://idp.example?x", json!({"cluster": "idp"}), None), "providers.p.issuer"),
            (
                discovery(
                    "https://idp.example",
                    json!({"cluster": "idp"}),
                    Some(json!({"http_uri": {"uri": "https://x/j", "cluster": "c"}})),
                ),
                "providers.p.oidc_discovery",
            ),
            (
                discovery(
                    "https://idp.example",
                    json!({"cluster": "idp", "allowed_jwks_hosts": ["a/b"]}),
                    None,
                ),
                "providers.p.oidc_discovery.allowed_jwks_hosts",
            ),
            (
                discovery("https://idp.example", json!({"cluster": "idp", "jwks": 1}), None),
                "providers.p.oidc_discovery.jwks",
            ),
            (
                json!({"providers": {"p": {"remote_jwks": {"cache_duration": "5s"}}}}),
                "providers.p.remote_jwks.http_uri",
            ),
            (
                with("/providers/p/remote_jwks", "max_jwks_bytes", json!(10)),
                "providers.p.remote_jwks.max_jwks_bytes",
            ),
            (with("/providers/p/remote_jwks", "max_stale", json!("1h")), "providers.p.remote_jwks.max_stale"),
            (
                with("/providers/p/remote_jwks", "unknown_kid_refetch_interval", json!("0s")),
                "providers.p.remote_jwks.unknown_kid_refetch_interval",
            ),
        ];
        for (doc, field) in cases {
            let e = parse(&doc).unwrap_err();
            assert_eq!(e.field, field, "{doc}: {e}");
        }
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

    #[test]
    fn requirement_map_and_names() {
        let mut doc = base();
        doc["requirement_map"] = json!({
            "both": {"requires_all": {"requirements": [{"provider_name": "p"}, {"provider_name": "q"}]}},
            "open": {},
        });
        doc["rules"] = json!([
            {"match": {"prefix": "/both"}, "requirement_name": "both"},
            {"match": {"prefix": "/open"}, "requirement_name": "open"},
        ]);
        let config = parse(&doc).unwrap();
        let both = Requirement::All(vec![
            Requirement::Provider { id: 0, audiences: None },
            Requirement::Provider { id: 1, audiences: None },
        ]);
        assert_eq!(config.rules[0].requires, Some(both));
        assert_eq!(config.rules[1].requires, None);
    }

    fn rules(specs: Value) -> Config {
        let mut doc = base();
        doc["rules"] = specs;
        parse(&doc).unwrap()
    }

    #[test]
    fn rule_matching() {
        let example = Config::parse(EXAMPLE.as_bytes()).unwrap();
        let index = |config: &Config, path: &str| {
            config.rule_for(path).map(|r| config.rules.iter().position(|x| std::ptr::eq(x, r)).unwrap())
        };
        for (path, expected) in [
            ("/healthz", 0),
            ("/healthz/live?x=1", 0),
            ("/public", 1),
            ("/public?access_token=x", 1),
            ("/public/x", 3),
            ("/publicx", 3),
            ("/api/v1/users", 2),
            ("/api/v12/users?q=/x", 2),
            ("/api/v1", 3),
            ("/api/vx/users", 3),
            ("/x/api/v1/y", 3),
        ] {
            assert_eq!(index(&example, path), Some(expected), "{path}");
        }

        let config = rules(json!([
            {"match": {"path_separated_prefix": "/sep"}},
            {"match": {"path": "/Exact", "case_sensitive": false}},
            {"match": {"prefix": "/CASE", "case_sensitive": false}},
            {"match": {"prefix": "/q?x"}},
            {"match": {"safe_regex": {"regex": "/r|/s"}}},
            {"match": {"path": "/p"}},
        ]));
        for (path, expected) in [
            ("/sep", Some(0)),
            ("/sep/x", Some(0)),
            ("/sep?x", Some(0)),
            ("/sepx", None),
            ("/exact", Some(1)),
            ("/EXACT?x", Some(1)),
            ("/exact/", None),
            ("/case/x", Some(2)),
            ("/q?x=1", None), // matchers never see the query
            ("/r", Some(4)),
            ("/s?x", Some(4)),
            ("/rr", None), // anchored: a full match
            ("/x/r", None),
            ("/p", Some(5)),
            ("/p?x=1", Some(5)),
            ("/p#frag", Some(5)),
            ("/P", None),
            ("/p/", None),
        ] {
            assert_eq!(index(&config, path), expected, "{path}");
        }
    }

    #[test]
    fn subjects() {
        let matcher = |spec: Value| {
            parse(&with("/providers/p", "subjects", spec)).unwrap().providers[0].subjects.clone().unwrap()
        };
        let spiffe = matcher(json!({"prefix": "spiffe://example.com/"}));
        assert!(spiffe.allows(Some("spiffe://example.com/svc")));
        assert!(!spiffe.allows(Some("spiffe://evil.com/svc")) && !spiffe.allows(None));
        let exact = matcher(json!({"exact": "Alice", "ignore_case": true}));
        assert!(exact.allows(Some("alice")) && exact.allows(Some("ALICE")) && !exact.allows(Some("alice2")));
        assert!(matcher(json!({"suffix": "@corp"})).allows(Some("bob@corp")));
        assert!(matcher(json!({"contains": "ob@"})).allows(Some("bob@corp")));
        let regex = matcher(json!({"safe_regex": {"regex": "user-[0-9]+"}, "ignore_case": true}));
        assert!(
            regex.allows(Some("user-42"))
                && !regex.allows(Some("USER-42"))
                && !regex.allows(Some("user-42x"))
        );
        // The empty exact subject is allowed as a pattern, but an absent `sub` still never matches.
        let empty = matcher(json!({"exact": ""}));
        assert!(empty.allows(Some("")) && !empty.allows(None));
    }

    #[test]
    fn header_location_schemes() {
        let loc = |prefix: &str| HeaderLocation { name: "authorization".into(), value_prefix: prefix.into() };
        assert_eq!(loc("Bearer ").scheme(), ("Bearer", true));
        assert_eq!(loc("Bearer").scheme(), ("Bearer", true));
        assert_eq!(loc("token=").scheme(), ("token=", false));
        assert_eq!(loc("token= ").scheme(), ("token=", true));
        assert_eq!(loc("").scheme(), ("", false));
        assert!(loc("Bearer ").same_location(&loc("bearer")));
        assert!(!loc("Bearer ").same_location(&loc("JWT ")));
        assert!(!loc("token=").same_location(&loc("token= ")));
    }
}
