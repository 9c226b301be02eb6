//! A minimal blocking HTTP/1.1 client over `std::net::TcpStream`, for loopback tests: one request
//! per connection (`Connection: close`), the answer read until its framing says it is complete
//! (Content-Length, chunked, or EOF), chunked bodies decoded.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a request may wait for its whole answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP answer. Header names are kept as received; look-ups ignore case.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, by case-insensitive name, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// `request` with `GET` and optionally an `Authorization: Bearer` token: the common case.
pub fn get(port: u16, path: &str, bearer: Option<&str>) -> Response {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    request(port, "GET", path, &headers).unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"))
}

/// Sends one request without a body to 127.0.0.1:`port` and reads the whole answer. `Host` and
/// `Connection: close` are added unless given.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
    request_with_body(port, method, path, headers, None)
}

/// As `request`, with a body (sent with its `Content-Length`, in the same write as the head).
pub fn request_with_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let length = body.map(|b| b.len().to_string());
    let mut all_headers = headers.to_vec();
    all_headers.extend(length.as_deref().map(|l| ("content-length", l)));
    let mut bytes = encode_request(method, path, &all_headers).into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Stop at the end of the answer, not at EOF: after a local reply Envoy waits up to its
    // delayed_close_timeout (1 s) for the client to close first.
    while !is_complete(&raw, method) {
        match stream.read(&mut buf).map_err(|e| format!("read: {e}"))? {
            0 => break,
            n => raw.extend_from_slice(&buf[..n]),
        }
    }
    parse_response(&raw)
}

/// Whether `raw` holds a whole answer by its own framing (false when it runs to EOF).
fn is_complete(raw: &[u8], method: &str) -> bool {
    let Some(split) = find(raw, b"\r\n\r\n") else {
        return false;
    };
    let Ok(head) = parse_response(&raw[..split + 4]) else {
        return false;
    };
    let body = &raw[split + 4..];
    if method == "HEAD" || matches!(head.status, 100..=199 | 204 | 304) {
        return true;
    }
    if head.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return dechunk(body).is_ok();
    }
    match head.header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        Some(length) => body.len() >= length,
        None => false,
    }
}

fn encode_request(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut text = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        text.push_str("host: localhost\r\n");
    }
    if !has("connection") {
        text.push_str("connection: close\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// Parses a whole HTTP/1.1 answer (status line, headers, body by chunked or to the end).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = find(raw, b"\r\n\r\n").ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Ok(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or("chunk size line without end")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("chunk shorter than its size")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("chunk without its CRLF")?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
