//! The extension blocks for sender-constrained tokens, per provider (no jwt_authn equivalent):
//! `dpop` (RFC 9449 proofs of possession) and `certificate_bound` (RFC 8705 §3 certificate-bound
//! tokens). Both are off by default: a provider without them behaves as before, whatever `cnf`
//! its tokens carry. What the settings mean at request time is `crate::binding`'s.
//!
//! ```json
//! "dpop": {"mode": "allowed", "algorithms": ["ES256", "EdDSA"], "max_age": "60s",
//!          "max_future": "10s", "public_url": "https://api.example",
//!          "nonce": {"step": "60s"}, "replay_cache_size": 65536},
//! "certificate_bound": {"mode": "required"}
//! ```
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `dpop.mode` | (required in the block) | `disabled`, `allowed` (DPoP-bound tokens need a proof, unbound ones still pass as Bearer) or `required` (only DPoP-bound tokens with proofs) |
//! | `dpop.algorithms` | every algorithm this filter knows | the proof's `alg` allow-list (asymmetric only, as the provider's `algorithms`) |
//! | `dpop.max_age` | 60s | how old a proof's `iat` may be (1s to 3600s, whole seconds) |
//! | `dpop.max_future` | 10s | how far ahead of the proxy's clock `iat` may be (0s to 300s); FAPI 2.0 asks resource servers to accept 10 s |
//! | `dpop.public_url` | the request's `:scheme` and `:authority` | the origin proofs are made for (`https://api.example`), behind a load balancer that rewrites scheme, host or port |
//! | `dpop.nonce.step` | no nonces | server nonces (RFC 9449 §9): a nonce is valid for this step and the next (1s to 86400s) |
//! | `dpop.replay_cache_size` | 65536 | proofs remembered per provider for the whole Envoy (16 to 4194304) |
//! | `certificate_bound.mode` | (required in the block) | `disabled`, `allowed` (tokens with `cnf.x5t#S256` need that client certificate) or `required` (only such tokens) |

use super::walk::{Obj, in_range, parse_algorithms};
use super::{Result, error};
use crate::alg::AlgorithmSet;
use crate::uri::Origin;
use std::time::Duration;

/// How a provider treats one kind of binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindingMode {
    /// The binding is not checked (behaviour as without the block).
    #[default]
    Disabled,
    /// Tokens bound this way must prove it; unbound tokens still pass.
    Allowed,
    /// Only tokens bound this way, proving it, pass.
    Required,
}

/// A provider's sender-constraint settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenBinding {
    pub dpop: DpopConfig,
    /// `certificate_bound.mode`.
    pub certificate: BindingMode,
}

impl TokenBinding {
    /// Whether any binding is checked (else the request path never looks at `cnf`).
    pub fn enabled(&self) -> bool {
        self.dpop.mode != BindingMode::Disabled || self.certificate != BindingMode::Disabled
    }
}

/// The `dpop` block, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopConfig {
    pub mode: BindingMode,
    /// The proof's `alg` allow-list; `none` and HMAC can never be in it.
    pub algorithms: AlgorithmSet,
    pub max_age_seconds: u64,
    pub max_future_seconds: u64,
    /// The origin proofs name in `htu`; `None`: the request's own.
    pub public_url: Option<Origin>,
    /// Server nonces, when set.
    pub nonce: Option<NonceConfig>,
    /// Proofs remembered per provider (the replay record's size).
    pub replay_cache_size: usize,
}

/// `dpop.nonce`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceConfig {
    /// A nonce made in one step is accepted in that step and the next.
    pub step_seconds: u64,
}

