//! A real Envoy process for end-to-end tests: started from a YAML text on OS-picked ports, asked
//! for its ports and stats through the admin API, killed on `Drop` (printing the end of its log
//! when the test is failing).
#![allow(dead_code)]

use super::http;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// How long Envoy may take to become LIVE (V8 compiles the module first; the machine is shared).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines shown when a test fails.
const LOG_TAIL: usize = 200;

/// Text in Envoy's log that shows a wasm VM failed: a Rust panic (`panicked at`), a trap
/// (`Uncaught RuntimeError`, in a `proxy_on_*` callback), a module or plugin that failed to load,
/// or Envoy giving up on (or reloading) the VM (`Wasm VM failed`, `Plugin configured to fail`).
/// Matched anywhere in a line, case-sensitively.
pub const WASM_FAILURE_MARKS: [&str; 7] = [
    "panicked",
    "Uncaught",
    "Function: proxy_on_",
    "failed to load",
    "Plugin configured to fail",
    "wasm vm",
    "VM failed",
];

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    dir: TempDir,
    port: u16,
    admin_port: u16,
    launch: Launch,
}

/// How Envoy is run: under a command (a profiler such as valgrind) or not, and how long it may
/// take to start and to stop.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The command and arguments Envoy's command line is appended to; empty: Envoy itself.
    pub wrapper: Vec<String>,
    pub start_timeout: Duration,
    /// How long a stopped Envoy has to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch { wrapper: Vec::new(), start_timeout: START_TIMEOUT, stop_grace: Duration::from_secs(1) }
    }
}

impl Envoy {
    /// Starts Envoy with this config and `concurrency` workers and waits until it is LIVE and its
    /// listener is bound. The config's admin and listener may use port 0. Panics (with Envoy's
    /// log) when it does not come up.
    pub fn start(config_yaml: &str, concurrency: u32) -> Envoy {
        Envoy::try_start(config_yaml, concurrency).unwrap_or_else(|why| panic!("{why}"))
    }

    /// As `start`, but a config Envoy refuses is an `Err` with why and the end of Envoy's log
    /// (Envoy is stopped by then): for tests that expect the refusal.
    pub fn try_start(config_yaml: &str, concurrency: u32) -> Result<Envoy, String> {
        Envoy::try_start_with(config_yaml, concurrency, Launch::default())
    }

    /// As `try_start`, run as `launch` says.
    pub fn try_start_with(config_yaml: &str, concurrency: u32, launch: Launch) -> Result<Envoy, String> {
        let bin = super::envoy_bin()?;
        let dir = TempDir::new("envoy");
        let config = dir.write("envoy.yaml", config_yaml);
        let address_file = dir.path().join("admin-address");
        let mut command = match launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = command
            .arg("-c")
            .arg(&config)
            .args(["--disable-hot-restart", "--concurrency", &concurrency.to_string()])
            .arg("--log-path")
            .arg(dir.path().join("envoy.log"))
            .args(["-l", "info", "--component-log-level", "wasm:debug,jwt:debug"])
            // Flush the log file often: a test reads it while Envoy runs, and a kill loses the buffer.
            .args(["--file-flush-interval-msec", "50"])
            // Log timestamps are local time: UTC, so a test can read them (`log_time`).
            .env("TZ", "UTC")
            .arg("--admin-address-path")
            .arg(&address_file)
            .stdin(Stdio::null())
            .stdout(dir.create("stdout.log"))
            .stderr(dir.create("stderr.log"))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut envoy = Envoy { child, dir, port: 0, admin_port: 0, launch };
        let started = envoy.wait_live(&address_file).and_then(|()| {
            envoy.listener_port().ok_or_else(|| "no bound listener in /listeners".to_string())
        });
        match started {
            Ok(port) => {
                envoy.port = port;
                Ok(envoy)
            }
            Err(why) => {
                // Stopped first, so the log read next is complete.
                terminate_within(&mut envoy.child, envoy.launch.stop_grace);
                Err(envoy.failure(&why))
            }
        }
    }

