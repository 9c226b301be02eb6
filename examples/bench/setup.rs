//! What runs: the filter variants and their Envoy configs, the workloads and their tokens, and the
//! JWKS documents.

use crate::support::config::{self, AUDIENCE, ISSUER, PROVIDER};
use crate::support::mint::{self, TestKey, Token};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The verified-token cache size of the `-cache` variants (the filter's default, as the issue
/// asks). Smaller than the fresh token set, so fresh tokens always miss.
pub const CACHE_SIZE: u32 = 1000;

/// How one variant authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No filter but the router: the floor.
    NoFilter,
    /// A proxy-wasm module that does nothing (`support::envoy::stub_module`): the price of V8.
    NoopWasm,
    /// Envoy's native `envoy.filters.http.jwt_authn`; `cache`: `jwt_cache_config` set.
    JwtAuthn { cache: bool },
    /// This filter. `crypto` and `cache` are `None` for the filter's defaults (its cache is on by
    /// default); `Some(false)` turns the cache off with the filter's `disabled: true`.
    Filter { crypto: Option<&'static str>, cache: Option<bool> },
}

/// A named configuration to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub name: &'static str,
    pub kind: Kind,
}

const fn variant(name: &'static str, kind: Kind) -> Variant {
    Variant { name, kind }
}

const fn filter(name: &'static str, crypto: &'static str, cache: bool) -> Variant {
    variant(name, Kind::Filter { crypto: Some(crypto), cache: Some(cache) })
}

/// The reference the ratios divide by.
pub const JWT_AUTHN: Variant = variant("jwt_authn", Kind::JwtAuthn { cache: false });
pub const JWT_AUTHN_CACHE: Variant = variant("jwt_authn-cache", Kind::JwtAuthn { cache: true });
/// The filter as configured by default (for the key-count and memory measurements).
pub const FILTER_DEFAULT: Variant = variant("filter", Kind::Filter { crypto: None, cache: None });

/// The main table's variants, in run order.
pub const TABLE: [Variant; 8] = [
    variant("none", Kind::NoFilter),
    variant("noop-wasm", Kind::NoopWasm),
    JWT_AUTHN,
    JWT_AUTHN_CACHE,
    filter("filter-host", "host", false),
    filter("filter-host-cache", "host", true),
    filter("filter-wasm", "wasm", false),
    filter("filter-wasm-cache", "wasm", true),
];

/// Every variant a mode can name.
pub const ALL: [Variant; 9] =
    [TABLE[0], TABLE[1], TABLE[2], TABLE[3], TABLE[4], TABLE[5], TABLE[6], TABLE[7], FILTER_DEFAULT];

/// A variant by name.
pub fn by_name(name: &str) -> Result<Variant, String> {
    ALL.iter().copied().find(|v| v.name == name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        format!("no variant {name:?}; known: {}", names.join(" "))
    })
}

/// The two `.wasm` files a config may load.
pub struct Modules {
    pub filter: PathBuf,
    pub noop: PathBuf,
}

impl Variant {
    /// Whether this variant loads the project's `.wasm`.
    pub fn needs_filter(&self) -> bool {
        matches!(self.kind, Kind::Filter { .. })
    }

    /// The Envoy config: `envoy/bench-direct.yaml.tmpl` with this variant's filters, JWKS from
    /// `idp_port`, listener and admin on OS-picked ports.
    pub fn yaml(&self, idp_port: u16, modules: &Modules) -> String {
        let filters = match self.kind {
            Kind::NoFilter => vec![],
            Kind::NoopWasm => vec![wasm_filter(&modules.noop, "{}")],
            Kind::JwtAuthn { cache } => {
                let cache = cache.then(|| json!({"jwt_cache_size": CACHE_SIZE}));
                vec![json!({
                    "name": "envoy.filters.http.jwt_authn",
                    "typed_config": config::native_jwt_authn(&policy(None, cache)),
                })]
            }
            Kind::Filter { crypto, cache } => {
                let cache = cache.map(|on| match on {
                    true => json!({"jwt_cache_size": CACHE_SIZE}),
                    false => json!({"disabled": true}),
                });
                vec![wasm_filter(&modules.filter, &policy(crypto, cache).to_string())]
            }
        };
        envoy_yaml(filters, idp_port)
    }
}

/// `envoy/bench-direct.yaml.tmpl` with these HTTP filters before the router, JWKS from
/// `idp_port`, listener and admin on OS-picked ports.
pub fn envoy_yaml(mut filters: Vec<Value>, idp_port: u16) -> String {
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let values = [
        ("LISTEN_PORT", "0".to_string()),
        ("ADMIN_PORT", "0".to_string()),
        ("IDP_PORT", idp_port.to_string()),
        ("HTTP_FILTERS", config::yaml_flow(&Value::Array(filters))),
    ];
    config::fill(&config::template("bench-direct.yaml.tmpl"), &values)
}

