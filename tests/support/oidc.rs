//! A real OpenID provider nobody here wrote, for the interop tests (`tests/e2e_oidc.rs`,
//! `tests/e2e_binding.rs`): panva's certified `oidc-provider` on Node (`tests/oidc-provider/`,
//! installed by `make oidc-provider`), behind HTTPS with a certificate for a test host name that
//! the `openssl` CLI makes. Also the Node processes of those tests (`NodeProcess`) and the test CA's
//! other certificates (`issue_certificate`).
#![allow(dead_code)]

use super::envoy::{TempDir, terminate};
use super::http;
use super::servers::free_private_port;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The provider's issuer; its host is the TLS name (SNI, certificate) and never resolves: Envoy's
/// cluster points at 127.0.0.1.
pub const ISSUER: &str = "https://idp.oidc.test";
pub const TLS_HOST: &str = "idp.oidc.test";
/// How long a Node process may take to start (Node loads oidc-provider; the machine is shared).
const NODE_START: Duration = Duration::from_secs(30);

/// Node, the installed provider (and `dpop`) and openssl; `None` after saying which is missing
/// (the test skips; fails with CI=true).
pub fn require_tools() -> Option<PathBuf> {
    let runs = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
    let dir = super::crate_root().join("tests/oidc-provider");
    let installed = |package: &str| dir.join(format!("node_modules/{package}/package.json")).is_file();
    let found = if !runs("node", "--version") {
        Err("no `node` on PATH (the interop tests run oidc-provider on Node)".to_string())
    } else if !installed("oidc-provider") || !installed("dpop") {
        Err(format!("oidc-provider or dpop is not installed in {}: run `make oidc-provider`", dir.display()))
    } else if !runs("openssl", "version") {
        Err("no `openssl` on PATH (the interop tests make their TLS certificates with it)".to_string())
    } else {
        Ok(dir)
    };
    super::available(found)
}

/// Runs openssl with these arguments (split at spaces) in `dir`; panics with its output when it
/// fails.
pub fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").args(args.split(' ')).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

/// A test CA (`ca.pem`, key `ca.key`) and a server certificate it signed for `TLS_HOST`
/// (`idp.pem`, key `idp.key`), valid for a day, in `dir`.
pub fn make_certificates(dir: &Path) {
    let ca_exts = "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign";
    openssl(
        dir,
        &format!("req -x509 -days 1 -subj /CN=test-CA {NEW_KEY} {ca_exts} -keyout ca.key -out ca.pem"),
    );
    issue_certificate(dir, "idp", TLS_HOST, "serverAuth");
}

/// A certificate the test CA of `dir` signs for `name` (`<file>.pem`, key `<file>.key`), with
/// that DNS name and extended key usage (`serverAuth`, `clientAuth`), valid for a day.
pub fn issue_certificate(dir: &Path, file: &str, name: &str, usage: &str) {
    openssl(dir, &format!("req -subj /CN={name} {NEW_KEY} -keyout {file}.key -out {file}.csr"));
    let exts = format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n");
    fs::write(dir.join(format!("{file}.ext")), exts).expect("write the extensions file");
    let sign = format!(
        "x509 -req -in {file}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile {file}.ext"
    );
    openssl(dir, &format!("{sign} -out {file}.pem"));
}

/// A Node script of `tests/oidc-provider/` running, its output in files; stopped on drop (its
/// stderr printed when the test is failing).
pub struct NodeProcess {
    child: Child,
    stderr: PathBuf,
    /// The one JSON line it printed once ready.
    pub ready: Value,
}

impl NodeProcess {
    /// Starts `script` in `script_dir` with `env`, its output in `dir` under `name`, and waits for
    /// the JSON line that says it is ready; panics with its stderr when it does not come.
    pub fn start(
        script_dir: &Path,
        script: &str,
        env: &[(&str, String)],
        dir: &Path,
        name: &str,
    ) -> NodeProcess {
        let (stdout, stderr) = (dir.join(format!("{name}.out")), dir.join(format!("{name}.err")));
        let child = Command::new("node")
            .arg(script)
            .current_dir(script_dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("node runs");
        let mut process = NodeProcess { child, stderr, ready: Value::Null };
        let started = super::wait_until(NODE_START, || {
            let line = fs::read_to_string(&stdout).unwrap_or_default();
            process.ready = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
            !process.ready.is_null() || !matches!(process.child.try_wait(), Ok(None))
        });
        assert!(started && !process.ready.is_null(), "{script} did not start:\n{}", process.log());
        process
    }

    /// A port it announced in its ready line.
    pub fn port(&self, field: &str) -> u16 {
        self.ready[field].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port in the ready line")
    }

    /// Its stderr.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops it and waits for the exit (so a port it held is free again).
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- node log ---\n{}", self.log());
        }
    }
}

