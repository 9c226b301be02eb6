//! JWT authentication for Envoy and Istio as a proxy-wasm filter.
//!
//! The crate is a pure core and a thin shell. The core (every module but `filter`) parses, verifies
//! and decides on plain data and never touches the host, so it is tested natively with `cargo test`.
//! The shell (`filter`, built only for wasm32) moves data between Envoy and that core.

// A panic in wasm kills the VM and every request on that worker: outside data never unwraps.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod alg;
pub mod authn;
pub mod authz;
pub mod binding;
pub mod cache;
pub mod claim_text;
pub mod claims;
pub mod config;
pub mod crypto;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod forward;
pub mod headermap;
pub mod hostcrypto;
pub mod identity;
pub mod json;
pub mod jwks;
pub mod namespace;
pub mod policy;
pub mod requirement;
pub mod route;
pub mod shared_record;
pub mod token;
pub mod uri;
pub mod verify;

/// Public only for its host crypto backend (`filter::crypto`), which a test module links into a
/// filter of its own (tests/host-probe).
#[cfg(target_arch = "wasm32")]
pub mod filter;
