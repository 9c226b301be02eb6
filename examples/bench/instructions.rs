//! `bench instructions` (issue 16 §1): Envoy's instructions per request, counted by callgrind
//! (`callgrind.rs`), for every config side by side in one run. Deterministic where CPU time is
//! not, so it judges changes of a few hundred instructions that the CPU-time table cannot see.
//!
//! Per config, in each round: Envoy with one worker under callgrind, then per workload a warm-up
//! (`BENCH_CG_WARMUP` requests, not counted: JWKS, V8's tier-up, caches), then
//! `BENCH_CG_REQUESTS` requests counted, one after another over one keep-alive connection.
//! Between the two, a quiet window (no requests) counts what Envoy does on its own per second:
//! its timers, stats flushes and the filter's tick. That work falls into the request window too,
//! in proportion to its length, which under valgrind is some fifty times what it would be
//! natively: left in, the filter's tick alone (about 90,000 instructions ten times a second)
//! would add thousands of instructions per request, and vary from run to run with the machine's
//! speed. Instructions per request = (the window's instructions − the quiet rate × the window's
//! length) ÷ its requests; the raw figure is kept in `bench/results.json`.
//! The policy is the issue's: the e2e tests' provider with `forward: true`, the default token
//! locations and no outputs, for jwt_authn and this filter alike.

use crate::callgrind::{self, Callgrind, Connection, Credentials};
use crate::loads::{self, LOADS, Load, REPEAT, VERIFYING};
use crate::measure::Answered;
use crate::setup;
use crate::support::config::{self, PROVIDER};
use crate::{Bench, env_num, in_round_order};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The callbacks the SDK no-op module uses (`tests/noop-module`): what its restricted config
/// allows besides its imports.
const NOOP_CALLBACKS: [&str; 5] = [
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_configure",
    "proxy_on_request_headers",
];
/// The same and `proxy_on_response_headers`: the callbacks Envoy calls the filter for on every
/// request (`wasm_exports::FILTER_CALLBACKS` without the root's).
const NOOP_FILTER_CALLBACKS: [&str; 6] = [
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_configure",
    "proxy_on_request_headers",
    "proxy_on_response_headers",
];
/// How long the filter's counters (flushed on its 100 ms tick) are given before they are read.
const SETTLE: Duration = Duration::from_millis(600);
/// The quiet window that counts what Envoy does without requests: as long as Envoy's stats
/// flush interval (5 s by default), so it holds one flush, as every stretch of that length does.
const QUIET: Duration = Duration::from_secs(5);

/// How one config authenticates.
#[derive(Debug, Clone, Copy)]
enum Setup {
    NoFilter,
    JwtAuthn {
        cache: bool,
    },
    /// The SDK no-op module (`tests/noop-module`) with this plugin configuration (what it reads),
    /// restricted to these callbacks when given.
    Noop {
        read: &'static str,
        restricted: Option<&'static [&'static str]>,
    },
    /// This filter; `worker_cache`: its per-worker cache size, when not the default; `dpop`:
    /// the provider requires DPoP.
    Filter {
        restricted: bool,
        worker_cache: Option<u32>,
        dpop: bool,
    },
}

#[derive(Debug, Clone)]
struct Row {
    name: &'static str,
    label: String,
    setup: Setup,
    loads: &'static [Load],
    /// The filter build a filter row loads (`WASM_PATH`, or one of `BENCH_CG_BUILDS`).
    module: Option<PathBuf>,
}

const fn row(name: &'static str, label: &'static str, setup: Setup, loads: &'static [Load]) -> Base {
    Base { name, label, setup, loads }
}

/// A row before it is given its module.
#[derive(Debug, Clone, Copy)]
struct Base {
    name: &'static str,
    label: &'static str,
    setup: Setup,
    loads: &'static [Load],
}

const fn filter(restricted: bool, worker_cache: Option<u32>, dpop: bool) -> Setup {
    Setup::Filter { restricted, worker_cache, dpop }
}

