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

use crate::callgrind::{self, Callgrind, Connection};
use crate::measure::Answered;
use crate::setup::{self, Alg, ES256, RS256, Tokens, Workload};
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
/// How long the filter's counters (flushed on its 100 ms tick) are given before they are read.
const SETTLE: Duration = Duration::from_millis(600);
/// The quiet window that counts what Envoy does without requests: as long as Envoy's stats
/// flush interval (5 s by default), so it holds one flush, as every stretch of that length does.
const QUIET: Duration = Duration::from_secs(5);

/// Which tokens the requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// One token again and again.
    Repeat(Alg),
    /// A token never seen before with every request.
    Fresh(Alg),
    /// Two RS256 tokens in turn, with a per-worker cache of one token: every request misses the
    /// worker's cache and finds its token in the process-wide record, where the other token's
    /// request left it: the path of a token another worker verified.
    SharedHit,
}

const REPEAT: &[Load] = &[Load::Repeat(RS256)];
const VERIFYING: &[Load] = &[Load::Repeat(RS256), Load::Fresh(RS256), Load::Fresh(ES256)];
const LOADS: [Load; 4] = [Load::Repeat(RS256), Load::Fresh(RS256), Load::Fresh(ES256), Load::SharedHit];

impl Load {
    fn name(self) -> String {
        match self {
            Load::Repeat(alg) => format!("{}-repeat", alg.name),
            Load::Fresh(alg) => format!("{}-fresh", alg.name),
            Load::SharedHit => "RS256-shared".into(),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Load::Repeat(_) => "repeat",
            Load::Fresh(_) => "fresh",
            Load::SharedHit => "shared",
        }
    }

    fn label(self) -> String {
        match self {
            Load::Repeat(alg) => format!("repeat {}", alg.name),
            Load::Fresh(alg) => format!("fresh {}", alg.name),
            Load::SharedHit => "shared-record hit".into(),
        }
    }

    /// The row and workload its ratio divides by: jwt_authn with its cache and a repeated token
    /// for tokens seen before, jwt_authn without it for tokens never seen.
    fn reference(self) -> (&'static str, Load) {
        match self {
            Load::Fresh(_) => (setup::JWT_AUTHN.name, self),
            Load::Repeat(_) => (setup::JWT_AUTHN_CACHE.name, self),
            Load::SharedHit => (setup::JWT_AUTHN_CACHE.name, Load::Repeat(RS256)),
        }
    }

    /// The tokens of the warm-up and of the counted window, from the bench's token files: fresh
    /// ones from the two ends of the list, so no window token was sent in the warm-up.
    fn tokens(
        self,
        dir: &Path,
        requests: usize,
        warmup: usize,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        let read = |alg: Alg, tokens: Tokens| -> Result<Vec<String>, String> {
            let file = Workload::new(alg, tokens).tokens_file(dir);
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(text.lines().filter(|l| !l.is_empty()).map(String::from).collect())
        };
        let cycled = |list: &[String], n: usize| list.iter().cycle().take(n).cloned().collect::<Vec<_>>();
        let (list, fresh) = match self {
            Load::Repeat(alg) => (read(alg, Tokens::Repeat)?, false),
            Load::Fresh(alg) => (read(alg, Tokens::Fresh)?, true),
            Load::SharedHit => (read(RS256, Tokens::Fresh)?.into_iter().take(2).collect(), false),
        };
        if !fresh {
            return Ok((cycled(&list, warmup.max(list.len())), cycled(&list, requests)));
        }
        if list.len() < requests + warmup {
            return Err(format!(
                "{} tokens for {} + {warmup} fresh requests (BENCH_TOKENS)",
                list.len(),
                requests
            ));
        }
        let (window, rest) = list.split_at(requests);
        Ok((rest.get(rest.len() - warmup..).unwrap_or_default().to_vec(), window.to_vec()))
    }
}

