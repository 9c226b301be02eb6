//! `make bench`: Envoy's CPU per request with this filter against Envoy's native jwt_authn, side
//! by side on one machine (issue 4 §3). Not a test: it measures and reports.
//!
//! ```text
//! cargo run --release --example bench              # table + keys + instructions (the default; ~35 min)
//! cargo run --release --example bench -- table     # the main table (with the `spread` row) only
//! cargo run --release --example bench -- keys      # cost with a JWKS of 1, 10 and 100 keys
//! cargo run --release --example bench -- instructions   # instructions per request (callgrind)
//! cargo run --release --example bench -- rss [VARIANT]   # Envoy's RSS over 1,000,000 fresh tokens
//! cargo run --release --example bench -- ab A.wasm B.wasm  # two builds side by side (ab.rs)
//! ```
//!
//! Envoy 1.40 (`ENVOY_BIN`, else .venv/bin/envoy) runs with one worker (four for `spread`), pinned
//! to core 0 with taskset; wrk (`bench/wrk-tokens.lua`) runs on core 1. The filter is `WASM_PATH`,
//! else the release build. Knobs (env): BENCH_DURATION (s per run, 5), BENCH_WARMUP (s before each
//! run, 1), BENCH_ROUNDS (2), BENCH_CONNECTIONS (8), BENCH_TOKENS (50000), BENCH_ONLY (variant
//! names, comma-separated), BENCH_WORKLOADS (`RS256-repeat`, `fresh`...: the table's one-worker
//! workloads to run, comma-separated), BENCH_SHAPE (`mixed16`: the table's JWKS has 16 keys of mixed kinds,
//! 16 connections), BENCH_SPREAD (0: no `spread` row), BENCH_PIN (0: no taskset),
//! BENCH_RSS_REQUESTS (1000000), BENCH_RSS_CHUNK (s per wrk run in `rss`, 20), BENCH_RSS_MAX (s,
//! 1800: `rss` stops there, reported incomplete), BENCH_CG_REQUESTS (requests counted per
//! `instructions` window, 2000), BENCH_CG_WARMUP (requests before it, 500), BENCH_CG_BUILDS
//! (`label=file.wasm,...`: `instructions`' filter rows once per build, side by side).
//! Results: stdout and `bench/results.json`; tokens go to `bench/out/`.

#[path = "../../tests/support/mod.rs"]
mod support;

mod ab;
mod callgrind;
mod instructions;
mod loads;
mod measure;
mod report;
mod setup;

use callgrind::Credentials;
use measure::{Load, Sample};
use report::{Machine, Run};
use serde_json::{Value, json};
use setup::{Modules, Tokens, Variant, Workload};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use support::envoy::{Envoy, Launch, TempDir};
use support::servers::JwksServer;