const ROWS: [Base; 11] = [
    row("none", "no filter", Setup::NoFilter, REPEAT),
    row("jwt_authn", "jwt_authn", Setup::JwtAuthn { cache: false }, VERIFYING),
    row("jwt_authn-cache", "jwt_authn + cache", Setup::JwtAuthn { cache: true }, REPEAT),
    row("noop", "no-op SDK module", Setup::Noop { read: "", restricted: None }, REPEAT),
    row(
        "noop-header",
        "no-op, reading one header",
        Setup::Noop { read: "read-header", restricted: None },
        REPEAT,
    ),
    row(
        "noop-header-restricted",
        "no-op, reading one header, capability restriction",
        Setup::Noop { read: "read-header", restricted: Some(&NOOP_CALLBACKS) },
        REPEAT,
    ),
    row(
        "noop-headers-filter",
        "no-op, reading all headers, the filter's callbacks",
        Setup::Noop { read: "read-headers", restricted: Some(&NOOP_FILTER_CALLBACKS) },
        REPEAT,
    ),
    row("filter", "this filter", filter(false, None, false), VERIFYING),
    row("filter-restricted", "this filter, capability restriction", filter(true, None, false), VERIFYING),
    row(
        "filter-shared",
        "this filter, worker cache of 1 token",
        filter(false, Some(1), false),
        &[Load::SharedHit],
    ),
    row("filter-dpop", "this filter, DPoP required", filter(false, None, true), &[Load::Dpop]),
];

/// The rows to run: `ROWS` selected by `BENCH_ONLY` (by name; a filter row also as
/// `<name>@<build>`), each filter row once per build of `BENCH_CG_BUILDS` (`label=file.wasm`,
/// comma-separated: builds side by side, named `<row>@<label>`) or once with `filter`.
fn plan(only: Option<&[String]>, filter: &Path) -> Result<Vec<Row>, String> {
    let builds: Vec<(String, PathBuf)> = match std::env::var("BENCH_CG_BUILDS") {
        Ok(list) => list
            .split(',')
            .filter(|b| !b.trim().is_empty())
            .map(|b| {
                let (label, file) =
                    b.trim().split_once('=').ok_or(format!("BENCH_CG_BUILDS: {b:?} is not label=file"))?;
                Ok((label.to_owned(), PathBuf::from(file)))
            })
            .collect::<Result<_, String>>()?,
        Err(_) => vec![],
    };
    let selected = |name: &str| only.is_none_or(|names| names.iter().any(|n| n == name));
    let mut rows = Vec::new();
    for base in ROWS {
        let make = |name: &'static str, label: String, module| Row {
            name,
            label,
            setup: base.setup,
            loads: base.loads,
            module,
        };
        match base.setup {
            Setup::Filter { .. } if !builds.is_empty() => {
                for (build, file) in &builds {
                    // Leaked: a few names for the process's life, as every other row's is static.
                    let name: &'static str = Box::leak(format!("{}@{build}", base.name).into_boxed_str());
                    if selected(base.name) || selected(name) {
                        rows.push(make(name, format!("{} [{build}]", base.label), Some(file.clone())));
                    }
                }
            }
            Setup::Filter { .. } if selected(base.name) => {
                rows.push(make(base.name, base.label.to_owned(), Some(filter.to_owned())))
            }
            _ if selected(base.name) => rows.push(make(base.name, base.label.to_owned(), None)),
            _ => {}
        }
    }
    Ok(rows)
}

/// One counted window.
#[derive(Debug, Clone, Serialize)]
struct Count {
    round: u32,
    row: &'static str,
    load: String,
    requests: usize,
    /// All instructions counted in the window, and what Envoy executes per second without
    /// requests (the quiet window before it).
    instructions: u64,
    window_s: f64,
    quiet_per_s: f64,
    /// (instructions − quiet_per_s × window_s) ÷ requests.
    per_request: f64,
    raw_per_request: f64,
    /// Requests Envoy answered in the window (its own counter) and how they moved this filter's
    /// or jwt_authn's verification and cache counters.
    envoy_requests: u64,
    counters: BTreeMap<String, u64>,
}

impl Count {
    fn per_request_of(&self, suffix: &str) -> Option<f64> {
        let mut moved = self.counters.iter().filter(|(n, _)| n.ends_with(suffix)).peekable();
        moved.peek()?;
        Some(moved.map(|(_, v)| *v).sum::<u64>() as f64 / self.requests.max(1) as f64)
    }
}

/// The median of one row and load over the rounds, its spread and ratio.
#[derive(Debug, Clone, Serialize)]
struct Cell {
    row: &'static str,
    load: String,
    per_request: f64,
    /// (largest − smallest) ÷ smallest over the rounds.
    spread: f64,
    rounds: usize,
    ratio: Option<f64>,
    reference: String,
    signatures_per_request: Option<f64>,
    shared_hits_per_request: Option<f64>,
}