    fn wait_live(&mut self, address_file: &Path) -> Result<(), String> {
        let deadline = Instant::now() + self.launch.start_timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Envoy exited during start-up ({status})"));
            }
            if self.admin_port == 0 {
                self.admin_port = fs::read_to_string(address_file)
                    .ok()
                    .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
                    .unwrap_or(0);
            }
            let live = self.admin_port != 0
                && self.admin("/ready").is_ok_and(|r| r.status == 200 && r.body.trim() == "LIVE");
            if live {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("Envoy not LIVE after {:?}", self.launch.start_timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first listener's bound port, from `/listeners?format=json`.
    fn listener_port(&self) -> Option<u16> {
        let listeners = self.admin("/listeners?format=json").ok()?.json();
        bound_port(listeners.pointer("/listener_statuses/0")?)
    }

    /// The bound port of the listener named `name` (for configs with several listeners); panics
    /// when there is none.
    pub fn listener(&self, name: &str) -> u16 {
        let listeners = self.admin("/listeners?format=json").unwrap_or_else(|e| self.fail(&e)).json();
        let statuses = listeners["listener_statuses"].as_array().cloned().unwrap_or_default();
        statuses
            .iter()
            .find(|l| l["name"] == name)
            .and_then(bound_port)
            .unwrap_or_else(|| self.fail(&format!("no bound listener {name:?} in {listeners}")))
    }

    /// Panics with the message and the end of Envoy's log (Drop then kills it).
    fn fail(&self, why: &str) -> ! {
        panic!("{}", self.failure(why));
    }

    /// The message and the end of Envoy's log.
    fn failure(&self, why: &str) -> String {
        format!("{why}\n--- Envoy log (last {LOG_TAIL} lines) ---\n{}", tail(&self.log(), LOG_TAIL))
    }

    /// The listener's port (HTTP).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The process id (for its CPU time and memory in /proc; the benchmark reads them).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A GET on the admin API.
    pub fn admin(&self, path: &str) -> Result<http::Response, String> {
        http::request(self.admin_port, "GET", path, &[])
    }

    /// Every counter and gauge (histograms and text readouts are left out).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let body = self.admin("/stats").unwrap_or_else(|e| self.fail(&format!("/stats: {e}"))).body;
        body.lines()
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(name, value)| Some((name.to_string(), value.trim().parse().ok()?)))
            .collect()
    }