/// How one config authenticates.
#[derive(Debug, Clone, Copy)]
enum Setup {
    NoFilter,
    JwtAuthn {
        cache: bool,
    },
    /// The SDK no-op module (`tests/noop-module`).
    Noop {
        read_header: bool,
        restricted: bool,
    },
    /// This filter; `worker_cache`: its per-worker cache size, when not the default.
    Filter {
        restricted: bool,
        worker_cache: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Row {
    name: &'static str,
    label: &'static str,
    setup: Setup,
    loads: &'static [Load],
}

const fn row(name: &'static str, label: &'static str, setup: Setup, loads: &'static [Load]) -> Row {
    Row { name, label, setup, loads }
}

const ROWS: [Row; 9] = [
    row("none", "no filter", Setup::NoFilter, REPEAT),
    row("jwt_authn", "jwt_authn", Setup::JwtAuthn { cache: false }, VERIFYING),
    row("jwt_authn-cache", "jwt_authn + cache", Setup::JwtAuthn { cache: true }, REPEAT),
    row("noop", "no-op SDK module", Setup::Noop { read_header: false, restricted: false }, REPEAT),
    row(
        "noop-header",
        "no-op, reading one header",
        Setup::Noop { read_header: true, restricted: false },
        REPEAT,
    ),
    row(
        "noop-header-restricted",
        "no-op, reading one header, capability restriction",
        Setup::Noop { read_header: true, restricted: true },
        REPEAT,
    ),
    row("filter", "this filter", Setup::Filter { restricted: false, worker_cache: None }, VERIFYING),
    row(
        "filter-restricted",
        "this filter, capability restriction",
        Setup::Filter { restricted: true, worker_cache: None },
        VERIFYING,
    ),
    row(
        "filter-shared",
        "this filter, worker cache of 1 token",
        Setup::Filter { restricted: false, worker_cache: Some(1) },
        &[Load::SharedHit],
    ),
];

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
    reference: &'static str,
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
        let rows: Vec<Row> = ROWS.iter().copied().filter(|r| self.is_selected(r.name)).collect();
        let noop = noop_module();
        let mut counts = Vec::new();
        self.machine.mark_start();
        for round in 1..=self.settings.rounds {
            eprintln!("instructions: round {round}/{}", self.settings.rounds);
            for row in in_round_order(&rows, round) {
                let module = match row.setup {
                    Setup::Noop { .. } => Some(noop.clone()),
                    Setup::Filter { .. } => Some(self.modules.filter.clone()),
                    _ => None,
                };
                let yaml = self.row_yaml(row, &noop)?;
                let jwks = setup::jwks();
                let Some(envoy) =
                    self.start_config(row.name, &yaml, module.as_deref(), &jwks, 1, cg.launch())?
                else {
                    continue;
                };
                for load in row.loads.iter().copied().filter(|l| self.is_load_selected(*l)) {
                    let count = self.count(&cg, &envoy, &knobs, round, row, load)?;
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

    fn is_selected(&self, name: &str) -> bool {
        self.settings.only.as_ref().is_none_or(|names| names.iter().any(|n| n == name))
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
        row: Row,
        load: Load,
    ) -> Result<Count, String> {
        let (warm, window) = load.tokens(&self.token_dir, knobs.requests, knobs.warmup)?;
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
    fn row_yaml(&self, row: Row, noop: &Path) -> Result<String, String> {
        let filters = match row.setup {
            Setup::NoFilter => vec![],
            Setup::JwtAuthn { cache } => {
                let cache = cache.then(|| json!({"jwt_cache_size": setup::CACHE_SIZE}));
                vec![json!({
                    "name": "envoy.filters.http.jwt_authn",
                    "typed_config": config::native_jwt_authn(&policy(cache)),
                })]
            }
            Setup::Noop { read_header, restricted } => {
                let filter = setup::wasm_filter(noop, if read_header { "read-header" } else { "" });
                vec![restrict(filter, noop, &NOOP_CALLBACKS, restricted)?]
            }
            Setup::Filter { restricted, worker_cache } => {
                let cache = worker_cache.map(|size| json!({"jwt_cache_size": size}));
                let module = &self.modules.filter;
                let filter = setup::wasm_filter(module, &policy(cache).to_string());
                vec![restrict(filter, module, &wasm_exports::FILTER_CALLBACKS, restricted)?]
            }
        };
        Ok(setup::envoy_yaml(filters, self.jwks.port()))
    }
}

/// The policy: the e2e tests' provider with `forward: true`, the default token locations
/// and no outputs; `jwt_cache_config` when given.
fn policy(jwt_cache_config: Option<Value>) -> Value {
    let mut policy = config::corp_policy();
    let provider = &mut policy["providers"][PROVIDER];
    if let Some(fields) = provider.as_object_mut() {
        fields.remove("forward_payload_header");
        fields.remove("claim_to_headers");
        fields.insert("forward".into(), json!(true));
        if let Some(cache) = jwt_cache_config {
            fields.insert("jwt_cache_config".into(), cache);
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
            let (reference, reference_load) = load.reference();
            let base = median_of(reference, &reference_load.name());
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
            "Envoy instructions per request (callgrind; one worker; {} requests over one keep-alive connection after {} unmeasured; median of {rounds} round(s)). Ratios: repeat and shared-record hit ÷ jwt_authn + cache (repeat), fresh ÷ jwt_authn (same algorithm).",
            knobs.requests, knobs.warmup
        ),
        String::new(),
        format!("| config | {} |", LOADS.map(Load::label).join(" | ")),
        "|---|--:|--:|--:|--:|".into(),
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
