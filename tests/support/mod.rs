//! Shared support for the integration and end-to-end tests (`mod support;` in each test file):
//! test keys and tokens (`mint`), a tiny HTTP client (`http`), a JWKS server, an echo upstream and
//! a file server (`servers`), Envoy configs (`config`), a real Envoy process (`envoy`), the ECDS
//! file through which a test pushes the filter's config (`ecds`), and `Stack`, which starts a JWKS
//! server, an upstream and Envoy for one test.
// Not every test file uses every item.
#![allow(dead_code)]

pub mod config;
pub mod ecds;
pub mod envoy;
pub mod http;
pub mod mint;
pub mod servers;

use config::{EnvoyConfig, Filter};
use envoy::Envoy;
use servers::{EchoUpstream, JwksServer};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The crate's root directory (where Cargo.toml is).
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Envoy from env `ENVOY_BIN`, else `<crate root>/.venv/bin/envoy` (what `make envoy` installs).
pub fn envoy_bin() -> Result<PathBuf, String> {
    let (bin, from) = match std::env::var_os("ENVOY_BIN") {
        Some(bin) => (PathBuf::from(bin), "ENVOY_BIN"),
        None => (crate_root().join(".venv/bin/envoy"), "the default (no ENVOY_BIN)"),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("no Envoy at {} from {from}: run `make envoy` or set ENVOY_BIN", bin.display()))
    }
}

/// The version of the Envoy the tests run (`envoy_bin`), as `(major, minor, patch)` from its
/// `--version` line (`.../1.40.0/Clean/RELEASE/BoringSSL`): for the few checks whose right answer
/// is Envoy's and changed between releases (`make test-envoy-versions` runs older ones). Read once.
pub fn envoy_version() -> (u32, u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let bin = envoy_bin().unwrap_or_else(|e| panic!("{e}"));
        let out = std::process::Command::new(&bin).arg("--version").output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let parsed = text.split('/').find_map(|part| {
            let mut numbers = part.split('.').map(|n| n.parse::<u32>().ok());
            match (numbers.next(), numbers.next(), numbers.next(), numbers.next()) {
                (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some((a, b, c)),
                _ => None,
            }
        });
        parsed.unwrap_or_else(|| panic!("no version in `{} --version`: {text:?}", bin.display()))
    })
}

/// The filter module from env `WASM_PATH`, else the release build's output (it may not exist).
pub fn wasm_path() -> PathBuf {
    match std::env::var_os("WASM_PATH") {
        Some(path) => PathBuf::from(path),
        None => crate_root().join("target/wasm32-wasip1/release/jwt_authn_wasm.wasm"),
    }
}

/// Envoy's path, or `None` after saying why the test is skipped; with env `CI=true` a missing
/// Envoy fails the test instead (CI must never pass by skipping).
pub fn require_envoy() -> Option<PathBuf> {
    available(envoy_bin())
}

/// The `.wasm`'s path, or `None` after saying why the test is skipped (fails with `CI=true`).
pub fn require_wasm() -> Option<PathBuf> {
    require_module(wasm_path(), "filter module", "run `make build` or set WASM_PATH")
}

/// The test-only host crypto probe (`tests/host-probe`) from env `HOST_PROBE_PATH`, else where
/// `make probe` builds it (it may not exist).
pub fn host_probe_path() -> PathBuf {
    match std::env::var_os("HOST_PROBE_PATH") {
        Some(path) => PathBuf::from(path),
        None => crate_root().join("target/host-probe/wasm32-wasip1/release/host_probe.wasm"),
    }
}

/// The probe's path, or `None` after saying why the test is skipped (fails with `CI=true`).
pub fn require_host_probe() -> Option<PathBuf> {
    require_module(host_probe_path(), "host crypto probe", "run `make probe` or set HOST_PROBE_PATH")
}

fn require_module(path: PathBuf, what: &str, hint: &str) -> Option<PathBuf> {
    let found =
        if path.is_file() { Ok(path) } else { Err(format!("no {what} at {}: {hint}", path.display())) };
    available(found)
}

/// The path found, or `None` after saying why the test is skipped; with env `CI=true` a missing
/// tool or file fails the test instead (CI must never pass by skipping).
pub fn available(found: Result<PathBuf, String>) -> Option<PathBuf> {
    match found {
        Ok(path) => Some(path),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{why} (CI=true)"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The request headers the echo upstream saw (name → every value, see `servers::EchoUpstream`);
/// panics unless the answer is a 200 (the request passed).
pub fn upstream_headers(r: &http::Response) -> serde_json::Value {
    assert_eq!(r.status, 200, "expected to pass, got: {}", r.body);
    r.json()["headers"].clone()
}

/// The workers of an Envoy started with `--concurrency 2`, as its stats name them.
pub const WORKERS: [&str; 2] = ["worker_0", "worker_1"];

/// A JWKS server, an echo upstream and an Envoy between them, for one test. Fields drop in
/// order: Envoy first, then the servers.
pub struct Stack {
    pub envoy: Envoy,
    pub jwks: JwksServer,
    pub upstream: EchoUpstream,
}

impl Stack {
    /// Starts the JWKS server with `jwks_body`, the upstream, and Envoy with `policy` through
    /// `filter` (see `config::corp_policy`). `None` (the test skips) when Envoy or, for the wasm
    /// filter, the module is missing outside CI.
    pub fn start(
        filter: Filter,
        policy: serde_json::Value,
        jwks_body: &str,
        concurrency: u32,
    ) -> Option<Stack> {
        Stack::start_with(filter, jwks_body, concurrency, |jwks, upstream| {
            EnvoyConfig::new(policy, jwks, upstream)
        })
    }

    /// As `start`, with a config made from the two servers' ports (for extra knobs).
    pub fn start_with(
        filter: Filter,
        jwks_body: &str,
        concurrency: u32,
        config: impl FnOnce(u16, u16) -> EnvoyConfig,
    ) -> Option<Stack> {
        Stack::start_on(filter, JwksServer::new(jwks_body), concurrency, config)
    }

    /// As `start_with`, with a JWKS server the test prepared (e.g. `JwksServer::reserve()`, for an
    /// identity provider that comes up late).
    pub fn start_on(
        filter: Filter,
        jwks: JwksServer,
        concurrency: u32,
        config: impl FnOnce(u16, u16) -> EnvoyConfig,
    ) -> Option<Stack> {
        require_envoy()?;
        if filter == Filter::Wasm {
            require_wasm()?;
        }
        let upstream = EchoUpstream::new();
        let yaml = config(jwks.port(), upstream.port()).yaml(filter);
        let envoy = Envoy::start(&yaml, concurrency);
        Some(Stack { envoy, jwks, upstream })
    }

    /// How many downstream connections `worker` (one of `WORKERS`) has accepted (see
    /// `Envoy::connections_served`).
    pub fn connections_served(&self, worker: &str) -> u64 {
        self.envoy.connections_served(worker)
    }

    /// Runs `checks` until both workers served some of them (see `Envoy::on_both_workers`).
    pub fn on_both_workers(&self, checks: impl FnMut()) -> usize {
        self.envoy.on_both_workers(checks)
    }

    /// GET through Envoy, with an optional bearer token.
    pub fn get(&self, path: &str, bearer: Option<&str>) -> http::Response {
        http::get(self.envoy.port(), path, bearer)
    }

    /// GET through Envoy with exactly these extra headers (repeats allowed, sent in order).
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> http::Response {
        http::request(self.envoy.port(), "GET", path, headers)
            .unwrap_or_else(|e| panic!("GET {path} on port {}: {e}", self.envoy.port()))
    }
}