    /// One counter or gauge by its full name, e.g. `http.ingress_http.jwt_authn.allowed`.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats().get(name).copied()
    }

    /// How many downstream connections `worker` (one of `super::WORKERS`) has accepted, over all
    /// listeners.
    pub fn connections_served(&self, worker: &str) -> u64 {
        connections_of(&self.stats(), worker)
    }

    /// Runs `request` (one request on a connection of its own, nothing else reaching the
    /// listeners meanwhile) and says which of `super::WORKERS` (its index) accepted the connection.
    pub fn worker_serving<T>(&self, request: impl FnOnce() -> T) -> (usize, T) {
        let served = || {
            let stats = self.stats();
            super::WORKERS.map(|w| connections_of(&stats, w))
        };
        let before = served();
        let result = request();
        let after = served();
        let moved: Vec<usize> = (0..before.len()).filter(|&i| after[i] != before[i]).collect();
        match moved[..] {
            [worker] => (worker, result),
            _ => self.fail(&format!("not exactly one worker took the connection: {moved:?}")),
        }
    }

    /// Sends `request` (one request on a connection of its own, nothing else reaching the listeners
    /// meanwhile) again and again until each of `super::WORKERS` has adopted keys the filter
    /// published at `published` (its log line's stamp), which each worker does on its own tick: a
    /// worker answers `before` until it has, `after` from then on (a status, and the body unless
    /// `None`). Anything else fails at once, and so does `before` for a request sent `ADOPTION`
    /// after `published` or later: the worker had not adopted the keys when it decided.
    pub fn until_every_worker_answers(
        &self,
        published: SystemTime,
        mut request: impl FnMut() -> http::Response,
        before: (u16, Option<&str>),
        after: (u16, Option<&str>),
    ) {
        let is = |r: &http::Response, (status, body): (u16, Option<&str>)| {
            r.status == status && body.is_none_or(|b| b == r.body)
        };
        let workers = super::WORKERS;
        let (mut adopted, mut last_before) = ([false; super::WORKERS.len()], None);
        // Only a guard against a hang: a worker answering `before` fails after `ADOPTION`.
        let everywhere = super::wait_until(ADOPTION + Duration::from_secs(10), || {
            let (worker, (at, r)) = self.worker_serving(|| (SystemTime::now(), request()));
            let late = at.duration_since(published).unwrap_or_default();
            if is(&r, after) {
                adopted[worker] = true;
            } else if !adopted[worker] && is(&r, before) && late < ADOPTION {
                last_before = Some(late);
            } else {
                let why = format!(
                    "{} answered {} {} to a request sent {late:?} after the keys were published \
                     (adopted: {adopted:?})",
                    workers[worker], r.status, r.body
                );
                self.fail(&why);
            }
            adopted.iter().all(|a| *a)
        });
        if !everywhere {
            self.fail(&format!("not every worker took a request: {adopted:?} of {workers:?}"));
        }
        match last_before {
            Some(late) => eprintln!(
                "every worker adopted the keys; one still had the old ones {late:?} after the publish"
            ),
            None => eprintln!("every worker had adopted the keys before the first request"),
        }
    }

    /// Runs `checks` (a few requests, each on its own connection) again until each of
    /// `super::WORKERS` has served some of the connections made since this call, at most
    /// `MAX_ROUNDS` rounds, and returns the number of rounds. The kernel spreads connections over
    /// the workers at random, so a short sequence can land on one worker only.
    pub fn on_both_workers(&self, mut checks: impl FnMut()) -> usize {
        let workers = super::WORKERS;
        let before = workers.map(|w| self.connections_served(w));
        for round in 1..=MAX_ROUNDS {
            checks();
            if workers.iter().zip(before).all(|(w, before)| self.connections_served(w) > before) {
                return round;
            }
        }
        panic!("{MAX_ROUNDS} rounds of checks never reached both workers")
    }

    /// Evidence that a wasm VM failed: log lines with one of `WASM_FAILURE_MARKS`, and non-zero
    /// `vm_reload*` counters. Empty when healthy. With `FAIL_CLOSED` a failed VM changes no stat (it
    /// only answers 503), so the log is the witness; with `FAIL_RELOAD` the reload counters count
    /// failures too.
    pub fn wasm_failures(&self) -> Vec<String> {
        let lines = self.wasm_failure_lines().into_iter();
        let reloads = self
            .stats()
            .into_iter()
            .filter(|(name, value)| name.starts_with("wasm.") && name.contains(".vm_reload") && *value > 0)
            .map(|(name, value)| format!("{name}: {value}"));
        lines.chain(reloads).collect()
    }

    /// Panics with the evidence when `wasm_failures` finds any.
    pub fn assert_no_wasm_failures(&self) {
        let failures = self.wasm_failures();
        assert!(failures.is_empty(), "wasm VM failures:\n{}", failures.join("\n"));
    }

    /// The log lines with one of `WASM_FAILURE_MARKS`.
    pub fn wasm_failure_lines(&self) -> Vec<String> {
        let log = self.log();
        log.lines().filter(|l| WASM_FAILURE_MARKS.iter().any(|m| l.contains(m))).map(String::from).collect()
    }

    /// Envoy's log so far (its log file, then anything it wrote to stdout and stderr).
    pub fn log(&self) -> String {
        ["envoy.log", "stdout.log", "stderr.log"]
            .iter()
            .map(|f| fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("")
    }

    /// Runs `envoy --mode validate` on a config: `Err` with Envoy's output when it is refused.
    pub fn validate(config_yaml: &str) -> Result<(), String> {
        let bin = super::envoy_bin()?;
        let dir = TempDir::new("validate");
        let config = dir.write("envoy.yaml", config_yaml);
        let out = Command::new(&bin)
            .arg("--mode")
            .arg("validate")
            .arg("-c")
            .arg(&config)
            .args(["--disable-hot-restart", "-l", "warn"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() { Ok(()) } else { Err(text) }
    }
}

/// Stops a child process: SIGTERM (Envoy flushes its log and exits within milliseconds), SIGKILL
/// after a second; returns once it has exited. A no-op for a child that exited already (e.g. on a
/// refused config).
pub fn terminate(child: &mut Child) {
    terminate_within(child, Duration::from_secs(1));
}

/// As `terminate`, with SIGKILL after `grace`.
fn terminate_within(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id().to_string();
    let termed =
        Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    let deadline = Instant::now() + grace;
    while termed && Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Envoy {
    fn drop(&mut self) {
        terminate_within(&mut self.child, self.launch.stop_grace);
        if std::thread::panicking() {
            eprintln!("--- Envoy log (last {LOG_TAIL} lines) ---\n{}", tail(&self.log(), LOG_TAIL));
        }
    }
}

/// A minimal proxy-wasm module (ABI 0.2.1) that loads, starts and accepts any configuration, and
/// does nothing else: for `validate` and start-up checks of the wasm template without the real
/// filter (`--mode validate` loads the module, so the template alone cannot be checked). It
/// exports the stream callbacks a filter made with the proxy-wasm SDK has (each returns at once,
/// `Continue`), so Envoy crosses into the VM as often as for a real filter: the benchmark's
/// "no-op wasm" baseline.
pub fn stub_module() -> Vec<u8> {
    const I32: u8 = 0x7f;
    const FUNC: u8 = 0x60;
    let types = [
        vec![FUNC, 0, 0],                     // () -> ()
        vec![FUNC, 1, I32, 1, I32],           // (i32) -> i32
        vec![FUNC, 2, I32, I32, 0],           // (i32, i32) -> ()
        vec![FUNC, 2, I32, I32, 1, I32],      // (i32, i32) -> i32
        vec![FUNC, 3, I32, I32, I32, 1, I32], // (i32, i32, i32) -> i32
        vec![FUNC, 1, I32, 0],                // (i32) -> ()
    ];
    // name, type, body (no locals; `i32.const 1024` for the allocator, `i32.const 1` = true,
    // `i32.const 0` = Action::Continue)
    let functions: [(&str, u8, &[u8]); 10] = [
        ("proxy_abi_version_0_2_1", 0, &[0x0b]),
        ("proxy_on_memory_allocate", 1, &[0x41, 0x80, 0x08, 0x0b]),
        ("proxy_on_context_create", 2, &[0x0b]),
        ("proxy_on_vm_start", 3, &[0x41, 0x01, 0x0b]),
        ("proxy_on_configure", 3, &[0x41, 0x01, 0x0b]),
        ("proxy_on_request_headers", 4, &[0x41, 0x00, 0x0b]),
        ("proxy_on_response_headers", 4, &[0x41, 0x00, 0x0b]),
        ("proxy_on_done", 1, &[0x41, 0x01, 0x0b]),
        ("proxy_on_log", 5, &[0x0b]),
        ("proxy_on_delete", 5, &[0x0b]),
    ];
    let mut exports = Vec::new();
    for (i, (name, _, _)) in functions.iter().enumerate() {
        exports.push([wasm_name(name), vec![0x00, i as u8]].concat());
    }
    exports.push([wasm_name("memory"), vec![0x02, 0]].concat());
    let bodies = functions.iter().map(|(_, _, body)| wasm_vec(&[vec![0], body.to_vec()].concat()));
    [
        b"\0asm\x01\0\0\0".to_vec(),
        wasm_section(1, &types),
        wasm_section(3, &functions.iter().map(|(_, t, _)| vec![*t]).collect::<Vec<_>>()),
        wasm_section(5, &[vec![0x00, 2]]), // one memory of two pages: room for the configuration
        wasm_section(7, &exports),
        wasm_section(10, &bodies.collect::<Vec<_>>()),
    ]
    .concat()
}

fn wasm_section(id: u8, items: &[Vec<u8>]) -> Vec<u8> {
    let content = [leb128(items.len()), items.concat()].concat();
    [vec![id], wasm_vec(&content)].concat()
}

/// Bytes prefixed with their length.
fn wasm_vec(bytes: &[u8]) -> Vec<u8> {
    [leb128(bytes.len()), bytes.to_vec()].concat()
}

fn wasm_name(name: &str) -> Vec<u8> {
    wasm_vec(name.as_bytes())
}

fn leb128(n: usize) -> Vec<u8> {
    wasm_exports::leb128(n as u64)
}

/// How soon after the filter published new keys every worker uses them
/// (`Envoy::until_every_worker_answers`): each looks on its tick, every 100 ms; this allows ten.
pub const ADOPTION: Duration = Duration::from_secs(1);

/// Rounds of `Envoy::on_both_workers`. With one request per round, all on one worker by chance is
/// 2 in 2^rounds: 10 rounds did that in about one call in 500 (seen: e2e_oidc's expiry check,
/// all ten on one worker), 30 in one in 500 million.
const MAX_ROUNDS: usize = 30;

/// How many downstream connections `worker` has accepted, over all listeners, in `stats`.
fn connections_of(stats: &BTreeMap<String, u64>, worker: &str) -> u64 {
    let suffix = format!(".{worker}.downstream_cx_total");
    stats.iter().filter(|(n, _)| n.ends_with(&suffix)).map(|(_, v)| v).sum()
}

/// The port of one `listener_statuses` entry of `/listeners?format=json`.
fn bound_port(status: &serde_json::Value) -> Option<u16> {
    let port = status.pointer("/local_address/socket_address/port_value")?;
    port.as_u64().and_then(|p| u16::try_from(p).ok())
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A directory under the system temp dir, removed on drop unless the thread is panicking (then it
/// is kept, and its path printed, for a look at the config and logs).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("jwt-authn-wasm-{what}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    fn create(&self, name: &str) -> fs::File {
        let path = self.0.join(name);
        fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
