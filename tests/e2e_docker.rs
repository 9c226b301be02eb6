//! The demo in Docker, end to end, as `envoy/docker-compose.yaml` and the README run it: Docker
//! Compose (`DOCKER_COMPOSE`, else `.venv/bin/docker-compose`, the standalone Compose v2+ binary
//! `make compose` installs) runs the compose file as it is. Its `envoy` service starts the image
//! the file names with its own command, the release module and `demo.yaml` mounted read-only, on
//! the host network. No image registry is reachable here, so `make docker-image` builds that image
//! from the Envoy the tests run (`tools/envoy-image.sh`); the test checks that it is that Envoy.
//! The JWKS and echo servers are the devserver's (the same code, `tests/support/servers.rs`) on the
//! ports `demo.yaml` names, on the host: the compose file's first way (the `nginx` profile's image
//! cannot be pulled here either; `tests/packaging.rs` checks its files).
//!
//! What a user checks: a valid demo token passes (200, `x-jwt-sub: alice` upstream), a forged one
//! and none are refused (401), the container's log shows no wasm failure, and Ctrl-C (SIGINT to
//! `compose up`) then `compose down` leave no container, no process and no listener behind.
//!
//! The demo's ports are fixed and a compose project's name is one per Docker daemon, so the test
//! takes a lock for the whole machine (the same test in another checkout waits its turn) and
//! waits for the ports to be free. Needs a Docker daemon; skips without one unless CI=true.

#![cfg(target_os = "linux")]

mod support;

use serde_json::Value;
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::envoy::{TempDir, WASM_FAILURE_MARKS};
use support::mint::{self, TestKey, Token};
use support::servers::{EchoUpstream, JwksServer};
use support::{available, crate_root, envoy_bin, http, upstream_headers, wait_until};

/// How long one docker or compose command may take (a daemon on a loaded, shared machine).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the container may take to become LIVE (it compiles the module first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long another checkout's run of this test may hold the machine, and foreign listeners the
/// demo's ports.
const TURN_TIMEOUT: Duration = Duration::from_secs(300);

/// The compose file, the demo config it mounts, and what they name.
struct Demo {
    compose: PathBuf,
    file: PathBuf,
    project: String,
    image: String,
    listener: u16,
    admin: u16,
    jwks: u16,
    echo: u16,
}

impl Demo {
    /// The demo as the files describe it, once everything it needs is here. `None` (the test
    /// skips, after saying why) when something is missing, outside CI.
    fn prepare() -> Option<Demo> {
        let demo = Demo::from_files();
        if let Some(why) = demo.missing() {
            available(Err(why))?;
        }
        Some(demo)
    }

    fn from_files() -> Demo {
        let root = crate_root();
        let file = root.join("envoy/docker-compose.yaml");
        let compose_yaml = yaml(&file);
        let demo_yaml = yaml(&root.join("envoy/demo.yaml"));
        let text = |value: &Value, pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no {pointer}"))
                .to_owned()
        };
        let port = |value: &Value, pointer: &str| {
            let port = value.pointer(pointer).and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
            port.unwrap_or_else(|| panic!("no port at {pointer} in {value}"))
        };
        let cluster_port = |name: &str| {
            let clusters = demo_yaml["static_resources"]["clusters"].as_array().cloned().unwrap_or_default();
            let cluster = clusters.into_iter().find(|c| c["name"] == name);
            let cluster = cluster.unwrap_or_else(|| panic!("no cluster {name} in demo.yaml"));
            port(
                &cluster,
                "/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address/port_value",
            )
        };
        Demo {
            compose: std::env::var_os("DOCKER_COMPOSE")
                .map_or_else(|| root.join(".venv/bin/docker-compose"), PathBuf::from),
            project: text(&compose_yaml, "/name"),
            image: text(&compose_yaml, "/services/envoy/image"),
            listener: port(&demo_yaml, "/static_resources/listeners/0/address/socket_address/port_value"),
            admin: port(&demo_yaml, "/admin/address/socket_address/port_value"),
            jwks: cluster_port("jwks"),
            echo: cluster_port("echo"),
            file,
        }
    }

    /// What the test needs and this machine lacks, and what to do about it.
    fn missing(&self) -> Option<String> {
        if let Err(e) = docker(&["version", "--format", "{{.Server.Version}}"]) {
            return Some(format!("the Docker end-to-end test did not run: no Docker daemon answers ({e})"));
        }
        if !self.compose.is_file() {
            let hint = "run `make compose` or set DOCKER_COMPOSE";
            return Some(format!("no Docker Compose at {}: {hint}", self.compose.display()));
        }
        if let Err(e) = docker(&["image", "inspect", "--format", "{{.Id}}", &self.image]) {
            return Some(format!("no image {}: run `make docker-image` ({e})", self.image));
        }
        let module = crate_root().join("target/wasm32-wasip1/release/jwt_authn_wasm.wasm");
        (!module.is_file()).then(|| format!("no release module at {}: run `make build`", module.display()))
    }

    /// `docker compose -f envoy/docker-compose.yaml ARGS...`, run to its end.
    fn compose(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new(&self.compose).arg("-f").arg(&self.file).args(args))
    }

    /// The ids of the project's containers (`all`: stopped ones too).
    fn containers(&self, all: bool) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.project);
        let mut args = vec!["ps", "--quiet", "--no-trunc", "--filter", &label];
        if all {
            args.push("--all");
        }
        docker(&args).unwrap_or_else(|e| panic!("docker ps: {e}")).lines().map(String::from).collect()
    }
}

