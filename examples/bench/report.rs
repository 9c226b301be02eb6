//! The machine, the runs, their medians and ratios, the printed tables and `bench/results.json`.

use crate::measure::Sample;
use crate::setup::{self, Modules, Tokens, Variant, Workload};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Where the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub envoy_bin: String,
    pub envoy_version: String,
    pub envoy_build: String,
    pub wasm_path: String,
    /// `None` when the module is not built.
    pub wasm_bytes: Option<u64>,
    pub noop_wasm_bytes: Option<u64>,
    pub git: String,
    pub envoy_cpu: Option<u32>,
    pub load_cpu: Option<u32>,
    pub started_utc: String,
    pub finished_utc: String,
    /// /proc/loadavg at the start and the end: other work on the machine shows here.
    pub loadavg_start: String,
    pub loadavg_end: String,
}

impl Machine {
    pub fn probe(
        envoy_bin: &Path,
        modules: &Modules,
        envoy_cpu: Option<u32>,
        load_cpu: Option<u32>,
    ) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or("unknown".into(), |(_, m)| m.trim().to_string());
        // "envoy  version: <commit>/1.40.0/Clean/RELEASE/BoringSSL"
        let envoy_build = command_output(Command::new(envoy_bin).arg("--version"))
            .split_once("version:")
            .map_or("unknown".into(), |(_, v)| v.trim().to_string());
        let envoy_version = envoy_build.split('/').nth(1).unwrap_or("unknown").to_string();
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            envoy_bin: envoy_bin.display().to_string(),
            envoy_version,
            envoy_build,
            wasm_path: modules.filter.display().to_string(),
            wasm_bytes: std::fs::metadata(&modules.filter).ok().map(|m| m.len()),
            noop_wasm_bytes: std::fs::metadata(&modules.noop).ok().map(|m| m.len()),
            git: command_output(Command::new("git").args([
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "describe",
                "--always",
                "--dirty",
            ])),
            envoy_cpu,
            load_cpu,
            started_utc: String::new(),
            finished_utc: String::new(),
            loadavg_start: String::new(),
            loadavg_end: String::new(),
        }
    }

    pub fn mark_start(&mut self) {
        self.started_utc = utc_now();
        self.loadavg_start = read_trimmed("/proc/loadavg");
    }

    pub fn mark_end(&mut self) {
        self.finished_utc = utc_now();
        self.loadavg_end = read_trimmed("/proc/loadavg");
    }

    fn line(&self) -> String {
        let wasm = self.wasm_bytes.map_or("not built".into(), |b| format!("{b} bytes"));
        format!(
            "{} ({} cores), Linux {}, Envoy {}, filter .wasm {wasm}, git {}, {} → {}, load avg {} → {}",
            self.cpu_model,
            self.cores,
            self.kernel,
            self.envoy_version,
            self.git,
            self.started_utc,
            self.finished_utc,
            first_field(&self.loadavg_start),
            first_field(&self.loadavg_end),
        )
    }
}