struct Knobs {
    requests: usize,
    warmup: usize,
}

impl Bench {
    /// The instruction table: every selected row × its workloads, interleaved over the rounds.
    pub fn instructions(&mut self) -> Result<Value, String> {
        let knobs = Knobs {
            requests: env_num("BENCH_CG_REQUESTS", 2000)?.max(1),
            warmup: env_num("BENCH_CG_WARMUP", 500)?.max(1),
        };
        let cg = Callgrind::new()?;
        let rows = plan(self.settings.only.as_deref(), &self.modules.filter)?;
        let noop = noop_module();
        let mut counts = Vec::new();
        self.machine.mark_start();
        for round in 1..=self.settings.rounds {
            eprintln!("instructions: round {round}/{}", self.settings.rounds);
            for row in in_round_order(&rows, round) {
                let module = match row.setup {
                    Setup::Noop { .. } => Some(noop.clone()),
                    _ => row.module.clone(),
                };
                let yaml = self.row_yaml(&row, &noop)?;
                let jwks = setup::jwks();
                let ready = self.ready_for(&row);
                let launch = cg.launch();
                let Some(envoy) =
                    self.start_config(row.name, &yaml, module.as_deref(), &jwks, 1, launch, &ready)?
                else {
                    continue;
                };
                for load in row.loads.iter().copied().filter(|l| self.is_load_selected(*l)) {
                    let count = self.count(&cg, &envoy, &knobs, round, &row, load)?;
                    eprintln!(
                        "  r{round} {} {}: {:.0} instructions/request ({:.0} before subtracting {:.0}/s of quiet work)",
                        row.name, count.load, count.per_request, count.raw_per_request, count.quiet_per_s
                    );
                    counts.push(count);
                }
            }
        }
        self.machine.mark_end();
        let cells = summarize(&counts, &rows);
        println!("{}", table(&cells, &rows, &counts, &knobs, self.settings.rounds, &self.refused));
        Ok(json!({
            "machine": self.machine,
            "rounds": self.settings.rounds,
            "requests": knobs.requests,
            "warmup": knobs.warmup,
            "noop_module": noop,
            "refused": self.refused,
            "quiet_s": QUIET.as_secs(),
            "summary": cells,
            "counts": counts,
        }))
    }

    /// The request that tells Envoy is ready: for DPoP a DPoP request, else the bearer token.
    fn ready_for(&self, row: &Row) -> Box<dyn Fn(u16) -> Result<Credentials, String>> {
        match row.setup {
            Setup::Filter { dpop: true, .. } => Box::new(|port| {
                loads::dpop_requests(port, 1)?.pop().ok_or_else(|| "no DPoP request".to_owned())
            }),
            _ => Box::new(self.bearer_ready()),
        }
    }

    fn is_load_selected(&self, load: Load) -> bool {
        let names = self.settings.workloads.as_ref();
        names.is_none_or(|names| names.iter().any(|n| *n == load.name() || n == load.kind()))
    }

    fn count(
        &self,
        cg: &Callgrind,
        envoy: &crate::support::envoy::Envoy,
        knobs: &Knobs,
        round: u32,
        row: &Row,
        load: Load,
    ) -> Result<Count, String> {
        let (warm, window) = load.requests(&self.token_dir, envoy.port(), knobs.requests, knobs.warmup)?;
        let mut connection = Connection::open(envoy.port())?;
        let fail = |why: String| format!("{} {}: {why}", row.name, load.name());
        callgrind::send_all(&mut connection, &warm).map_err(|e| fail(format!("warm-up: {e}")))?;
        let (quiet, (), quiet_took) = cg.window(envoy, || {
            std::thread::sleep(QUIET);
            Ok(())
        })?;
        let quiet_per_s = quiet as f64 / quiet_took.as_secs_f64();
        std::thread::sleep(SETTLE);
        let before = Answered::read(envoy)?;
        let (instructions, (), took) =
            cg.window(envoy, || callgrind::send_all(&mut connection, &window)).map_err(fail)?;
        std::thread::sleep(SETTLE);
        let after = Answered::read(envoy)?;
        // Envoy answered exactly the window's requests in it, and nothing else came in.
        let answered = after.completed - before.completed;
        if answered != window.len() as u64 {
            return Err(fail(format!("Envoy answered {answered} requests in a window of {}", window.len())));
        }
        let (n, window_s) = (window.len() as f64, took.as_secs_f64());
        Ok(Count {
            round,
            row: row.name,
            load: load.name(),
            requests: window.len(),
            instructions,
            window_s,
            quiet_per_s,
            per_request: (instructions as f64 - quiet_per_s * window_s) / n,
            raw_per_request: instructions as f64 / n,
            envoy_requests: answered,
            counters: after.moved_since(&before),
        })
    }

