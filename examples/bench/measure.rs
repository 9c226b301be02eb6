//! One measurement: wrk (pinned to its own core) against a running Envoy, with Envoy's CPU time
//! from /proc and its request counters from the admin API around it.

use crate::support::envoy::Envoy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Envoy's request counters on the bench listener.
const COUNTERS: &str = "http.ingress_http.downstream_rq_";
/// The token-cache and verification counters a run records, by how their names end (this
/// filter's `wasmcustom.<prefix>provider.<name>.*`, jwt_authn's `http.<prefix>.jwt_authn.*`):
/// how many signatures the filters verified.
pub const VERIFY_COUNTERS: [&str; 4] =
    [".jwt_verified", ".jwt_shared_hit", ".jwt_cache_miss", ".jwt_cache_hit"];

/// How the load generator runs.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// `bench/wrk-tokens.lua`.
    #[serde(skip)]
    pub script: PathBuf,
    pub threads: u32,
    pub connections: u32,
    /// Every wrk thread starts at the first token (`spread`), instead of each at its own place.
    pub in_step: bool,
    /// The core wrk runs on (`taskset -c`), when pinning.
    pub cpu: Option<u32>,
}

/// What `bench/wrk-tokens.lua` prints in `done()`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrkResult {
    pub requests: u64,
    pub duration_us: u64,
    pub non2xx: u64,
    pub first_non2xx_status: u16,
    pub errors: WrkErrors,
    pub latency_us: Latency,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrkErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub status: u64,
    pub timeout: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

impl WrkResult {
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// Why this run cannot count, if it cannot: any answer outside 2xx, any timeout or socket error.
    fn invalid(&self) -> Option<String> {
        let e = &self.errors;
        if self.non2xx > 0 {
            Some(format!(
                "{} of {} answers not 2xx (first: {})",
                self.non2xx, self.requests, self.first_non2xx_status
            ))
        } else if e.connect + e.read + e.write + e.timeout > 0 {
            Some(format!(
                "socket errors: connect {} read {} write {} timeout {}",
                e.connect, e.read, e.write, e.timeout
            ))
        } else if self.requests == 0 {
            Some("no request answered".into())
        } else {
            None
        }
    }
}