fn first_field(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("?")
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn command_output(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

fn utc_now() -> String {
    command_output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
}

/// One measured run, raw.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub round: u32,
    pub variant: &'static str,
    pub alg: &'static str,
    pub tokens: &'static str,
    pub jwks_keys: usize,
    pub cpu_us_per_request: f64,
    pub requests_per_sec: f64,
    pub envoy_cpu_share: f64,
    #[serde(flatten)]
    pub sample: Sample,
}

impl Run {
    pub fn new(
        round: u32,
        variant: &'static str,
        workload: Workload,
        jwks_keys: usize,
        sample: Sample,
    ) -> Run {
        Run {
            round,
            variant,
            alg: workload.alg.name,
            tokens: workload.kind(),
            jwks_keys,
            cpu_us_per_request: sample.cpu_us_per_request(),
            requests_per_sec: sample.wrk.requests_per_sec(),
            envoy_cpu_share: sample.envoy_cpu_share(),
            sample,
        }
    }

    /// A progress line.
    pub fn line(&self) -> String {
        let what = format!(
            "r{} {} {} {} ({} keys)",
            self.round, self.variant, self.alg, self.tokens, self.jwks_keys
        );
        match &self.sample.invalid {
            Some(why) => format!("{what}: INVALID: {why}"),
            None => format!(
                "{what}: {:.1} µs/req, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, Envoy CPU {:.0}%",
                self.cpu_us_per_request,
                self.requests_per_sec,
                ms(self.sample.wrk.latency_us.p50),
                ms(self.sample.wrk.latency_us.p99),
                self.envoy_cpu_share * 100.0
            ),
        }
    }

    /// How far the counters ending in `suffix` moved per request; `None` when Envoy shows no
    /// such counter.
    fn per_request(&self, suffix: &str) -> Option<f64> {
        let mut moved = self.sample.counters.iter().filter(|(n, _)| n.ends_with(suffix)).peekable();
        moved.peek()?;
        Some(moved.map(|(_, v)| *v).sum::<u64>() as f64 / (self.sample.envoy_requests as f64).max(1.0))
    }

    /// The same per distinct token of a `spread` run (each token is sent `SPREAD_SENDS` times).
    fn per_token(&self, suffix: &str) -> Option<f64> {
        self.per_request(suffix).map(|n| n * setup::SPREAD_SENDS as f64)
    }

    fn is(&self, variant: &str, workload: Workload, keys: Option<usize>) -> bool {
        self.variant == variant
            && self.alg == workload.alg.name
            && self.tokens == workload.kind()
            && keys.is_none_or(|k| k == self.jwks_keys)
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Medians over the valid runs of one variant and workload; invalid runs are counted, never
/// averaged in.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub variant: &'static str,
    pub alg: &'static str,
    pub tokens: &'static str,
    pub jwks_keys: Option<usize>,
    pub runs: usize,
    pub valid_runs: usize,
    /// The first reason a run was invalid, if one was.
    pub invalid_reason: Option<String>,
    pub cpu_us_per_request: Option<f64>,
    pub requests_per_sec: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub envoy_cpu_share: Option<f64>,
    /// CPU µs per request over the `none` variant's.
    pub over_none_us: Option<f64>,
    /// CPU per request ÷ jwt_authn's (cache off) and ÷ jwt_authn's with its cache, same workload.
    pub ratio_jwt_authn: Option<f64>,
    pub ratio_jwt_authn_cache: Option<f64>,
    /// `spread` only, per distinct token: this filter's signature verifications
    /// (`jwt_verified`), its hits in the process-wide record (`jwt_shared_hit`), and the
    /// per-worker cache misses (`jwt_cache_miss`, jwt_authn's too). `None`: no such counter.
    pub verified_per_token: Option<f64>,
    pub shared_hits_per_token: Option<f64>,
    pub cache_misses_per_token: Option<f64>,
    /// This filter's signature verifications per request (`jwt_verified`): below 1 on `fresh`
    /// when its caches still hold tokens of an earlier pass over the token list.
    pub verified_per_request: Option<f64>,
}

fn row(runs: &[Run], variant: &'static str, workload: Workload, keys: Option<usize>) -> Row {
    let mine: Vec<&Run> = runs.iter().filter(|r| r.is(variant, workload, keys)).collect();
    let valid: Vec<&Run> = mine.iter().copied().filter(|r| r.sample.invalid.is_none()).collect();
    let med = |f: fn(&Run) -> f64| median(valid.iter().map(|r| f(r)).collect());
    let spread = workload.tokens == Tokens::Spread;
    let per_token = |suffix: &str| match spread {
        true => median(valid.iter().filter_map(|r| r.per_token(suffix)).collect()),
        false => None,
    };
    Row {
        variant,
        alg: workload.alg.name,
        tokens: workload.kind(),
        jwks_keys: keys,
        runs: mine.len(),
        valid_runs: valid.len(),
        invalid_reason: mine.iter().find_map(|r| r.sample.invalid.clone()),
        cpu_us_per_request: med(|r| r.cpu_us_per_request),
        requests_per_sec: med(|r| r.requests_per_sec),
        p50_us: med(|r| r.sample.wrk.latency_us.p50 as f64),
        p99_us: med(|r| r.sample.wrk.latency_us.p99 as f64),
        envoy_cpu_share: med(|r| r.envoy_cpu_share),
        over_none_us: None,
        ratio_jwt_authn: None,
        ratio_jwt_authn_cache: None,
        verified_per_token: per_token(".jwt_verified"),
        shared_hits_per_token: per_token(".jwt_shared_hit"),
        cache_misses_per_token: per_token(".jwt_cache_miss"),
        verified_per_request: median(valid.iter().filter_map(|r| r.per_request(".jwt_verified")).collect()),
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => Some((values.get(n / 2 - 1)? + values.get(n / 2)?) / 2.0),
    }
}

/// The main table's rows (workload-major), with the differences and ratios filled in.
pub fn summarize(runs: &[Run], variants: &[Variant], workloads: &[Workload]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &workload in workloads {
        let group: Vec<Row> = variants.iter().map(|v| row(runs, v.name, workload, None)).collect();
        let cpu_of = |name: &str| group.iter().find(|r| r.variant == name).and_then(|r| r.cpu_us_per_request);
        let (none, native, cached) =
            (cpu_of("none"), cpu_of(setup::JWT_AUTHN.name), cpu_of(setup::JWT_AUTHN_CACHE.name));
        for mut r in group {
            let cpu = r.cpu_us_per_request;
            r.over_none_us = cpu.zip(none).map(|(c, n)| c - n);
            r.ratio_jwt_authn = cpu.zip(native).map(|(c, n)| c / n);
            r.ratio_jwt_authn_cache = cpu.zip(cached).map(|(c, n)| c / n);
            rows.push(r);
        }
    }
    rows
}

/// The key-count rows: per variant, per JWKS size.
pub fn summarize_keys(runs: &[Run], variants: &[Variant], counts: &[usize]) -> Vec<Row> {
    let workload = Workload::new(setup::RS256, Tokens::Fresh);
    variants.iter().flat_map(|v| counts.iter().map(move |&n| row(runs, v.name, workload, Some(n)))).collect()
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

fn valid_cell(r: &Row) -> String {
    let mut s = format!("{}/{}", r.valid_runs, r.runs);
    if r.valid_runs < r.runs {
        s.push_str(" INVALID");
    }
    s
}

/// The main table in Markdown (pasteable into the README), the machine and settings above it,
/// refused variants and invalid runs below it.
pub fn table(
    rows: &[Row],
    refused: &BTreeMap<&'static str, String>,
    machine: &Machine,
    settings: &str,
) -> String {
    let mut out = vec![
        String::new(),
        "Envoy CPU µs per request (median over valid rounds); ratios are CPU per request ÷ jwt_authn's on the same workload.".into(),
        format!("Machine: {}", machine.line()),
        format!("Settings: {settings}"),
        String::new(),
        "| workload | variant | CPU µs/req | +µs over none | × jwt_authn | × jwt_authn-cache | signatures/req | req/s | p50 ms | p99 ms | Envoy CPU | valid |".into(),
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|".into(),
    ];
    for r in rows.iter().filter(|r| !refused.contains_key(r.variant)) {
        out.push(format!(
            "| {} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.alg,
            r.tokens,
            r.variant,
            cell(r.cpu_us_per_request, 1),
            cell(r.over_none_us, 1),
            cell(r.ratio_jwt_authn, 2),
            cell(r.ratio_jwt_authn_cache, 2),
            cell(r.verified_per_request, 2),
            cell(r.requests_per_sec, 0),
            cell(r.p50_us.map(|u| u / 1000.0), 2),
            cell(r.p99_us.map(|u| u / 1000.0), 2),
            cell(r.envoy_cpu_share.map(|s| s * 100.0), 0) + "%",
            valid_cell(r),
        ));
    }
    out.extend(spread_counts(rows, refused));
    out.extend(notes(rows, refused));
    out.join("\n")
}

/// What the `spread` rows' counters say: how many signatures were verified per distinct token.
fn spread_counts(rows: &[Row], refused: &BTreeMap<&'static str, String>) -> Vec<String> {
    let spread: Vec<&Row> = rows
        .iter()
        .filter(|r| r.tokens == "spread" && r.variant != "none" && !refused.contains_key(r.variant))
        .collect();
    if spread.is_empty() {
        return vec![];
    }
    let mut out = vec![
        String::new(),
        format!(
            "spread: {} tokens, each sent {} times in a row over different connections, Envoy with {} workers on one core. Per distinct token (n/a: Envoy shows no such counter):",
            setup::SPREAD_TOKENS,
            setup::SPREAD_SENDS,
            setup::SPREAD_WORKERS
        ),
        String::new(),
        "| variant | signature verifications (`jwt_verified`) | shared-record hits (`jwt_shared_hit`) | per-worker cache misses (`jwt_cache_miss`) |".into(),
        "|---|--:|--:|--:|".into(),
    ];
    let count = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.2}"));
    for r in spread {
        out.push(format!(
            "| {} | {} | {} | {} |",
            r.variant,
            count(r.verified_per_token),
            count(r.shared_hits_per_token),
            count(r.cache_misses_per_token)
        ));
    }
    out
}

/// The key-count table in Markdown.
pub fn keys_table(rows: &[Row], refused: &BTreeMap<&'static str, String>) -> String {
    let mut out = vec![
        String::new(),
        "Fresh RS256 tokens against a JWKS of N keys (the token's kid picks the last one):".into(),
        String::new(),
        "| variant | JWKS keys | CPU µs/req | × 1 key | req/s | p99 ms | valid |".into(),
        "|---|--:|--:|--:|--:|--:|---|".into(),
    ];
    for r in rows.iter().filter(|r| !refused.contains_key(r.variant)) {
        let one_key = rows
            .iter()
            .find(|o| o.variant == r.variant && o.jwks_keys == Some(1))
            .and_then(|o| o.cpu_us_per_request);
        out.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.variant,
            r.jwks_keys.unwrap_or_default(),
            cell(r.cpu_us_per_request, 1),
            cell(r.cpu_us_per_request.zip(one_key).map(|(c, o)| c / o), 2),
            cell(r.requests_per_sec, 0),
            cell(r.p99_us.map(|u| u / 1000.0), 2),
            valid_cell(r),
        ));
    }
    out.extend(notes(rows, refused));
    out.join("\n")
}

