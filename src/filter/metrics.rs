//! The filter's metrics, defined once per VM through proxy-wasm `define_metric` (Envoy shows them
//! in `/stats` as `wasmcustom.<name>` and in Prometheus output as `<name>` with `_` for `.`).
//!
//! Names follow Envoy's jwt_authn (`allowed`, `denied`, `jwks_fetch_success`, `jwt_cache_hit`...)
//! under the prefix (`stat_prefix`, default `jwt_authn_wasm.`):
//! - `<prefix>allowed`, `<prefix>denied.<category>`, `<prefix>report.allowed`,
//!   `<prefix>cors_preflight_bypassed`: per request;
//! - `<prefix>provider.<name>.allowed`, `.denied.<category>`: per provider's tokens;
//! - `<prefix>provider.<name>.jwks_fetch_success`, `.jwks_fetch_failed`,
//!   `.jwks_refetch_unknown_kid`, `.jwks_stale_served`, `.jwt_cache_hit`, `.jwt_cache_miss`,
//!   `.jwt_verified` (signatures checked), `.jwt_shared_hit` (signatures another VM had checked),
//!   and the gauge `.jwks_age_seconds`.
//!
//! Categories are `AuthnError::CATEGORIES`.
//!
//! Per-request counts are kept in the VM and handed to the host on the root's tick (`flush`, every
//! 100 ms): one host call per counter that moved in that tick instead of three per request. So
//! `/stats` shows a request's counts up to one tick late, and a VM that stops loses at most its
//! last tick's counts. Fetch counters and the gauge go to the host at once (they are rare).

use crate::authn::Event;
use crate::config::Config;
use crate::error::AuthnError;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

const CATEGORIES: usize = AuthnError::CATEGORIES.len();

/// A defined counter (or gauge); `None` if the host refused the definition (never fatal).
#[derive(Debug, Clone, Copy, Default)]
pub struct Metric(Option<u32>);

impl Metric {
    fn define(kind: MetricType, name: &str) -> Metric {
        Metric(hostcalls::define_metric(kind, name).ok())
    }

    pub fn increment(self) {
        if let Some(id) = self.0 {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn add(id: u32, count: u64) {
        let _ = hostcalls::increment_metric(id, i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn record(self, value: u64) {
        if let Some(id) = self.0 {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// One provider's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderMetrics {
    allowed: Metric,
    denied: [Metric; CATEGORIES],
    pub fetch_success: Metric,
    pub fetch_failed: Metric,
    pub refetch_unknown_kid: Metric,
    stale_served: Metric,
    cache_hit: Metric,
    cache_miss: Metric,
    verified: Metric,
    shared_hit: Metric,
    pub age_seconds: Metric,
}

pub struct Metrics {
    allowed: Metric,
    denied: [Metric; CATEGORIES],
    reported: Metric,
    cors_bypassed: Metric,
    pub providers: Vec<ProviderMetrics>,
    /// Per-request counts not yet handed to the host: metric id and count, a handful of entries.
    pending: Vec<(u32, u64)>,
}

fn counter(name: &str) -> Metric {
    Metric::define(MetricType::Counter, name)
}

fn denied(prefix: &str) -> [Metric; CATEGORIES] {
    AuthnError::CATEGORIES.map(|c| counter(&format!("{prefix}denied.{c}")))
}

/// Every category is listed (a test says so); an unlisted one would count nowhere.
fn category_index(e: AuthnError) -> Option<usize> {
    let c = e.category();
    AuthnError::CATEGORIES.iter().position(|k| *k == c)
}

impl ProviderMetrics {
    fn define(prefix: &str) -> ProviderMetrics {
        ProviderMetrics {
            allowed: counter(&format!("{prefix}allowed")),
            denied: denied(prefix),
            fetch_success: counter(&format!("{prefix}jwks_fetch_success")),
            fetch_failed: counter(&format!("{prefix}jwks_fetch_failed")),
            refetch_unknown_kid: counter(&format!("{prefix}jwks_refetch_unknown_kid")),
            stale_served: counter(&format!("{prefix}jwks_stale_served")),
            cache_hit: counter(&format!("{prefix}jwt_cache_hit")),
            cache_miss: counter(&format!("{prefix}jwt_cache_miss")),
            verified: counter(&format!("{prefix}jwt_verified")),
            shared_hit: counter(&format!("{prefix}jwt_shared_hit")),
            age_seconds: Metric::define(MetricType::Gauge, &format!("{prefix}jwks_age_seconds")),
        }
    }
}

impl Metrics {
    pub fn define(config: &Config) -> Metrics {
        let prefix = &config.stat_prefix;
        let providers = config
            .providers
            .iter()
            .map(|p| ProviderMetrics::define(&format!("{prefix}provider.{}.", stat_name(&p.name))));
        Metrics {
            allowed: counter(&format!("{prefix}allowed")),
            denied: denied(prefix),
            reported: counter(&format!("{prefix}report.allowed")),
            cors_bypassed: counter(&format!("{prefix}cors_preflight_bypassed")),
            providers: providers.collect(),
            pending: Vec::new(),
        }
    }

    /// Counts an event (handed to the host by the next `flush`).
    pub fn record(&mut self, event: Event) {
        let provider = |id: usize| self.providers.get(id).copied().unwrap_or_default();
        let metric = match event {
            Event::Allowed => self.allowed,
            Event::Denied(e) => {
                category_index(e).and_then(|i| self.denied.get(i)).copied().unwrap_or_default()
            }
            Event::Reported => self.reported,
            Event::CorsBypassed => self.cors_bypassed,
            Event::Verified(id) => provider(id).allowed,
            Event::Refused(id, e) => {
                category_index(e).and_then(|i| provider(id).denied.get(i).copied()).unwrap_or_default()
            }
            Event::CacheHit(id) => provider(id).cache_hit,
            Event::CacheMiss(id) => provider(id).cache_miss,
            Event::SignatureChecked(id) => provider(id).verified,
            Event::SharedHit(id) => provider(id).shared_hit,
            Event::StaleServed(id) => provider(id).stale_served,
        };
        let Some(id) = metric.0 else { return };
        match self.pending.iter_mut().find(|(pending, _)| *pending == id) {
            Some((_, count)) => *count += 1,
            None => self.pending.push((id, 1)),
        }
    }

    /// Hands the counts recorded since the last flush to the host.
    pub fn flush(&mut self) {
        for (id, count) in self.pending.drain(..) {
            Metric::add(id, count);
        }
    }
}

/// A provider name as one stat-name segment: dots and anything unusual become `_`.
fn stat_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}