pub const DEFAULT_DPOP_MAX_AGE: Duration = Duration::from_secs(60);
pub const DEFAULT_DPOP_MAX_FUTURE: Duration = Duration::from_secs(10);
pub const DEFAULT_NONCE_STEP: Duration = Duration::from_secs(60);
/// About 1 MiB of shared data per provider: at most a third full (so that few buckets fill up)
/// it holds the proofs of ~350 requests per second over the default 70-second window.
pub const DEFAULT_REPLAY_CACHE_SIZE: usize = 65_536;
const REPLAY_CACHE_SIZES: std::ops::RangeInclusive<u32> = 16..=(1 << 22);

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            mode: BindingMode::Disabled,
            algorithms: AlgorithmSet::all(),
            max_age_seconds: DEFAULT_DPOP_MAX_AGE.as_secs(),
            max_future_seconds: DEFAULT_DPOP_MAX_FUTURE.as_secs(),
            public_url: None,
            nonce: None,
            replay_cache_size: DEFAULT_REPLAY_CACHE_SIZE,
        }
    }
}

/// A provider's `dpop` and `certificate_bound` blocks, refused while they would not be enforced.
pub(super) fn parse_binding(o: &mut Obj) -> Result<TokenBinding> {
    let binding = parse_blocks(o)?;
    refuse_unenforced(&binding, o)?;
    Ok(binding)
}

/// The request path does not check bindings yet (issue 17's second phase wires `crate::binding`
/// into it): a block that turns one on is refused, since accepting it and not enforcing it would
/// let in requests the operator asked to refuse. The wiring removes this.
fn refuse_unenforced(binding: &TokenBinding, o: &Obj) -> Result<()> {
    let why = "not enforced by this build yet: only \"disabled\" is accepted";
    if binding.dpop.mode != BindingMode::Disabled {
        return Err(error(format!("{}.mode", o.at("dpop")), why));
    }
    if binding.certificate != BindingMode::Disabled {
        return Err(error(format!("{}.mode", o.at("certificate_bound")), why));
    }
    Ok(())
}

fn parse_blocks(o: &mut Obj) -> Result<TokenBinding> {
    let dpop = match o.obj("dpop")? {
        Some(d) => parse_dpop(d)?,
        None => DpopConfig::default(),
    };
    let certificate = match o.obj("certificate_bound")? {
        Some(mut c) => {
            let mode = parse_binding_mode(&mut c)?;
            c.finish_all_known()?;
            mode
        }
        None => BindingMode::Disabled,
    };
    Ok(TokenBinding { dpop, certificate })
}

fn parse_dpop(mut d: Obj) -> Result<DpopConfig> {
    let config = DpopConfig {
        mode: parse_binding_mode(&mut d)?,
        algorithms: parse_algorithms(&mut d)?,
        max_age_seconds: whole_seconds(&mut d, "max_age", DEFAULT_DPOP_MAX_AGE, 1, 3600)?,
        max_future_seconds: whole_seconds(&mut d, "max_future", DEFAULT_DPOP_MAX_FUTURE, 0, 300)?,
        public_url: parse_public_url(&mut d)?,
        nonce: match d.obj("nonce")? {
            Some(mut n) => {
                let step_seconds = whole_seconds(&mut n, "step", DEFAULT_NONCE_STEP, 1, 86_400)?;
                n.finish_all_known()?;
                Some(NonceConfig { step_seconds })
            }
            None => None,
        },
        replay_cache_size: parse_replay_cache_size(&mut d)?,
    };
    d.finish_all_known()?;
    Ok(config)
}

/// `mode`, which a present block must state: a block that says nothing about whether it is on
/// would be read either way by someone.
fn parse_binding_mode(o: &mut Obj) -> Result<BindingMode> {
    let expected = "expected \"disabled\", \"allowed\" or \"required\"";
    match o.str("mode")? {
        Some("disabled") => Ok(BindingMode::Disabled),
        Some("allowed") => Ok(BindingMode::Allowed),
        Some("required") => Ok(BindingMode::Required),
        Some(other) => Err(error(o.at("mode"), format!("{expected}, not {other:?}"))),
        None => Err(error(o.at("mode"), expected)),
    }
}

/// A duration of whole seconds in `min..=max` (seconds), `default` when absent.
fn whole_seconds(o: &mut Obj, key: &'static str, default: Duration, min: u64, max: u64) -> Result<u64> {
    let path = o.at(key);
    let what = format!("expected whole seconds from \"{min}s\" to \"{max}s\"");
    let d = o.duration(key)?.unwrap_or(default);
    if d.subsec_nanos() != 0 {
        return Err(error(path, what));
    }
    let d = in_range(d, &path, Duration::from_secs(min), Duration::from_secs(max + 1), &what)?;
    Ok(d.as_secs())
}