/// The e2e tests' policy (`config::corp_policy`: one provider, remote JWKS, payload and `sub`
/// forwarded in headers), with the filter's top-level `crypto` and the provider's
/// `jwt_cache_config` when given.
fn policy(crypto: Option<&str>, jwt_cache_config: Option<Value>) -> Value {
    let mut policy = config::corp_policy();
    if let Some(cache) = jwt_cache_config {
        policy["providers"][PROVIDER]["jwt_cache_config"] = cache;
    }
    if let Some(crypto) = crypto {
        policy["crypto"] = json!(crypto);
    }
    policy
}

/// The wasm HTTP filter (V8, FAIL_CLOSED) with a module and its plugin configuration, as
/// `envoy/e2e-wasm.yaml.tmpl` has it.
pub fn wasm_filter(module: &Path, plugin_config: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "jwt_authn_wasm",
                "root_id": "jwt_authn_wasm",
                "vm_config": {
                    "vm_id": "jwt_authn_wasm",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module.to_string_lossy()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config,
                },
                "failure_policy": "FAIL_CLOSED",
            },
        },
    })
}

/// A signing algorithm of the workloads, with its key and kid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alg {
    pub name: &'static str,
    key: TestKey,
    kid: &'static str,
}

pub const RS256: Alg = Alg { name: "RS256", key: TestKey::RsaA, kid: "bench-rsa" };
pub const ES256: Alg = Alg { name: "ES256", key: TestKey::P256A, kid: "bench-ec" };
pub const ALGS: [Alg; 2] = [RS256, ES256];

/// The JWKS of the main table: both signing keys.
pub fn jwks() -> String {
    mint::jwks(&[(RS256.key, RS256.kid), (ES256.key, ES256.kid)])
}

/// A JWKS of `count` keys whose last one verifies RS256 tokens; the others are other fixture
/// keys (RSA and P-256, alternating) under their own kids, so only the kid finds the key.
pub fn jwks_with(count: usize) -> String {
    let mut keys = decoys(count.saturating_sub(1));
    keys.push(RS256.key.jwk(RS256.kid, None));
    mint::jwks_of(keys)
}

/// The independent bench's JWKS (issue 9, `BENCH_SHAPE=mixed16`): `count` keys of mixed kinds,
/// RSA and P-256 alternating, with both signing keys among them (not first, not last).
pub fn jwks_mixed(count: usize) -> String {
    let mut keys = decoys(count.saturating_sub(2));
    let signing = [RS256, ES256].map(|alg| alg.key.jwk(alg.kid, None));
    for (i, key) in signing.into_iter().enumerate() {
        keys.insert((keys.len() * (i + 1) / 3).min(keys.len()), key);
    }
    mint::jwks_of(keys)
}

/// `count` keys no bench token names: other fixture keys (RSA and P-256, alternating) under
/// kids of their own.
fn decoys(count: usize) -> Vec<Value> {
    let decoys = [TestKey::RsaB, TestKey::P256B];
    (1..=count).map(|i| decoys[i % decoys.len()].jwk(&format!("decoy-{i}"), None)).collect()
}

/// Which tokens a workload sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// One token again and again.
    Repeat,
    /// A new token with every request (`BENCH_TOKENS` of them, cycled).
    Fresh,
    /// `SPREAD_TOKENS` tokens, cycled by each of `SPREAD_SENDS` wrk threads in step (all start at
    /// the first), so each token is sent `SPREAD_SENDS` times at about the same time, over as many
    /// connections, which the kernel spreads over Envoy's workers.
    Spread,
}

/// Distinct tokens of the `spread` workload: more than a per-worker cache of `CACHE_SIZE` holds,
/// so no worker still has a token when the cycle comes back to it.
pub const SPREAD_TOKENS: usize = 2500;
/// How often in a row each `spread` token is sent: the wrk threads of the `spread` workload.
pub const SPREAD_SENDS: usize = 8;

/// What the load generator sends: one algorithm, and which tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub alg: Alg,
    pub tokens: Tokens,
}

impl Workload {
    pub const fn new(alg: Alg, tokens: Tokens) -> Workload {
        Workload { alg, tokens }
    }