    /// The Envoy config of a row (`noop`: the SDK no-op module).
    fn row_yaml(&self, row: &Row, noop: &Path) -> Result<String, String> {
        let filters = match row.setup {
            Setup::NoFilter => vec![],
            Setup::JwtAuthn { cache } => {
                let cache = cache.then(|| json!({"jwt_cache_size": setup::CACHE_SIZE}));
                vec![json!({
                    "name": "envoy.filters.http.jwt_authn",
                    "typed_config": config::native_jwt_authn(&policy(cache, false)),
                })]
            }
            Setup::Noop { read, restricted } => {
                let filter = setup::wasm_filter(noop, read);
                vec![restrict(filter, noop, restricted.unwrap_or_default(), restricted.is_some())?]
            }
            Setup::Filter { restricted, worker_cache, dpop } => {
                let cache = worker_cache.map(|size| json!({"jwt_cache_size": size}));
                let module = row.module.as_deref().unwrap_or(&self.modules.filter);
                let filter = setup::wasm_filter(module, &policy(cache, dpop).to_string());
                vec![restrict(filter, module, &wasm_exports::FILTER_CALLBACKS, restricted)?]
            }
        };
        Ok(setup::envoy_yaml(filters, self.jwks.port()))
    }
}

/// The policy: the e2e tests' provider with `forward: true`, the default token locations
/// and no outputs; `jwt_cache_config` when given; with `dpop`, DPoP required, proofs accepted
/// for 600 s (they are minted before the warm-up, and a window under callgrind takes a minute
/// or two) and a replay record of 65,536 proofs (the default: some 25 times a window's 2,500).
fn policy(jwt_cache_config: Option<Value>, dpop: bool) -> Value {
    let mut policy = config::corp_policy();
    let provider = &mut policy["providers"][PROVIDER];
    if let Some(fields) = provider.as_object_mut() {
        fields.remove("forward_payload_header");
        fields.remove("claim_to_headers");
        fields.insert("forward".into(), json!(true));
        if let Some(cache) = jwt_cache_config {
            fields.insert("jwt_cache_config".into(), cache);
        }
        if dpop {
            fields.insert("dpop".into(), json!({"mode": "required", "max_age": "600s"}));
        }
    }
    policy
}

/// With `restricted`, the wasm filter with a `capability_restriction_config` that allows the
/// module's imports and, of its exported callbacks, only `callbacks`.
fn restrict(mut filter: Value, module: &Path, callbacks: &[&str], restricted: bool) -> Result<Value, String> {
    if !restricted {
        return Ok(filter);
    }
    let (imports, exports) = callgrind::functions(module)?;
    let used = exports.into_iter().filter(|e| callbacks.contains(&e.as_str()));
    let allowed: serde_json::Map<String, Value> =
        imports.into_iter().chain(used).map(|n| (n, json!({}))).collect();
    filter["typed_config"]["config"]["capability_restriction_config"] =
        json!({"allowed_capabilities": allowed});
    Ok(filter)
}

/// The SDK no-op module: env `NOOP_MODULE_PATH`, else where `make noop` builds it.
fn noop_module() -> PathBuf {
    match std::env::var_os("NOOP_MODULE_PATH") {
        Some(path) => PathBuf::from(path),
        None => {
            crate::support::crate_root().join("target/noop-module/wasm32-wasip1/release/noop_module.wasm")
        }
    }
}