/// Runs wrk for `secs` seconds against `port`, each request with the next token of `tokens`.
/// `start`: where the threads begin in the token list (`second-half` for a warm-up, so the run
/// measured after it does not begin with the tokens it just sent); `in_step` loads take none.
pub fn wrk(
    load: &Load,
    port: u16,
    tokens: &Path,
    secs: u32,
    start: Option<&str>,
) -> Result<WrkResult, String> {
    let mut cmd = match load.cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    cmd.arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{secs}s"))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(&load.script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg("--")
        .arg(tokens);
    match (load.in_step, start) {
        (true, _) => cmd.arg("in-step"),
        (false, Some(start)) => cmd.arg(start),
        (false, None) => &mut cmd,
    };
    let out = cmd.output().map_err(|e| format!("cannot run wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("BENCH_RESULT ")).ok_or_else(|| {
        format!(
            "wrk printed no BENCH_RESULT ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    serde_json::from_str(line).map_err(|e| format!("wrk result {line:?}: {e}"))
}

/// Envoy's user + system CPU time so far, in seconds (all threads: /proc/PID/stat fields 14, 15).
pub fn cpu_seconds(pid: u32, ticks_per_sec: u64) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may hold spaces and parentheses: count fields after its `)`.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |n: usize| -> Result<u64, String> {
        fields.get(n - 3).and_then(|f| f.parse().ok()).ok_or_else(|| format!("{path}: no field {n}"))
    };
    Ok((field(14)? + field(15)?) as f64 / ticks_per_sec as f64)
}

/// Envoy's resident set size in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

/// The clock ticks per second of /proc times (`getconf CLK_TCK`; 100 on Linux when it fails).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// One measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Envoy CPU seconds in the window.
    pub envoy_cpu_s: f64,
    /// Requests Envoy answered in the window, and how many of them outside 2xx (its own counters).
    pub envoy_requests: u64,
    pub envoy_non2xx: u64,
    /// How far each of `VERIFY_COUNTERS` Envoy shows moved in the window, by full name.
    pub counters: BTreeMap<String, u64>,
    pub wrk: WrkResult,
    /// `None` when the run counts; else why not.
    pub invalid: Option<String>,
}

impl Sample {
    pub fn cpu_us_per_request(&self) -> f64 {
        self.envoy_cpu_s * 1e6 / self.envoy_requests.max(1) as f64
    }

    /// Envoy's CPU use over the window (1.0: one core busy all the time).
    pub fn envoy_cpu_share(&self) -> f64 {
        self.envoy_cpu_s / (self.wrk.duration_us.max(1) as f64 / 1e6)
    }
}

/// Warms up for `warmup` seconds (JWKS fetch, V8 tier-up, caches; not counted but checked),
/// then measures `secs` seconds.
pub fn sample(
    envoy: &Envoy,
    load: &Load,
    tokens: &Path,
    warmup: u32,
    secs: u32,
    ticks: u64,
) -> Result<Sample, String> {
    if warmup > 0 {
        let w = wrk(load, envoy.port(), tokens, warmup, Some("second-half"))?;
        if let Some(why) = w.invalid() {
            return Ok(Sample {
                envoy_cpu_s: 0.0,
                envoy_requests: 0,
                envoy_non2xx: 0,
                counters: BTreeMap::new(),
                wrk: w,
                invalid: Some(format!("in warm-up: {why}")),
            });
        }
    }
    let before = Answered::read(envoy)?;
    let cpu0 = cpu_seconds(envoy.pid(), ticks)?;
    let w = wrk(load, envoy.port(), tokens, secs, None)?;
    let cpu1 = cpu_seconds(envoy.pid(), ticks)?;
    let after = Answered::read(envoy)?;
    let (requests, non2xx) = (after.completed - before.completed, after.non2xx - before.non2xx);
    let invalid = w.invalid().or_else(|| {
        (non2xx > 0).then(|| format!("Envoy answered {non2xx} of {requests} requests outside 2xx"))
    });
    let counters = after.moved_since(&before);
    Ok(Sample {
        envoy_cpu_s: cpu1 - cpu0,
        envoy_requests: requests,
        envoy_non2xx: non2xx,
        counters,
        wrk: w,
        invalid,
    })
}

/// Envoy's answered requests so far, how many of them were not 2xx, and the `VERIFY_COUNTERS`.
pub struct Answered {
    pub completed: u64,
    pub non2xx: u64,
    pub verify: BTreeMap<String, u64>,
}

impl Answered {
    pub fn read(envoy: &Envoy) -> Result<Answered, String> {
        let body = envoy.admin("/stats")?.body;
        let stats: BTreeMap<&str, u64> = body
            .lines()
            .filter_map(|l| l.split_once(": ").and_then(|(n, v)| Some((n, v.trim().parse().ok()?))))
            .collect();
        let value = |name: &str| stats.get(format!("{COUNTERS}{name}").as_str()).copied();
        let completed =
            value("completed").ok_or_else(|| format!("no {COUNTERS}completed in /stats: {body:?}"))?;
        let non2xx = ["1xx", "3xx", "4xx", "5xx"].iter().map(|class| value(class).unwrap_or(0)).sum();
        let verify = stats
            .iter()
            .filter(|(n, _)| VERIFY_COUNTERS.iter().any(|suffix| n.ends_with(suffix)))
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        Ok(Answered { completed, non2xx, verify })
    }

    /// How far each of `VERIFY_COUNTERS` moved since `before`, by full name.
    pub fn moved_since(&self, before: &Answered) -> BTreeMap<String, u64> {
        self.verify
            .iter()
            .map(|(name, v)| (name.clone(), v.saturating_sub(before.verify.get(name).copied().unwrap_or(0))))
            .collect()
    }
}
