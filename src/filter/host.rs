//! The few host calls the filter makes, with host statuses turned into plain results, so the rest
//! of the shell never matches on raw `Status` values.

use crate::headermap::{self, HeaderMap};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use std::time::{Duration, UNIX_EPOCH};

/// Host clock in Unix milliseconds (0 if the host cannot tell, which makes every token look old
/// rather than young: `exp` checks then fail safe).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, crate::fetch::ms)
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

/// The request headers, in one buffer read in place (see `HeaderMap`; the SDK's `get_map` would
/// make two strings per header, and panic on a value that is not UTF-8, killing the VM). Empty if
/// the host refuses.
pub fn request_headers() -> HeaderMap {
    let (mut data, mut size): (*mut u8, usize) = (std::ptr::null_mut(), 0);
    // SAFETY: the host writes a pointer and a size into the two locals; the pointer is null or a
    // buffer of `size` bytes it got from this module's allocator (`proxy_on_memory_allocate`, a
    // boxed slice of exactly that length), which this Vec then owns and frees, as the SDK does.
    let bytes = unsafe {
        match abi::proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) {
            0 if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    };
    HeaderMap::from_host(bytes)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// The calls that act on a stream go to the ABI directly: the SDK's wrappers panic on any status
// but Ok (Envoy answers BadArgument, for instance, to a second local reply on one stream), and a
// panic kills the VM with every request on it. A refused call is logged and otherwise ignored:
// the stream it was for is gone or already answered.

pub fn remove_request_header(name: &str) {
    // SAFETY: pointer and length of a live &str, read by the host during the call.
    let status = unsafe { abi::proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) };
    check("remove_header_map_value", status);
}

pub fn set_request_header(name: &str, value: &str) {
    // SAFETY: as above, for both strings.
    let status = unsafe {
        abi::proxy_replace_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("replace_header_map_value", status);
}

pub fn send_response(status: u32, headers: &[(String, String)], body: &str) {
    let headers = headermap::serialize(headers);
    // SAFETY: pointers and lengths of live buffers, read by the host during the call; no details
    // string (null, 0); -1: not a gRPC answer.
    let result = unsafe {
        abi::proxy_send_local_response(
            status,
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    };
    check("send_local_response", result);
}

pub fn resume_request() {
    // SAFETY: no memory is passed.
    check("continue_stream", unsafe { abi::proxy_continue_stream(HTTP_REQUEST_STREAM) });
}

/// A property of the current stream, as Envoy serializes it (`path`: its parts, NUL-separated):
/// `Ok(None)` only when the host says "not found"; any other refusal is `Err(status)`, for the
/// caller to fail closed on.
pub fn property(path: &[u8]) -> Result<Option<Vec<u8>>, u32> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the path is a live buffer read during the call; on success the host hands over a
    // buffer it allocated with this module's `proxy_on_memory_allocate` (the SDK's, a `Vec` of
    // exactly `size` bytes), which this takes ownership of once, as the SDK's own wrapper does.
    let status = unsafe { abi::proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    match status {
        0 if data.is_null() => Ok(Some(Vec::new())),
        // SAFETY: as above.
        0 => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        NOT_FOUND => Ok(None),
        refused => Err(refused),
    }
}

/// Writes filter state entry `wasm.<name>` of the current stream (a string, kept for the stream's
/// life: access logs and later filters read it).
pub fn set_filter_state(name: &str, value: &str) {
    // SAFETY: pointers and lengths of live strings, read by the host during the call.
    let status = unsafe { abi::proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    check("set_property", status);
}

/// proxy-wasm's `MapType::HttpRequestHeaders` and `StreamType::HttpRequest`.
const REQUEST_HEADERS: u32 = 0;
const HTTP_REQUEST_STREAM: u32 = 0;
/// proxy-wasm's `Status::NotFound`.
const NOT_FOUND: u32 = 1;

fn check(call: &str, status: u32) {
    if status != 0 {
        log(LogLevel::Warn, &format!("host refused {call} (status {status})"));
    }
}

/// The host functions above, declared with the SDK's wasm signatures (its enums and `Status` are
/// `u32`), so the module still imports each function once.
mod abi {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        pub fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
        pub fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub fn proxy_send_local_response(
            status_code: u32,
            details_data: *const u8,
            details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub fn proxy_continue_stream(stream_type: u32) -> u32;
        pub fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_property(
            path_data: *const u8,
            path_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_get_header_map_pairs(
            map_type: u32,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
    }
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