fn summarize(counts: &[Count], rows: &[Row]) -> Vec<Cell> {
    let median_of = |row: &str, load: &str| -> Option<(f64, f64, usize)> {
        let mut v: Vec<f64> =
            counts.iter().filter(|c| c.row == row && c.load == load).map(|c| c.per_request).collect();
        v.sort_by(f64::total_cmp);
        let (first, last) = (*v.first()?, *v.last()?);
        let mid = match v.len() % 2 {
            1 => *v.get(v.len() / 2)?,
            _ => (v.get(v.len() / 2 - 1)? + v.get(v.len() / 2)?) / 2.0,
        };
        Some((mid, (last - first) / first, v.len()))
    };
    let mut cells = Vec::new();
    for row in rows {
        for load in row.loads {
            let Some((per_request, spread, rounds)) = median_of(row.name, &load.name()) else { continue };
            let (reference, reference_load) = load.reference(row.name);
            let base = median_of(&reference, &reference_load.name());
            let mine: Vec<&Count> =
                counts.iter().filter(|c| c.row == row.name && c.load == load.name()).collect();
            let avg = |suffix: &str| {
                let v: Vec<f64> = mine.iter().filter_map(|c| c.per_request_of(suffix)).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            cells.push(Cell {
                row: row.name,
                load: load.name(),
                per_request,
                spread,
                rounds,
                ratio: base.map(|(b, _, _)| per_request / b),
                reference,
                signatures_per_request: avg(".jwt_verified"),
                shared_hits_per_request: avg(".jwt_shared_hit"),
            });
        }
    }
    cells
}

/// Thousands with commas: 160,647.
fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table(
    cells: &[Cell],
    rows: &[Row],
    counts: &[Count],
    knobs: &Knobs,
    rounds: u32,
    refused: &BTreeMap<&'static str, String>,
) -> String {
    let mut out = vec![
        String::new(),
        format!(
            "Envoy instructions per request (callgrind; one worker; {} requests over one keep-alive connection after {} unmeasured; median of {rounds} round(s)). Ratios: repeat and shared-record hit ÷ jwt_authn + cache (repeat), fresh ÷ jwt_authn (same algorithm), DPoP ÷ the same build's fresh ES256.",
            knobs.requests, knobs.warmup
        ),
        String::new(),
        format!("| config | {} |", LOADS.map(Load::label).join(" | ")),
        format!("|---|{}", "--:|".repeat(LOADS.len())),
    ];
    for row in rows.iter().filter(|r| !refused.contains_key(r.name)) {
        let values = LOADS.map(|load| {
            let cell = cells.iter().find(|c| c.row == row.name && c.load == load.name());
            cell.map_or(String::new(), |c| match (c.ratio, c.row == c.reference) {
                (Some(ratio), false) => format!("{} ({ratio:.3}×)", grouped(c.per_request)),
                _ => grouped(c.per_request),
            })
        });
        out.push(format!("| {} | {} |", row.label, values.join(" | ")));
    }
    out.push(String::new());
    let spread = cells.iter().map(|c| c.spread).fold(0.0, f64::max);
    let spread_at = cells
        .iter()
        .find(|c| c.spread == spread)
        .map_or(String::new(), |c| format!(" ({} {})", c.row, c.load));
    out.push(format!("Largest spread between rounds: {:.3} %{spread_at}.", spread * 100.0));
    for c in
        cells.iter().filter(|c| c.signatures_per_request.is_some() || c.shared_hits_per_request.is_some())
    {
        out.push(format!(
            "- {} {}: signatures/request {}, shared-record hits/request {}",
            c.row,
            c.load,
            c.signatures_per_request.map_or("n/a".into(), |v| format!("{v:.2}")),
            c.shared_hits_per_request.map_or("n/a".into(), |v| format!("{v:.2}")),
        ));
    }
    let quiet: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let of_row: Vec<&Count> = counts.iter().filter(|c| c.row == row.name).collect();
            let rate = of_row.iter().map(|c| c.quiet_per_s).sum::<f64>() / of_row.len().max(1) as f64;
            let share = of_row.iter().map(|c| 1.0 - c.per_request / c.raw_per_request).fold(0.0, f64::max);
            (!of_row.is_empty()).then(|| {
                format!("{} {}/s (at most {:.2} % of a window)", row.name, grouped(rate), share * 100.0)
            })
        })
        .collect();
    out.push(format!(
        "Subtracted: Envoy's own work without requests, instructions per second × the window's length: {}.",
        quiet.join(", ")
    ));
    for (name, why) in refused.iter().filter(|(n, _)| rows.iter().any(|r| r.name == **n)) {
        out.push(format!("- {name}: NOT RUN: {why}"));
    }
    out.join("\n")
}
