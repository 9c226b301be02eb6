//! Small threaded HTTP/1.1 servers on 127.0.0.1 for tests and the demo: a JWKS server whose answer
//! the test changes at any time, an echo upstream that reports what reached it, and a static file
//! server (a module Envoy fetches). Each serves
//! one request per connection, answers with `Connection: close`, and stops on `Drop`.
//! Also used by `examples/devserver.rs` through `#[path]`, so it depends on nothing else here.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// How often a delayed or hanging connection looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Longest a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A request as the server read it (header names lower-cased, in arrival order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, by `Content-Length` (chunked bodies are not read).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What a handler does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer after `delay`.
    Answer { status: u16, headers: Vec<(String, String)>, body: Vec<u8>, delay: Duration },
    /// Keep the connection open and never answer (until the server stops).
    Hang,
    /// Close the connection without answering.
    Close,
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// The accept loop of one `start`: a stop flag and the thread to join.
struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A restartable HTTP server on a fixed 127.0.0.1 port, calling `handler` for each request.
pub struct HttpServer {
    port: u16,
    handler: Handler,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
    running: Option<Running>,
}

impl HttpServer {
    /// A server on `port` (0: the OS picks one), listening at once.
    pub fn bind(
        port: u16,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let mut server = HttpServer::idle(listener.local_addr()?.port(), handler);
        server.run(listener);
        Ok(server)
    }

    /// A server on a port of `private_ports`, listening at once: safe to `stop` and `start` again.
    pub fn bind_private(
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> io::Result<HttpServer> {
        let listener = private_ports()
            .find_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .map_or_else(|| TcpListener::bind(("127.0.0.1", 0)), Ok)?;
        let mut server = HttpServer::idle(listener.local_addr()?.port(), handler);
        server.run(listener);
        Ok(server)
    }

    /// A server on a free port of `private_ports` that is not listening yet: `start` it later.
    pub fn reserve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> io::Result<HttpServer> {
        Ok(HttpServer::idle(free_private_port()?, handler))
    }

    fn idle(port: u16, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HttpServer {
        HttpServer {
            port,
            handler: Arc::new(handler),
            hits: Arc::default(),
            requests: Arc::default(),
            running: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Connections accepted so far, over every start (each carries at most one request).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The requests read so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    /// Listens again on the same port (a no-op when running). Retries for a second, since a
    /// port just released may still be busy.
    pub fn start(&mut self) -> io::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => thread::sleep(POLL),
            }
        };
        self.run(listener);
        Ok(())
    }

    /// Stops listening and closes delayed and hanging connections; new connections are refused.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept so it sees the flag.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = running.thread.join();
        }
    }

    fn run(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let conn = Connection {
            handler: self.handler.clone(),
            hits: self.hits.clone(),
            requests: self.requests.clone(),
            stop: stop.clone(),
        };
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if conn.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let conn = conn.clone();
                    thread::spawn(move || conn.serve(stream));
                }
            }
        });
        self.running = Some(Running { stop, thread });
    }
}

/// A port of `private_ports` free now, for a server (of this process or a child) that listens on
/// it later, or goes down and comes back on it.
pub fn free_private_port() -> io::Result<u16> {
    match private_ports().find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok()) {
        Some(port) => Ok(port),
        None => Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port()),
    }
}