    pub fn kind(&self) -> &'static str {
        match self.tokens {
            Tokens::Repeat => "repeat",
            Tokens::Fresh => "fresh",
            Tokens::Spread => "spread",
        }
    }

    /// The token file for `bench/wrk-tokens.lua`.
    pub fn tokens_file(&self, dir: &Path) -> PathBuf {
        dir.join(format!("tokens-{}-{}.txt", self.alg.name, self.kind()))
    }

    /// The lines of this workload's file, from the algorithm's minted tokens.
    fn lines(&self, minted: &[String]) -> Vec<String> {
        match self.tokens {
            Tokens::Repeat => minted.iter().take(1).cloned().collect(),
            Tokens::Fresh => minted.to_vec(),
            Tokens::Spread => minted.iter().cycle().take(SPREAD_TOKENS).cloned().collect(),
        }
    }
}

/// Every workload of the main table (Envoy with one worker): per algorithm, repeat then fresh.
pub fn workloads() -> Vec<Workload> {
    ALGS.iter().flat_map(|&alg| [Tokens::Repeat, Tokens::Fresh].map(|t| Workload::new(alg, t))).collect()
}

/// The `spread` workload (Envoy with `SPREAD_WORKERS` workers, still on one core).
pub const SPREAD: Workload = Workload::new(RS256, Tokens::Spread);
pub const SPREAD_WORKERS: u32 = 4;
/// Connections of the `spread` workload: two per wrk thread.
pub const SPREAD_CONNECTIONS: u32 = 16;

/// The variants of the `spread` row: the floor, jwt_authn with and without its cache, this filter
/// with its cache (host crypto).
pub fn spread_variants() -> Vec<Variant> {
    vec![TABLE[0], JWT_AUTHN, JWT_AUTHN_CACHE, TABLE[5]]
}

/// Token files left by an earlier run are reused while they hold `count` tokens per algorithm that
/// stay valid for `min_left_secs` more; else `count` distinct valid tokens per algorithm (each its
/// own `sub` and `jti`, valid for `ttl_secs`) are minted on every core into the files of every
/// workload. Returns the seconds minting took per algorithm (none if reused).
pub fn write_tokens(
    dir: &Path,
    count: usize,
    ttl_secs: i64,
    min_left_secs: i64,
) -> Result<Vec<(&'static str, f64)>, String> {
    let meta_file = dir.join("tokens.meta.json");
    let meta: Value = std::fs::read_to_string(&meta_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let all = || workloads().into_iter().chain([SPREAD]);
    let files_there = all().all(|w| w.tokens_file(dir).is_file());
    let reusable = files_there
        && meta["count"].as_u64() == Some(count as u64)
        && meta["exp"].as_i64().is_some_and(|exp| exp - mint::now() >= min_left_secs);
    if reusable {
        return Ok(vec![]);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let exp = mint::now() + ttl_secs;
    let mut took = Vec::new();
    for alg in ALGS {
        let start = std::time::Instant::now();
        let tokens = mint_parallel(alg, count, ttl_secs)?;
        took.push((alg.name, start.elapsed().as_secs_f64()));
        for workload in all().filter(|w| w.alg == alg) {
            write(&workload.tokens_file(dir), &(workload.lines(&tokens).join("\n") + "\n"))?;
        }
    }
    write(&meta_file, &json!({"count": count, "exp": exp}).to_string())?;
    Ok(took)
}

fn write(file: &Path, text: &str) -> Result<(), String> {
    std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))
}

fn mint_parallel(alg: Alg, count: usize, ttl_secs: i64) -> Result<Vec<String>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads).max(1);
    let chunks: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .step_by(per_thread)
            .map(|first| {
                let last = (first + per_thread).min(count);
                s.spawn(move || (first..last).map(|i| mint_one(alg, i, ttl_secs)).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a minting thread panicked".into())))
            .collect()
    });
    let mut tokens = Vec::with_capacity(count);
    for chunk in chunks {
        tokens.extend(chunk?);
    }
    Ok(tokens)
}

/// The token of the DPoP load: RS256 like the others, bound to the key of thumbprint `jkt`
/// (`cnf.jkt`), valid for an hour.
pub fn dpop_token(jkt: &str) -> Result<String, String> {
    Token::new(RS256.name, RS256.key)
        .kid(RS256.kid)
        .iss(ISSUER)
        .aud(AUDIENCE)
        .sub("bench-dpop")
        .claim("cnf", json!({"jkt": jkt}))
        .exp_in(3600)
        .try_sign()
}

fn mint_one(alg: Alg, i: usize, ttl_secs: i64) -> Result<String, String> {
    Token::new(alg.name, alg.key)
        .kid(alg.kid)
        .iss(ISSUER)
        .aud(AUDIENCE)
        .sub(&format!("bench-user-{i}"))
        .claim("jti", json!(format!("bench-{i}")))
        .exp_in(ttl_secs)
        .try_sign()
}