/// A YAML file as JSON.
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn docker(args: &[&str]) -> Result<String, String> {
    run(Command::new("docker").args(args))
}

/// Runs a command to its end (killed after `COMMAND_TIMEOUT`): its stdout, or why it failed with
/// its stderr. Output goes through files, so a chatty command cannot block on a full pipe.
fn run(command: &mut Command) -> Result<String, String> {
    let dir = TempDir::new("docker-cmd");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let status = wait_for_exit(&mut child, COMMAND_TIMEOUT);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(read(&out)),
        Some(s) => Err(format!("{shown}: {s}: {}", read(&err).trim())),
        None => Err(format!("{shown}: no answer within {COMMAND_TIMEOUT:?}, killed")),
    }
}

/// Waits at most `timeout` for the child to exit; kills it and returns `None` when it does not.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// This machine's turn at the demo's fixed ports and compose project: a Unix socket bound to an
/// abstract name, which one process at a time can hold and the kernel frees when that process
/// ends, however it ends.
struct MachineLock {
    _held: UnixListener,
}

impl MachineLock {
    fn take() -> MachineLock {
        let name = SocketAddr::from_abstract_name(b"jwt-authn-wasm-docker-demo").unwrap();
        let mut held = None;
        let taken = wait_until(TURN_TIMEOUT, || {
            held = UnixListener::bind_addr(&name).ok();
            held.is_some()
        });
        assert!(
            taken,
            "the Docker demo is still someone else's after {TURN_TIMEOUT:?} (this test elsewhere?)"
        );
        MachineLock { _held: held.unwrap() }
    }
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// `compose up` in the foreground, as a user starts the demo; on drop (a failing test) it is
/// killed and the project taken down, so a failure leaves nothing running either.
struct Up<'d> {
    demo: &'d Demo,
    child: Child,
    dir: TempDir,
    /// `compose down` ran and succeeded.
    down: bool,
}

impl<'d> Up<'d> {
    fn start(demo: &'d Demo) -> Up<'d> {
        let dir = TempDir::new("compose-up");
        // `--pull never`: the image is local (checked before); nothing may go to a registry.
        let child = Command::new(&demo.compose)
            .arg("-f")
            .arg(&demo.file)
            .args(["up", "--pull", "never"])
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("up.log")).unwrap())
            .stderr(File::create(dir.path().join("up.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", demo.compose.display()));
        Up { demo, child, dir, down: false }
    }

    /// The last lines `compose up` printed (the container's log, prefixed `envoy-1  | `, and its own).
    fn output(&self) -> String {
        let text: String = ["up.log", "up.err"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().is_ok_and(|s| s.is_some())
    }

    /// Ctrl-C: SIGINT to `compose up`, which stops the containers and exits.
    fn interrupt(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().is_ok_and(|s| s.success());
        assert!(sent, "kill -INT {pid}");
        let exited = wait_for_exit(&mut self.child, COMMAND_TIMEOUT);
        assert!(
            exited.is_some(),
            "compose up still running {COMMAND_TIMEOUT:?} after Ctrl-C:\n{}",
            self.output()
        );
    }

    /// `compose down`: removes the project's containers.
    fn down(&mut self) {
        self.demo.compose(&["down"]).unwrap_or_else(|e| panic!("{e}"));
        self.down = true;
    }
}

impl Drop for Up<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- compose up ---\n{}", self.output());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.down
            && let Err(e) = self.demo.compose(&["down"])
        {
            eprintln!("compose down after the test: {e}");
        }
    }
}

/// The processes whose command line contains `needle` (from /proc), as `pid: command line`.
fn processes_with(needle: &str) -> Vec<String> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    entries
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}

/// The demo token `make token` prints (RS256, `kid` demo-rsa, sub alice, 1 h), signed by `key`.
fn demo_token(key: TestKey) -> String {
    Token::new("RS256", key)
        .kid("demo-rsa")
        .iss("https://issuer.example")
        .aud("api.example")
        .sub("alice")
        .exp_in(3600)
        .sign()
}