fn parse_public_url(o: &mut Obj) -> Result<Option<Origin>> {
    let Some(text) = o.non_empty_str("public_url")? else { return Ok(None) };
    Origin::parse(text).map(Some).ok_or_else(|| {
        error(
            o.at("public_url"),
            "expected an http or https origin such as \"https://api.example\" (no path, query or user)",
        )
    })
}

fn parse_replay_cache_size(o: &mut Obj) -> Result<usize> {
    let path = o.at("replay_cache_size");
    match o.u32("replay_cache_size")? {
        None => Ok(DEFAULT_REPLAY_CACHE_SIZE),
        Some(n) if REPLAY_CACHE_SIZES.contains(&n) => Ok(n as usize),
        Some(_) => Err(error(
            path,
            format!(
                "expected {} to {} (replay protection cannot be turned off)",
                REPLAY_CACHE_SIZES.start(),
                REPLAY_CACHE_SIZES.end()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{P, assert_refused, parse, with};
    use super::*;
    use crate::alg::Algorithm;
    use serde_json::json;

    /// The blocks as the provider `p` of the test documents would hold them, parsed (the guard
    /// against unenforced settings has its own test).
    fn binding(block: &str, value: serde_json::Value) -> TokenBinding {
        let provider = json!({ block: value });
        let mut o = Obj::new(&provider, "providers.p".into()).unwrap();
        parse_blocks(&mut o).unwrap()
    }

    #[test]
    fn off_unless_configured() {
        let config = parse(&with(P, "issuer", json!("https://p.example"))).unwrap();
        let p = &config.providers[0];
        assert_eq!(p.binding, TokenBinding::default());
        assert!(!p.binding.enabled());
        assert_eq!(p.binding.dpop.mode, BindingMode::Disabled);
        let off = with(P, "dpop", json!({"mode": "disabled", "max_age": "30s"}));
        assert_eq!(parse(&off).unwrap().providers[0].binding.dpop.max_age_seconds, 30);
    }

    #[test]
    fn a_binding_this_build_does_not_enforce_is_refused() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(P, "dpop", json!({"mode": "allowed"})), "providers.p.dpop.mode", "not enforced by this build yet"),
            (with(P, "dpop", json!({"mode": "required"})), "providers.p.dpop.mode", "not enforced"),
            (with(P, "certificate_bound", json!({"mode": "allowed"})), "providers.p.certificate_bound.mode", "not enforced"),
            (with(P, "certificate_bound", json!({"mode": "required"})), "providers.p.certificate_bound.mode", "not enforced"),
        ]);
    }

    #[test]
    fn dpop_defaults_and_every_field() {
        let minimal = binding("dpop", json!({"mode": "allowed"}));
        assert_eq!(minimal.dpop, DpopConfig { mode: BindingMode::Allowed, ..DpopConfig::default() });
        assert_eq!((minimal.dpop.max_age_seconds, minimal.dpop.max_future_seconds), (60, 10));
        assert!(minimal.enabled() && minimal.certificate == BindingMode::Disabled);

        let full = binding(
            "dpop",
            json!({"mode": "required", "algorithms": ["ES256", "EdDSA"], "max_age": "30s",
                   "max_future": "0s", "public_url": "HTTPS://Api.Example:443/",
                   "nonce": {"step": "120s"}, "replay_cache_size": 1024}),
        );
        let expected = DpopConfig {
            mode: BindingMode::Required,
            algorithms: [Algorithm::ES256, Algorithm::EdDSA].into_iter().collect(),
            max_age_seconds: 30,
            max_future_seconds: 0,
            public_url: Origin::parse("https://api.example"),
            nonce: Some(NonceConfig { step_seconds: 120 }),
            replay_cache_size: 1024,
        };
        assert_eq!(full.dpop, expected);
        assert_eq!(
            binding("dpop", json!({"mode": "allowed", "nonce": {}})).dpop.nonce.map(|n| n.step_seconds),
            Some(60)
        );
        assert!(!binding("dpop", json!({"mode": "disabled", "max_age": "5s"})).enabled());
    }

    #[test]
    fn certificate_bound_modes() {
        for (mode, expected) in [
            ("disabled", BindingMode::Disabled),
            ("allowed", BindingMode::Allowed),
            ("required", BindingMode::Required),
        ] {
            let b = binding("certificate_bound", json!({ "mode": mode }));
            assert_eq!(b.certificate, expected);
            assert_eq!(b.enabled(), expected != BindingMode::Disabled);
            assert_eq!(b.dpop.mode, BindingMode::Disabled);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let dpop = |v| with(P, "dpop", v);
        #[rustfmt::skip]
        assert_refused(&[
            (dpop(json!({})), "providers.p.dpop.mode", "expected \"disabled\", \"allowed\" or \"required\""),
            (dpop(json!({"mode": "on"})), "providers.p.dpop.mode", "not \"on\""),
            (dpop(json!({"mode": "Allowed"})), "providers.p.dpop.mode", "not \"Allowed\""),
            (dpop(json!({"mode": true})), "providers.p.dpop.mode", "expected a string"),
            (dpop(json!({"mode": "allowed", "algorithms": ["none"]})), "providers.p.dpop.algorithms[0]", "never accepted"),
            (dpop(json!({"mode": "allowed", "algorithms": ["HS256"]})), "providers.p.dpop.algorithms[0]", "HMAC"),
            (dpop(json!({"mode": "allowed", "algorithms": []})), "providers.p.dpop.algorithms", "at least one"),
            (dpop(json!({"mode": "allowed", "max_age": "0s"})), "providers.p.dpop.max_age", "from \"1s\" to \"3600s\""),
            (dpop(json!({"mode": "allowed", "max_age": "3601s"})), "providers.p.dpop.max_age", "whole seconds"),
            (dpop(json!({"mode": "allowed", "max_age": "1.5s"})), "providers.p.dpop.max_age", "whole seconds"),
            (dpop(json!({"mode": "allowed", "max_age": "60"})), "providers.p.dpop.max_age", "duration"),
            (dpop(json!({"mode": "allowed", "max_future": "301s"})), "providers.p.dpop.max_future", "\"300s\""),
            (dpop(json!({"mode": "allowed", "public_url": "https://api.example/v1"})), "providers.p.dpop.public_url", "origin"),
            (dpop(json!({"mode": "allowed", "public_url": "api.example"})), "providers.p.dpop.public_url", "origin"),
            (dpop(json!({"mode": "allowed", "nonce": {"step": "0s"}})), "providers.p.dpop.nonce.step", "whole seconds"),
            (dpop(json!({"mode": "allowed", "nonce": {"stp": "5s"}})), "providers.p.dpop.nonce.stp", "unknown field"),
            (dpop(json!({"mode": "allowed", "nonce": true})), "providers.p.dpop.nonce", "expected an object"),
            (dpop(json!({"mode": "allowed", "replay_cache_size": 0})), "providers.p.dpop.replay_cache_size", "cannot be turned off"),
            (dpop(json!({"mode": "allowed", "replay_cache_size": 15})), "providers.p.dpop.replay_cache_size", "16 to 4194304"),
            (dpop(json!({"mode": "allowed", "replay_cache_size": 4194305})), "providers.p.dpop.replay_cache_size", "16 to"),
            (dpop(json!({"mode": "allowed", "maxage": "5s"})), "providers.p.dpop.maxage", "unknown field"),
            (dpop(json!("allowed")), "providers.p.dpop", "expected an object"),
            (with(P, "certificate_bound", json!({})), "providers.p.certificate_bound.mode", "expected"),
            (with(P, "certificate_bound", json!({"mode": "allowed", "header": "x"})), "providers.p.certificate_bound.header", "unknown field"),
        ]);
    }
}
