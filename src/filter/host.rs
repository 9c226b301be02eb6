//! The few host calls the filter makes, with host statuses turned into plain results, so the rest
//! of the shell never matches on raw `Status` values.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use std::time::{Duration, UNIX_EPOCH};

/// Host clock in Unix milliseconds (0 if the host cannot tell, which makes every token look old
/// rather than young: `exp` checks then fail safe).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn log(level: LogLevel, message: &str) {
    // Logging cannot fail in a way worth reporting: there is nowhere else to report it.
    let _ = hostcalls::log(level, &format!("jwt_authn_wasm: {message}"));
}

pub fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten()
}

/// A shared-data value and the CAS to write it back with. A missing or emptied key is `None`.
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    match hostcalls::get_shared_data(key) {
        Ok((value, cas)) => (value.filter(|v| !v.is_empty()), cas),
        Err(_) => (None, None),
    }
}

/// Writes a shared-data value; with `cas`, only if nobody wrote since it was read.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    hostcalls::set_shared_data(key, Some(value), cas).is_ok()
}

pub fn set_tick_period(period: Duration) {
    let _ = hostcalls::set_tick_period(period);
}

/// Makes `context_id` the stream later calls act on. False when the stream is gone: then the
/// previous context stays selected and nothing may be done on its behalf.
pub fn select_stream(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

/// The request headers. Values that are not UTF-8 (HTTP allows obs-text bytes) are read lossily:
/// the SDK's `get_map` would panic on them and kill the VM, so one Latin-1 header would take every
/// request on the worker down. A token with such bytes is then refused as malformed.
pub fn request_headers() -> Vec<(String, String)> {
    let pairs = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
    pairs.into_iter().map(|(name, value)| (name, text(value))).collect()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub fn remove_request_header(name: &str) {
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
}

pub fn set_request_header(name: &str, value: &str) {
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
}

pub fn send_response(status: u32, headers: &[(String, String)], body: &str) {
    let headers = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let _ = hostcalls::send_http_response(status, headers, Some(body.as_bytes()));
}

pub fn resume_request() {
    let _ = hostcalls::resume_http_request();
}

/// Starts a GET to `cluster`; the answer comes to the calling context's `on_http_call_response`.
pub fn dispatch_get(cluster: &str, authority: &str, path: &str, timeout: Duration) -> Option<u32> {
    let headers = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        ("accept", "application/json"),
        ("user-agent", "jwt-authn-wasm"),
    ];
    hostcalls::dispatch_http_call(cluster, headers, None, vec![], timeout).ok()
}

/// A header of a fetch answer (read lossily, as `request_headers`: the IdP's bytes must not panic).
pub fn call_response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name).ok().flatten().map(text)
}

pub fn call_response_body(max: usize) -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, max).ok().flatten()
}
