//! TEST ONLY: a proxy-wasm HTTP filter made with the Rust SDK (as the filter is) that lets every
//! request through: what a request costs in Envoy for an SDK filter before it does any work.
//! With the plugin configuration `read-header` it also reads the request's `authorization`
//! header (one host call that returns data), the least a token check needs.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(Root { read_header: false }));
}}

struct Root {
    read_header: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.read_header = self.get_plugin_configuration().is_some_and(|c| c == b"read-header");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop { read_header: self.read_header }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Noop {
    read_header: bool,
}

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.read_header {
            // Kept from being optimized away: the call's cost is what is measured.
            std::hint::black_box(self.get_http_request_header("authorization"));
        }
        Action::Continue
    }
}
