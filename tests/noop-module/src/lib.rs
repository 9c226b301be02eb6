//! TEST ONLY: a proxy-wasm HTTP filter made with the Rust SDK (as the filter is) that lets every
//! request through: what a request costs in Envoy for an SDK filter before it does any work.
//! With the plugin configuration `read-header` it also reads the request's `authorization`
//! header (one host call that returns data), the least a token check needs; with `read-headers`
//! it reads every request header in one buffer, as the filter does (`proxy_get_header_map_pairs`,
//! the buffer dropped unparsed).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(Root { read: Read::Nothing }));
}}

/// What each request reads.
#[derive(Clone, Copy)]
enum Read {
    Nothing,
    Header,
    Headers,
}

struct Root {
    read: Read,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.read = match self.get_plugin_configuration().as_deref() {
            Some(b"read-header") => Read::Header,
            Some(b"read-headers") => Read::Headers,
            _ => Read::Nothing,
        };
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop { read: self.read }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Noop {
    read: Read,
}

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // Kept from being optimized away: the call's cost is what is measured.
        match self.read {
            Read::Nothing => {}
            Read::Header => {
                std::hint::black_box(self.get_http_request_header("authorization"));
            }
            Read::Headers => {
                std::hint::black_box(request_headers());
            }
        }
        Action::Continue
    }
}

/// The request headers, serialized, as the host hands them over (the filter's `host::request_headers`
/// without the parsing).
fn request_headers() -> Vec<u8> {
    let (mut data, mut size): (*mut u8, usize) = (std::ptr::null_mut(), 0);
    // SAFETY: the host writes a pointer and a size into the two locals; the pointer is null or a
    // buffer of `size` bytes from this module's allocator (the SDK's `proxy_on_memory_allocate`,
    // a boxed slice of exactly that length), which the Vec then owns and frees.
    unsafe {
        match proxy_get_header_map_pairs(0, &mut data, &mut size) {
            0 if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}