fn notes(rows: &[Row], refused: &BTreeMap<&'static str, String>) -> Vec<String> {
    let mut out: Vec<String> = refused
        .iter()
        .filter(|(name, _)| rows.iter().any(|r| r.variant == **name))
        .map(|(name, why)| format!("- {name}: NOT RUN, Envoy refused the config: {why}"))
        .collect();
    out.extend(rows.iter().filter(|r| r.valid_runs < r.runs).map(|r| {
        format!(
            "- {} {} {}: {} of {} runs invalid, e.g. {}",
            r.variant,
            r.alg,
            r.tokens,
            r.runs - r.valid_runs,
            r.runs,
            r.invalid_reason.as_deref().unwrap_or("?")
        )
    }));
    if !out.is_empty() {
        out.insert(0, String::new());
    }
    out
}

/// Envoy's reason for refusing a config, from its `--mode validate` output, without timestamps:
/// the module's own log lines (the filter says what it refused), else Envoy's error and critical
/// lines, else the last lines.
pub fn refusal(log: &str) -> String {
    let mut lines = messages(log, |l| l.contains("wasm log"));
    if lines.is_empty() {
        lines = messages(log, |l| l.contains("[error]") || l.contains("[critical]"));
    }
    if lines.is_empty() {
        lines = log.lines().rev().take(3).collect();
    }
    lines.join(" | ").chars().take(600).collect()
}

/// The messages of the log lines `keep` picks: what follows the last `] ` of each.
fn messages(log: &str, keep: impl Fn(&str) -> bool) -> Vec<&str> {
    log.lines()
        .filter(|l| keep(l))
        .map(|l| l.rsplit_once("] ").map_or(l, |(_, msg)| msg).trim())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Writes `sections` into `file`, keeping the sections of other modes already there.
pub fn write_results(file: &Path, sections: BTreeMap<&str, Value>) -> Result<(), String> {
    let mut all: Map<String, Value> =
        std::fs::read_to_string(file).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    for (name, section) in sections {
        all.insert(name.to_string(), section);
    }
    let text = serde_json::to_string_pretty(&Value::Object(all)).map_err(|e| e.to_string())?;
    std::fs::write(file, text + "\n").map_err(|e| format!("{}: {e}", file.display()))
}
