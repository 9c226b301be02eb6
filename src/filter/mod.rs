//! The proxy-wasm shell: moves data between Envoy and the pure core, nothing more.
//!
//! One `Vm` per wasm VM (Envoy runs one per worker thread plus two on the main thread) holds the
//! compiled config, this VM's parsed key sets and its held requests. The root context (`root`)
//! keeps the keys in step with shared data, fetches them when it holds the lease, and finishes held
//! requests; each HTTP context (`http`) decides its request with `authn::decide`. Signatures are
//! verified by the backend `crypto` selects at load (the host's, or pure Rust). `binding` lends
//! the checks of sender-constrained tokens their shared data and the client certificate.

// Without the entry point (a test module that reuses `crypto`), the filter's contexts are unused.
#![cfg_attr(not(feature = "entry-point"), allow(dead_code))]

mod binding;
pub mod crypto;
mod host;
mod http;
mod keys;
mod metrics;
mod root;
mod shared_tokens;
mod vm;

#[cfg(feature = "entry-point")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|id| Box::new(root::Root::new(id)));
}}