/// One run of `tests/oidc-provider/provider.mjs` (see its header for what it serves).
pub struct OidcProvider {
    node: NodeProcess,
    /// Its plain HTTP port, for the test's token requests.
    pub http_port: u16,
}

/// What every run of the provider in a test shares: its files, its TLS port, its resource servers.
pub struct ProviderSetup {
    pub script_dir: PathBuf,
    pub dir: TempDir,
    pub tls_port: u16,
    resources: Value,
    runs: usize,
}

impl ProviderSetup {
    /// `new`, when Node, the provider, openssl, Envoy and the module are all there; else `None`
    /// after saying which is missing (the test skips; fails with CI=true).
    pub fn prepare(resources: Value) -> Option<ProviderSetup> {
        let script_dir = require_tools()?;
        super::require_envoy()?;
        super::require_wasm()?;
        Some(ProviderSetup::new(script_dir, resources))
    }

    /// Certificates in a new temporary directory, a TLS port kept free for every run, and the
    /// resource servers (`{indicator: {"alg", "ttl"}}`, see provider.mjs).
    fn new(script_dir: PathBuf, resources: Value) -> ProviderSetup {
        let dir = TempDir::new("oidc");
        make_certificates(dir.path());
        let tls_port = free_private_port().expect("a free port for the provider");
        ProviderSetup { script_dir, dir, tls_port, resources, runs: 0 }
    }

    /// A file in the setup's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the provider publishing `keys` (kids, in JWKS order: the first that fits an alg
    /// signs) and waits until it listens.
    pub fn start(&mut self, keys: &[&str]) -> OidcProvider {
        self.runs += 1;
        let env = [
            ("OIDC_ISSUER", ISSUER.to_string()),
            ("OIDC_TLS_CERT", self.file("idp.pem").to_string_lossy().into_owned()),
            ("OIDC_TLS_KEY", self.file("idp.key").to_string_lossy().into_owned()),
            ("OIDC_TLS_PORT", self.tls_port.to_string()),
            ("OIDC_KEY_DIR", self.file("keys").to_string_lossy().into_owned()),
            ("OIDC_KEYS", keys.join(",")),
            ("OIDC_RESOURCES", self.resources.to_string()),
        ];
        let name = format!("provider-{}", self.runs);
        let node = NodeProcess::start(&self.script_dir, "provider.mjs", &env, self.dir.path(), &name);
        let http_port = node.port("http_port");
        OidcProvider { node, http_port }
    }
}

impl OidcProvider {
    /// An access token from the token endpoint for `resource`, with `scope`, for the client
    /// `interop`.
    pub fn token(&self, resource: &str, scope: &str) -> String {
        self.token_for("interop", resource, scope, &[])
    }

    /// An access token for `client` (`interop`, or `interop-mtls` with an `x-client-cert`
    /// header), with these extra request headers.
    pub fn token_for(&self, client: &str, resource: &str, scope: &str, headers: &[(&str, &str)]) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", "interop-secret"),
            ("resource", resource),
            ("scope", scope),
        ];
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        let r =
            http::request_with_body(self.http_port, "POST", "/token", &all, Some(body.join("&").as_bytes()))
                .unwrap_or_else(|e| panic!("token request: {e}\n{}", self.log()));
        assert_eq!(r.status, 200, "token request for {resource}: {}", r.body);
        r.json()["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {}", r.body)).to_string()
    }

    /// Its stderr: oidc-provider's warnings, `tls handshake sni=NAME` per TLS handshake and
    /// `request METHOD PATH over http(s)` per request.
    pub fn log(&self) -> String {
        self.node.log()
    }

    /// Stops it and waits for the exit, so the TLS port is free again.
    pub fn stop(&mut self) {
        self.node.stop();
    }
}

/// `application/x-www-form-urlencoded` for a value: unreserved characters as they are, every
/// other byte percent-encoded.
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A token's header or payload (`part` 0 or 1) as JSON.
pub fn part(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}