/// The container as Docker runs it: the compose file's command, on the host network, with the
/// module and demo.yaml mounted read-only from this checkout.
fn check_container(demo: &Demo, id: &str) {
    let inspect: Value = serde_json::from_str(&docker(&["inspect", id]).unwrap()).unwrap();
    let c = &inspect[0];
    let compose_yaml = yaml(&demo.file);
    assert_eq!(
        c["Config"]["Cmd"], compose_yaml["services"]["envoy"]["command"],
        "the compose file's command"
    );
    assert_eq!(c["HostConfig"]["NetworkMode"], "host");
    let root = crate_root();
    let mut mounts: Vec<(String, String, bool)> = c["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let source = m["Source"].as_str().unwrap().to_owned();
            (source, m["Destination"].as_str().unwrap().to_owned(), m["RW"].as_bool().unwrap())
        })
        .collect();
    mounts.sort();
    let expected = [
        ("envoy/demo.yaml", "/demo/envoy/demo.yaml"),
        (
            "target/wasm32-wasip1/release/jwt_authn_wasm.wasm",
            "/demo/target/wasm32-wasip1/release/jwt_authn_wasm.wasm",
        ),
    ]
    .map(|(source, target)| (root.join(source).to_string_lossy().into_owned(), target.to_owned(), false));
    assert_eq!(mounts, expected, "read-only (RW false) binds of this checkout's files");
}

/// The image's Envoy is the one the other tests run (`make docker-image` builds it from that).
fn check_image_is_the_tests_envoy(demo: &Demo) {
    let version = |text: &str| text.split_once("version:").map(|(_, v)| v.trim().to_owned());
    let image = docker(&["run", "--rm", "--network", "none", &demo.image, "--version"]).unwrap();
    let bin = envoy_bin().unwrap();
    let tests = Command::new(&bin).arg("--version").output().unwrap();
    let tests = String::from_utf8_lossy(&tests.stdout).into_owned();
    assert_eq!(
        version(&image),
        version(&tests),
        "{} is not {}: run `make docker-image`",
        demo.image,
        bin.display()
    );
}

#[test]
fn demo_in_docker_compose_answers_as_documented_and_stops_clean() {
    let Some(demo) = Demo::prepare() else { return };
    let _turn = MachineLock::take();
    let ports = [demo.listener, demo.admin, demo.jwks, demo.echo];
    let free = wait_until(TURN_TIMEOUT, || ports.iter().all(|p| port_free(*p)));
    assert!(free, "the demo's ports {ports:?} are not all free (`make run` or a demo left running?)");
    check_image_is_the_tests_envoy(&demo);
    // A run killed before its clean-up may have left stopped containers.
    demo.compose(&["down"]).unwrap();

    let jwks = JwksServer::on_port(demo.jwks, &mint::demo_jwks().unwrap()).unwrap();
    let upstream = EchoUpstream::on_port(demo.echo).unwrap();
    let mut up = Up::start(&demo);
    let admin_live =
        || http::request(demo.admin, "GET", "/ready", &[]).is_ok_and(|r| r.body.trim() == "LIVE");
    wait_until(START_TIMEOUT, || admin_live() || up.exited());
    assert!(admin_live(), "Envoy in Docker not LIVE:\n{}", up.output());
    assert!(wait_until(START_TIMEOUT, || jwks.hits() > 0), "no JWKS fetch from the container");
    let running = demo.containers(false);
    assert_eq!(running.len(), 1, "one container, Envoy: {running:?}");
    check_container(&demo, &running[0]);

    let valid = http::get(demo.listener, "/api", Some(&demo_token(TestKey::RsaA)));
    assert_eq!(upstream_headers(&valid)["x-jwt-sub"], serde_json::json!(["alice"]));
    // The demo's kid and claims, signed by a key that is not in the demo JWKS.
    let forged = http::get(demo.listener, "/api", Some(&demo_token(TestKey::RsaB)));
    assert_eq!((forged.status, forged.body.as_str()), (401, "jwt_bad_signature"));
    let missing = http::get(demo.listener, "/api", None);
    assert_eq!((missing.status, missing.body.as_str()), (401, "jwt_missing"));
    assert!(missing.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer ")));
    assert_eq!(http::get(demo.listener, "/healthz", None).status, 200);
    assert_eq!(upstream.hits(), 2, "only the valid token and /healthz reached the echo upstream");

    up.interrupt();
    // The whole log, start-up to shut-down (a stopped container keeps it until `compose down`).
    let log = demo.compose(&["logs", "--no-color", "envoy"]).unwrap();
    assert!(log.contains("provider demo: published JWKS"), "the filter never took the keys:\n{log}");
    let failures: Vec<&str> =
        log.lines().filter(|l| WASM_FAILURE_MARKS.iter().any(|m| l.contains(m))).collect();
    assert!(failures.is_empty(), "wasm failures in the container's log:\n{}", failures.join("\n"));
    assert_eq!(demo.containers(false), Vec::<String>::new(), "a container still runs after Ctrl-C");
    let exit = docker(&["inspect", "--format", "{{.State.ExitCode}}", &running[0]]).unwrap();
    assert_eq!(exit.trim(), "0", "Envoy's exit code after Ctrl-C (SIGTERM from Docker)");
    assert_eq!(processes_with(&running[0]), Vec::<String>::new(), "the container's shim is still there");
    assert_eq!(processes_with("/demo/envoy/demo.yaml"), Vec::<String>::new(), "Envoy is still running");
    assert!(!listening(demo.listener) && !listening(demo.admin), "Envoy's ports still answer");
    up.down();
    assert_eq!(demo.containers(true), Vec::<String>::new(), "containers left after compose down");
}