/// The JWKS sizes of the `keys` mode.
const KEY_COUNTS: [usize; 3] = [1, 10, 100];
/// The keys of the table's JWKS with `BENCH_SHAPE=mixed16` (the independent bench of issue 9).
const MIXED_KEYS: usize = 16;
/// How long minted tokens stay valid, and how long they must still be valid to be reused: longer
/// than any run, `rss` included.
const TOKEN_TTL_SECS: i64 = 4 * 3600;
const TOKEN_MIN_LEFT_SECS: i64 = 2 * 3600;
/// Envoy's core and the load generator's, when pinning.
/// How long a started Envoy may take to answer a valid token with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const ENVOY_CPU: u32 = 0;
const LOAD_CPU: u32 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("all", String::as_str);
    if matches!(mode, "-h" | "--help" | "help") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match run(mode, args.get(1).map(String::as_str)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("bench: {why}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> &'static str {
    "usage: bench [all | table | keys | instructions | rss [VARIANT] | ab A.wasm B.wasm]   (see examples/bench/main.rs for the knobs)"
}

fn run(mode: &str, arg: Option<&str>) -> Result<(), String> {
    let started = Instant::now();
    if mode != "instructions" && Command::new("wrk").arg("-v").output().is_err() {
        return Err("wrk is not installed: apt-get install -y wrk".into());
    }
    let mut bench = Bench::new()?;
    let mut sections = BTreeMap::new();
    match mode {
        "all" => {
            sections.insert("table", bench.table()?);
            sections.insert("keys", bench.keys()?);
            sections.insert("instructions", bench.instructions()?);
        }
        "instructions" => {
            sections.insert("instructions", bench.instructions()?);
        }
        "table" => {
            sections.insert("table", bench.table()?);
        }
        "keys" => {
            sections.insert("keys", bench.keys()?);
        }
        "ab" => {
            let (Some(a), Some(b)) = (arg, std::env::args().nth(3)) else {
                return Err(usage().into());
            };
            sections.insert("ab", bench.ab(a.into(), b.into())?);
        }
        "rss" => {
            let variant = setup::by_name(arg.unwrap_or(setup::FILTER_DEFAULT.name))?;
            sections.insert("rss", bench.rss(variant)?);
        }
        other => return Err(format!("unknown mode {other:?}\n{}", usage())),
    }
    let file = support::crate_root().join("bench/results.json");
    report::write_results(&file, sections)?;
    println!("\nwrote {} ({} in {:.0} s)", file.display(), mode, started.elapsed().as_secs_f64());
    Ok(())
}

/// The settings from the environment.
#[derive(Debug, Clone, serde::Serialize)]
struct Settings {
    duration_s: u32,
    warmup_s: u32,
    rounds: u32,
    tokens: usize,
    only: Option<Vec<String>>,
    workloads: Option<Vec<String>>,
    rss_requests: u64,
    rss_chunk_s: u32,
    rss_max_s: u64,
    load: Load,
    envoy_cpu: Option<u32>,
    envoy_concurrency: u32,
    /// Keys in the table's JWKS: 2 (the signing keys), or `MIXED_KEYS` with `BENCH_SHAPE=mixed16`.
    table_keys: usize,
    /// Whether the table has the `spread` row.
    spread: bool,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let pin = env_num("BENCH_PIN", 1)? != 0 && can_pin();
        let list = |name: &str| {
            let list = std::env::var(name).ok()?;
            Some(list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        };
        let mixed = match std::env::var("BENCH_SHAPE").unwrap_or_default().as_str() {
            "" => false,
            "mixed16" => true,
            other => return Err(format!("BENCH_SHAPE={other:?}: only mixed16 is known")),
        };
        let connections = if mixed { 16 } else { 8 };
        Ok(Settings {
            duration_s: env_num("BENCH_DURATION", 5)?,
            warmup_s: env_num("BENCH_WARMUP", 1)?,
            rounds: env_num("BENCH_ROUNDS", 2)?.max(1),
            tokens: env_num("BENCH_TOKENS", 50_000)?.max(1),
            only: list("BENCH_ONLY"),
            workloads: list("BENCH_WORKLOADS"),
            rss_requests: env_num("BENCH_RSS_REQUESTS", 1_000_000)?,
            rss_chunk_s: env_num("BENCH_RSS_CHUNK", 20)?.max(1),
            rss_max_s: env_num("BENCH_RSS_MAX", 1800)?,
            load: Load {
                script: support::crate_root().join("bench/wrk-tokens.lua"),
                threads: 1,
                in_step: false,
                connections: env_num("BENCH_CONNECTIONS", connections)?.max(1),
                cpu: pin.then_some(LOAD_CPU),
            },
            envoy_cpu: pin.then_some(ENVOY_CPU),
            envoy_concurrency: 1,
            table_keys: if mixed { MIXED_KEYS } else { 2 },
            spread: env_num("BENCH_SPREAD", 1)? != 0,
        })
    }

    /// The table's one-worker workloads `BENCH_WORKLOADS` names (`RS256-repeat` or a kind such as
    /// `repeat`), all by default.
    fn selected_workloads(&self) -> Vec<Workload> {
        let named = |w: &Workload| {
            let full = format!("{}-{}", w.alg.name, w.kind());
            self.workloads.as_ref().is_none_or(|names| names.iter().any(|n| *n == full || n == w.kind()))
        };
        setup::workloads().into_iter().filter(named).collect()
    }

    fn selected(&self, variants: &[Variant]) -> Vec<Variant> {
        variants
            .iter()
            .copied()
            .filter(|v| self.only.as_ref().is_none_or(|names| names.iter().any(|n| n == v.name)))
            .collect()
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// Pinning needs taskset and two cores.
fn can_pin() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores >= 2 && runs(Command::new("taskset").arg("-V"))
}

fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Everything the measurements share: settings, modules, the JWKS server, the token files.
struct Bench {
    settings: Settings,
    machine: Machine,
    modules: Modules,
    /// Holds the no-op module's file.
    _scratch: TempDir,
    jwks: JwksServer,
    token_dir: PathBuf,
    minting_s: Vec<(&'static str, f64)>,
    ticks: u64,
    /// Variants whose config Envoy refused, with its reason (checked once each).
    refused: BTreeMap<&'static str, String>,
    checked: Vec<&'static str>,
}

impl Bench {
    fn new() -> Result<Bench, String> {
        let settings = Settings::from_env()?;
        let envoy_bin = support::envoy_bin()?;
        let scratch = TempDir::new("bench");
        let noop = scratch.path().join("noop.wasm");
        std::fs::write(&noop, support::envoy::stub_module())
            .map_err(|e| format!("{}: {e}", noop.display()))?;
        let modules = Modules { filter: support::wasm_path(), noop };
        let machine = Machine::probe(&envoy_bin, &modules, settings.envoy_cpu, settings.load.cpu);
        let token_dir = support::crate_root().join("bench/out");
        let minting_s =
            setup::write_tokens(&token_dir, settings.tokens, TOKEN_TTL_SECS, TOKEN_MIN_LEFT_SECS)?;
        for (alg, secs) in &minting_s {
            eprintln!("minted {} {alg} tokens in {secs:.1} s", settings.tokens);
        }
        if minting_s.is_empty() {
            eprintln!("reusing the tokens in {}", token_dir.display());
        }
        // Off Envoy's core from here on (minting used every core).
        if let Some(cpu) = settings.load.cpu {
            let me = std::process::id().to_string();
            runs(Command::new("taskset").args(["-a", "-p", "-c", &cpu.to_string(), &me]));
        }
        Ok(Bench {
            settings,
            machine,
            modules,
            _scratch: scratch,
            jwks: JwksServer::new(&setup::jwks()),
            token_dir,
            minting_s,
            ticks: measure::clock_ticks(),
            refused: BTreeMap::new(),
            checked: Vec::new(),
        })
    }

    /// Starts Envoy for `variant` with `jwks` behind the idp cluster and `workers` worker threads;
    /// `None` (reason kept in `refused`) when the variant cannot run.
    fn start(&mut self, variant: Variant, jwks: &str, workers: u32) -> Result<Option<Envoy>, String> {
        let yaml = variant.yaml(self.jwks.port(), &self.modules);
        let module = variant.needs_filter().then(|| self.modules.filter.clone());
        let ready = self.bearer_ready();
        self.start_config(variant.name, &yaml, module.as_deref(), jwks, workers, Launch::default(), &ready)
    }

    /// A request a ready Envoy answers 200 in every variant but DPoP's: the repeat RS256 token.
    fn bearer_ready(&self) -> impl Fn(u16) -> Result<Credentials, String> + use<> {
        let repeat = Workload::new(setup::RS256, Tokens::Repeat);
        let token = std::fs::read_to_string(repeat.tokens_file(&self.token_dir)).unwrap_or_default();
        move |_| Ok(Credentials::bearer(token.trim()))
    }

    /// Starts Envoy with `yaml` (which loads `module`, if any) under the name `name`, as `launch`
    /// says, with `jwks` behind the idp cluster, and waits until it answers `ready`'s request
    /// (given its port) with 200; `None` (reason kept in `refused`) when Envoy refuses the config
    /// (checked once per name).
    #[allow(clippy::too_many_arguments)]
    fn start_config(
        &mut self,
        name: &'static str,
        yaml: &str,
        module: Option<&Path>,
        jwks: &str,
        workers: u32,
        launch: Launch,
        ready: &dyn Fn(u16) -> Result<Credentials, String>,
    ) -> Result<Option<Envoy>, String> {
        if let Some(why) = self.refused.get(name) {
            eprintln!("  {name}: skipped ({why})");
            return Ok(None);
        }
        if !self.checked.contains(&name) {
            self.checked.push(name);
            if let Err(why) = check(module, yaml) {
                eprintln!("  {name}: REFUSED: {why}");
                self.refused.insert(name, why);
                return Ok(None);
            }
        }
        self.jwks.set_body(jwks);
        // Under a profiler start-up and the first requests take minutes, not seconds.
        let ready_timeout = if launch.wrapper.is_empty() { READY_TIMEOUT } else { launch.start_timeout };
        let envoy = Envoy::try_start_with(yaml, workers, launch)?;
        // Per-request debug logging would be measured too: quiet every logger after start-up.
        let quiet = support::http::request(envoy.admin_port(), "POST", "/logging?level=warning", &[])?;
        if quiet.status != 200 {
            return Err(format!("admin /logging answered {}: {}", quiet.status, quiet.body));
        }
        if let Some(cpu) = self.settings.envoy_cpu {
            let pid = envoy.pid().to_string();
            let pinned = runs(Command::new("taskset").args(["-a", "-p", "-c", &cpu.to_string(), &pid]));
            if !pinned {
                return Err(format!("taskset could not pin Envoy ({pid}) to core {cpu}"));
            }
        }
        wait_ready(&envoy, name, ready_timeout, ready);
        Ok(Some(envoy))
    }

    fn measure(
        &self,
        envoy: &Envoy,
        round: u32,
        variant: Variant,
        workload: Workload,
        keys: usize,
    ) -> Result<Run, String> {
        let tokens = workload.tokens_file(&self.token_dir);
        let s = &self.settings;
        let mut load = s.load.clone();
        if workload.tokens == Tokens::Spread {
            load.threads = setup::SPREAD_SENDS as u32;
            load.connections = setup::SPREAD_CONNECTIONS;
            load.in_step = true;
        }
        let sample = measure::sample(envoy, &load, &tokens, s.warmup_s, s.duration_s, self.ticks)?;
        let run = Run::new(round, variant.name, workload, keys, sample);
        eprintln!("  {}", run.line());
        Ok(run)
    }

    fn refused_json(&self) -> Value {
        json!(self.refused)
    }

    /// The main table: every selected variant × every workload, interleaved over the rounds
    /// (round order alternates, so no variant always runs first or last); then, in the same
    /// round, the `spread` workload on an Envoy with `SPREAD_WORKERS` workers for its variants.
    fn table(&mut self) -> Result<Value, String> {
        // Naming variants in BENCH_ONLY may add `filter` (the defaults) to the table.
        let variants = match self.settings.only {
            Some(_) => self.settings.selected(&setup::ALL),
            None => setup::TABLE.to_vec(),
        };
        let workloads = self.settings.selected_workloads();
        let spreading = match self.settings.spread {
            true => self.settings.selected(&setup::spread_variants()),
            false => vec![],
        };
        self.estimate("table", variants.len() * workloads.len() + spreading.len());
        let keys = self.settings.table_keys;
        let jwks = if keys == MIXED_KEYS { setup::jwks_mixed(keys) } else { setup::jwks() };
        let mut runs = Vec::new();
        self.machine.mark_start();
        for round in 1..=self.settings.rounds {
            eprintln!("table: round {round}/{}", self.settings.rounds);
            for variant in in_round_order(&variants, round) {
                if let Some(envoy) = self.start(variant, &jwks, self.settings.envoy_concurrency)? {
                    for &workload in &workloads {
                        runs.push(self.measure(&envoy, round, variant, workload, keys)?);
                    }
                }
                if !spreading.contains(&variant) {
                    continue;
                }
                if let Some(envoy) = self.start(variant, &jwks, setup::SPREAD_WORKERS)? {
                    runs.push(self.measure(&envoy, round, variant, setup::SPREAD, keys)?);
                }
            }
        }
        self.machine.mark_end();
        let mut rows = report::summarize(&runs, &variants, &workloads);
        rows.extend(report::summarize(&runs, &spreading, &[setup::SPREAD]));
        println!("{}", report::table(&rows, &self.refused, &self.machine, &self.settings_line()));
        Ok(json!({
            "machine": self.machine,
            "settings": self.settings,
            "minting_s": self.minting_s,
            "refused": self.refused_json(),
            "summary": rows,
            "runs": runs,
        }))
    }

    /// Fresh RS256 tokens against a JWKS of 1, 10 and 100 keys (the token's kid picks the last),
    /// for the filter as configured by default and for jwt_authn.
    fn keys(&mut self) -> Result<Value, String> {
        let variants = self.settings.selected(&[setup::JWT_AUTHN, setup::FILTER_DEFAULT]);
        let workload = Workload::new(setup::RS256, Tokens::Fresh);
        self.estimate("keys", variants.len() * KEY_COUNTS.len());
        let mut runs = Vec::new();
        self.machine.mark_start();
        for round in 1..=self.settings.rounds {
            eprintln!("keys: round {round}/{}", self.settings.rounds);
            for variant in in_round_order(&variants, round) {
                for count in KEY_COUNTS {
                    let workers = self.settings.envoy_concurrency;
                    let Some(envoy) = self.start(variant, &setup::jwks_with(count), workers)? else {
                        break;
                    };
                    runs.push(self.measure(&envoy, round, variant, workload, count)?);
                }
            }
        }
        self.machine.mark_end();
        let rows = report::summarize_keys(&runs, &variants, &KEY_COUNTS);
        println!("{}", report::keys_table(&rows, &self.refused));
        Ok(json!({
            "machine": self.machine,
            "settings": self.settings,
            "refused": self.refused_json(),
            "summary": rows,
            "runs": runs,
        }))
    }

    /// Envoy's RSS before and after `BENCH_RSS_REQUESTS` fresh RS256 requests through `variant`,
    /// sampled after every wrk run of `BENCH_RSS_CHUNK` seconds.
    fn rss(&mut self, variant: Variant) -> Result<Value, String> {
        let tokens = Workload::new(setup::RS256, Tokens::Fresh).tokens_file(&self.token_dir);
        self.machine.mark_start();
        let Some(envoy) = self.start(variant, &setup::jwks(), self.settings.envoy_concurrency)? else {
            let why = self.refused.get(variant.name).cloned().unwrap_or_default();
            return Err(format!("{} cannot run: {why}", variant.name));
        };
        let s = &self.settings;
        // One pass over the token set first, so start-up allocations are not counted as growth.
        let warm = measure::sample(&envoy, &s.load, &tokens, s.warmup_s, s.duration_s, self.ticks)?;
        if let Some(why) = warm.invalid {
            return Err(format!("{} in warm-up: {why}", variant.name));
        }
        let before = measure::rss_kib(envoy.pid())?;
        eprintln!("rss: {} before: {before} KiB", variant.name);
        let (mut served, mut points, mut chunks) = (0u64, Vec::new(), Vec::<Sample>::new());
        let deadline = Instant::now() + Duration::from_secs(s.rss_max_s);
        while served < s.rss_requests && Instant::now() < deadline {
            let chunk = measure::sample(&envoy, &s.load, &tokens, 0, s.rss_chunk_s, self.ticks)?;
            served += chunk.envoy_requests;
            let rss = measure::rss_kib(envoy.pid())?;
            eprintln!(
                "  {served} requests: {rss} KiB, {:.1} µs/req{}",
                chunk.cpu_us_per_request(),
                chunk.invalid.as_deref().map_or(String::new(), |w| format!(", INVALID: {w}"))
            );
            points.push(json!({"requests": served, "rss_kib": rss}));
            let stalled = chunk.envoy_requests == 0;
            chunks.push(chunk);
            if stalled {
                break;
            }
        }
        self.machine.mark_end();
        let after = measure::rss_kib(envoy.pid())?;
        let invalid = chunks.iter().filter(|c| c.invalid.is_some()).count();
        let growth = after as f64 / before.max(1) as f64;
        let complete = served >= s.rss_requests;
        if !complete {
            println!(
                "\nINCOMPLETE: {served} of {} requests in BENCH_RSS_MAX={} s",
                s.rss_requests, s.rss_max_s
            );
        }
        println!(
            "\nRSS of Envoy with {} over {served} fresh RS256 requests: {before} KiB before, {after} KiB after ({:+.1}%); {invalid} of {} wrk runs invalid",
            variant.name,
            (growth - 1.0) * 100.0,
            chunks.len()
        );
        Ok(json!({
            "machine": self.machine,
            "settings": self.settings,
            "variant": variant.name,
            "requests": served,
            "complete": complete,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "growth": growth,
            "invalid_chunks": invalid,
            "points": points,
            "chunks": chunks,
        }))
    }

    /// Says how long `runs_per_round` runs will take (Envoy start-ups not counted).
    fn estimate(&self, what: &str, runs_per_round: usize) {
        let s = &self.settings;
        let secs = runs_per_round as u64 * u64::from(s.rounds) * u64::from(s.duration_s + s.warmup_s);
        eprintln!(
            "{what}: {runs_per_round} runs × {} rounds × {} s ≈ {:.1} min",
            s.rounds,
            s.duration_s + s.warmup_s,
            secs as f64 / 60.0
        );
    }

    fn settings_line(&self) -> String {
        let s = &self.settings;
        format!(
            "{} round(s) × {} s (+{} s warm-up) per run, wrk -t{} -c{}, Envoy --concurrency {}, JWKS of {} keys; spread: --concurrency {}, -t{} -c{}{}",
            s.rounds,
            s.duration_s,
            s.warmup_s,
            s.load.threads,
            s.load.connections,
            s.envoy_concurrency,
            s.table_keys,
            setup::SPREAD_WORKERS,
            setup::SPREAD_SENDS,
            setup::SPREAD_CONNECTIONS,
            match (s.envoy_cpu, s.load.cpu) {
                (Some(e), Some(l)) => format!(", Envoy on core {e}, wrk on core {l}"),
                _ => ", not pinned".into(),
            }
        )
    }
}

/// Waits until `ready`'s request gets a 200 (the filters fetch the JWKS first), for at most
/// `timeout`. When it never comes the runs go ahead, and the warm-up reports them invalid.
fn wait_ready(
    envoy: &Envoy,
    name: &str,
    timeout: Duration,
    ready: &dyn Fn(u16) -> Result<Credentials, String>,
) {
    let mut last = String::new();
    let answered = support::wait_until(timeout, || {
        let host = format!("127.0.0.1:{}", envoy.port());
        let sent = ready(envoy.port()).and_then(|c| {
            let mut headers = vec![("host", host.as_str()), ("authorization", c.authorization.as_str())];
            headers.extend(c.dpop.as_deref().map(|p| ("dpop", p)));
            support::http::request(envoy.port(), "GET", "/", &headers)
        });
        match sent {
            Ok(r) if r.status == 200 => true,
            Ok(r) => {
                last = format!("{} {}", r.status, r.body.trim());
                false
            }
            Err(e) => {
                last = e;
                false
            }
        }
    });
    if !answered {
        eprintln!("  {name}: no 200 after {timeout:?} (last: {last})");
    }
}

/// Whether Envoy accepts a config (`--mode validate` loads the module and runs its configuration),
/// so a refused variant is reported instead of ending the bench.
fn check(module: Option<&Path>, yaml: &str) -> Result<(), String> {
    if let Some(module) = module.filter(|m| !m.is_file()) {
        return Err(format!("no module at {} (see `make bench` in bench/README.md)", module.display()));
    }
    Envoy::validate(yaml).map_err(|log| report::refusal(&log))
}

/// The variants in this round's order: as listed in odd rounds, reversed in even ones.
fn in_round_order<T: Clone>(variants: &[T], round: u32) -> Vec<T> {
    let mut order = variants.to_vec();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}
