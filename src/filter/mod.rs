//! The proxy-wasm shell: moves data between Envoy and the pure core, nothing more.
//!
//! One `Vm` per wasm VM (Envoy runs one per worker thread plus two on the main thread) holds the
//! compiled config, this VM's parsed key sets and its held requests. The root context (`root`)
//! keeps the keys in step with shared data, fetches them when it holds the lease, and finishes held
//! requests; each HTTP context (`http`) decides its request with `authn::decide`.

mod host;
mod http;
mod keys;
mod metrics;
mod root;
mod vm;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| Box::new(root::Root::new(id)));
}}