/// Candidate ports below the kernel's ephemeral range, from a random start. A port left free by a
/// server that is not listening (reserved, or stopped to come back) must not be handed to anyone
/// else meanwhile: the kernel gives sockets bound to port 0 (other servers, Envoy's listeners, in
/// this process or in any other test run on the machine) only ephemeral ports, so it never hands
/// out one of these.
fn private_ports() -> impl Iterator<Item = u16> {
    use std::hash::{BuildHasher, Hasher};
    const LOWEST: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = u64::from(ephemeral_start.saturating_sub(LOWEST));
    let start = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (0..64u64)
        .filter(move |_| span > 0)
        .map(move |i| LOWEST + ((start.wrapping_add(i * 7_919)) % span) as u16)
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What each connection thread needs.
#[derive(Clone)]
struct Connection {
    handler: Handler,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Connection {
    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let Some(request) = read_request(&stream) else {
            return;
        };
        lock(&self.requests).push(request.clone());
        let reply = (self.handler)(&request);
        // Counted once the answer is chosen: a test that changes the server's behaviour as soon as
        // it sees a hit does not change the answer to that hit.
        self.hits.fetch_add(1, Ordering::SeqCst);
        match reply {
            Reply::Answer { status, headers, body, delay } => {
                if self.sleep(delay) {
                    let _ = stream.write_all(&encode_response(status, &headers, &body));
                }
            }
            Reply::Hang => {
                while !self.stop.load(Ordering::SeqCst) {
                    thread::sleep(POLL);
                }
            }
            Reply::Close => {}
        }
        let _ = stream.shutdown(Shutdown::Both);
    }

    /// Sleeps up to `delay`; false when the server stopped meanwhile.
    fn sleep(&self, delay: Duration) -> bool {
        let end = Instant::now() + delay;
        while Instant::now() < end {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
        }
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not make every later request fail too.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads a request head and its `Content-Length` body; `None` if the client sent none.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut request = Request { method, path, headers, body: Vec::new() };
    let length: u64 = request.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let _ = reader.take(length).read_to_end(&mut request.body);
    Some(request)
}

fn encode_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("content-type") {
        head.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    [head.as_bytes(), body].concat()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// How the JWKS server answers now.
#[derive(Debug, Clone)]
struct JwksBehaviour {
    status: u16,
    body: String,
    headers: BTreeMap<String, String>,
    delay: Duration,
    hang: bool,
    close: bool,
    /// Bodies for given paths (query included), served instead of `body`.
    paths: BTreeMap<String, String>,
    /// When each answer was chosen, oldest first (see `JwksServer::answered_at`).
    answered: Vec<SystemTime>,
}

/// A JWKS endpoint (any path; `set_path_body` gives some paths their own body, e.g. an OIDC
/// discovery document beside the JWKS) whose answer the test changes at any time, and that can
/// go down and come back on the same port.
pub struct JwksServer {
    server: HttpServer,
    behaviour: Arc<Mutex<JwksBehaviour>>,
}

impl JwksServer {
    /// Serves `body` with 200 on a free port that no one else is given while it is stopped (see
    /// `private_ports`).
    pub fn new(body: &str) -> JwksServer {
        let behaviour = JwksServer::behaviour(body);
        let server = HttpServer::bind_private(JwksServer::handler(&behaviour))
            .unwrap_or_else(|e| panic!("JWKS server: {e}"));
        JwksServer { server, behaviour }
    }

    /// Serves `body` with 200 on a given port (0: the OS picks).
    pub fn on_port(port: u16, body: &str) -> io::Result<JwksServer> {
        let behaviour = JwksServer::behaviour(body);
        let server = HttpServer::bind(port, JwksServer::handler(&behaviour))?;
        Ok(JwksServer { server, behaviour })
    }

    /// Picks a port but does not listen yet (for "the JWKS server comes up late"): `start` later.
    /// Serves `{"keys":[]}` until `set_body`.
    pub fn reserve() -> JwksServer {
        let behaviour = JwksServer::behaviour(r#"{"keys":[]}"#);
        let server = HttpServer::reserve(JwksServer::handler(&behaviour))
            .unwrap_or_else(|e| panic!("JWKS server: {e}"));
        JwksServer { server, behaviour }
    }

    fn behaviour(body: &str) -> Arc<Mutex<JwksBehaviour>> {
        Arc::new(Mutex::new(JwksBehaviour {
            status: 200,
            body: body.to_string(),
            headers: BTreeMap::new(),
            delay: Duration::ZERO,
            hang: false,
            close: false,
            paths: BTreeMap::new(),
            answered: Vec::new(),
        }))
    }

    fn handler(behaviour: &Arc<Mutex<JwksBehaviour>>) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
        let behaviour = behaviour.clone();
        move |request| {
            // Chosen and recorded under one lock with every `set_*` (see `answered_at`).
            let mut b = lock(&behaviour);
            b.answered.push(SystemTime::now());
            if b.hang {
                Reply::Hang
            } else if b.close {
                Reply::Close
            } else {
                let body = b.paths.get(&request.path).unwrap_or(&b.body);
                Reply::Answer {
                    status: b.status,
                    headers: b.headers.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
                    body: body.clone().into_bytes(),
                    delay: b.delay,
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn set_body(&self, body: &str) {
        lock(&self.behaviour).body = body.to_string();
    }

    /// `set_body`, returning how many answers were chosen before the change (see `answered_at`):
    /// those got the old body, every later one gets this.
    pub fn switch_body(&self, body: &str) -> usize {
        let mut b = lock(&self.behaviour);
        b.body = body.to_string();
        b.answered.len()
    }

    /// Answers requests for exactly `path` (query included) with `body` instead of the common
    /// one; `None` goes back to the common body. Status, headers and faults stay common.
    pub fn set_path_body(&self, path: &str, body: Option<&str>) {
        let mut b = lock(&self.behaviour);
        match body {
            Some(body) => b.paths.insert(path.to_string(), body.to_string()),
            None => b.paths.remove(path),
        };
    }

    pub fn set_status(&self, status: u16) {
        lock(&self.behaviour).status = status;
    }

    /// Adds or replaces an answer header (e.g. `cache-control`); an empty value removes it.
    pub fn set_header(&self, name: &str, value: &str) {
        let mut b = lock(&self.behaviour);
        if value.is_empty() {
            b.headers.remove(&name.to_ascii_lowercase());
        } else {
            b.headers.insert(name.to_ascii_lowercase(), value.to_string());
        }
    }

    /// Waits this long before each answer.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.behaviour).delay = delay;
    }

    /// Accepts and never answers (while on).
    pub fn set_hang(&self, on: bool) {
        lock(&self.behaviour).hang = on;
    }

    /// Accepts and closes without answering (while on).
    pub fn set_close(&self, on: bool) {
        lock(&self.behaviour).close = on;
    }

    /// Connections accepted so far (one fetch each).
    pub fn hits(&self) -> usize {
        self.server.hits()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }

    /// When each answer (hangs and closes included) was chosen, oldest first. Recorded under the
    /// same lock as every `set_*`: a change made while this holds n entries applies to every answer
    /// after the n-th, so a test that changes the answer right after seeing a fetch knows exactly
    /// which fetches got the old one. (`hits` counts a little later, once the answer is chosen.)
    pub fn answered_at(&self) -> Vec<SystemTime> {
        lock(&self.behaviour).answered.clone()
    }

    /// Listens again on the same port; panics if the port was taken meanwhile.
    pub fn start(&mut self) {
        let port = self.port();
        self.server.start().unwrap_or_else(|e| panic!("JWKS server restart on port {port}: {e}"));
    }

    /// Stops listening: fetches get connection refused until `start`.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }
}

/// An upstream that answers 200 with `{"method", "path", "headers": {name: [values]}, "body"}` of
/// the request it got (the body as lossy UTF-8), so a test sees exactly what passed the filter.
pub struct EchoUpstream {
    server: HttpServer,
}

impl EchoUpstream {
    pub fn new() -> EchoUpstream {
        EchoUpstream::on_port(0).unwrap_or_else(|e| panic!("echo upstream: {e}"))
    }

    pub fn on_port(port: u16) -> io::Result<EchoUpstream> {
        Ok(EchoUpstream { server: HttpServer::bind(port, echo)? })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn hits(&self) -> usize {
        self.server.hits()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
}

impl Default for EchoUpstream {
    fn default() -> Self {
        EchoUpstream::new()
    }
}

fn echo(request: &Request) -> Reply {
    let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in &request.headers {
        headers.entry(name).or_default().push(value);
    }
    let body = serde_json::json!({
        "method": request.method,
        "path": request.path,
        "headers": headers,
        "body": String::from_utf8_lossy(&request.body),
    });
    Reply::Answer {
        status: 200,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
        delay: Duration::ZERO,
    }
}

/// A static file server: one file (any bytes, e.g. a `.wasm`) at one path, 404 elsewhere.
pub struct FileServer {
    server: HttpServer,
}

impl FileServer {
    /// Serves `body` at `path` on an OS-picked port.
    pub fn new(path: &str, body: Vec<u8>) -> FileServer {
        let path = path.to_string();
        let server = HttpServer::bind(0, move |request| {
            let (status, body) = if request.path == path { (200, body.clone()) } else { (404, Vec::new()) };
            let headers = vec![("content-type".into(), "application/octet-stream".into())];
            Reply::Answer { status, headers, body, delay: Duration::ZERO }
        })
        .unwrap_or_else(|e| panic!("file server: {e}"));
        FileServer { server }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Requests so far (any path).
    pub fn hits(&self) -> usize {
        self.server.hits()
    }
}
