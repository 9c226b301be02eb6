//! The prefix of every proxy-wasm shared-data name this module uses, with the format version.
//!
//! Shared data is one namespace per `vm_id`, shared by every listener, configuration version and
//! module build that runs under it: an upgraded module sharing the old one's `vm_id` during a
//! rollout must never read a value in the old format. A change to what any shared value means (a
//! key set, a fetch lease, a record bucket, the digest key) bumps the version here. v3: token
//! digests are SipHash-2-4 (v2: SipHash-1-3).

pub const NAMESPACE: &str = "jwt_authn_wasm/v3";
