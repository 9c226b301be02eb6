//! Where a provider's keys come from: `local_jwks` (a `DataSource`, inline only), `remote_jwks`
//! (`http_uri`, refresh and the key-lifecycle extensions) or the `oidc_discovery` extension, and
//! the URI checks the fetch relies on.

use super::walk::Decision::{Reject, Warn};
use super::walk::{Obj, Unused, in_range, non_empty};
use super::{Result, error};
use crate::jwks::{JwksError, KeySet};
use base64::Engine;
use std::time::Duration;

/// `http_uri.timeout` when absent. jwt_authn requires the field; this filter defaults it instead.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// `remote_jwks.cache_duration` when absent, as jwt_authn.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
/// `async_fetch.failed_refetch_duration` when absent, as jwt_authn.
pub const DEFAULT_FAILED_REFETCH_DURATION: Duration = Duration::from_secs(1);
/// Default least freshness of fetched keys, whatever the answer's caching headers say.
pub const DEFAULT_MIN_CACHE_DURATION: Duration = Duration::from_secs(60);
/// Default bound on serving keys past their freshness while refreshes fail.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// Default least time between refetches caused by unknown `kid`s.
pub const DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default largest JWKS answer accepted.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;
/// Largest `max_jwks_bytes` allowed.
pub const MAX_CONFIGURABLE_JWKS_BYTES: usize = 16 * 1024 * 1024;
/// Why `local_jwks.filename` / `environment_variable` / `watched_directory` cannot work.
pub const LOCAL_JWKS_UNREACHABLE: &str = "the wasm sandbox cannot read Envoy's files, and sees \
     only environment variables passed through vm_config, which this filter does not read; \
     put the JWKS in `inline_string`";

/// Where a provider's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An inline JWKS document, parsed at load.
    Local(KeySet),
    Remote(Box<RemoteJwks>),
}

/// `remote_jwks`, split for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub uri: String,
    pub cluster: String,
    /// `:authority` (host and optional port).
    pub authority: String,
    /// `:path`, with the query if any; `/` when the uri has none.
    pub path: String,
    pub timeout: Duration,
    pub cache_duration: Duration,
    pub failed_refetch_duration: Duration,
    /// Extension: the least freshness an answer's caching headers can ask for.
    pub min_cache_duration: Duration,
    /// Extension: how long past their freshness keys keep serving while refreshes fail.
    pub max_stale: Duration,
    /// Extension: least time between refetches caused by unknown `kid`s.
    pub unknown_kid_refetch_interval: Duration,
    /// Extension: largest JWKS answer accepted.
    pub max_jwks_bytes: usize,
    /// Extension (`oidc_discovery`): `uri` is then the issuer's discovery document, which names
    /// the JWKS.
    pub discovery: Option<Discovery>,
}

impl RemoteJwks {
    /// The name under which VMs share this source's keys and fetch state (proxy-wasm shared data,
    /// one namespace per `vm_id`, so across providers, listeners and config versions). Sound
    /// because it holds everything that decides which answer is accepted as keys: the cluster,
    /// the URI, `max_jwks_bytes`, and for discovery the issuer and the allowed JWKS hosts. So keys
    /// one configuration publishes are keys every other configuration reading them would have
    /// accepted from its own fetch: a configuration that does not allow a host never adopts keys
    /// another one fetched there. JSON-encoded, so no two sources can spell the same name; under
    /// the format version, so a module reading another format never meets them.
    pub fn shared_name(&self) -> String {
        let discovery = self.discovery.as_ref().map(|d| (&d.issuer, &d.allowed_jwks_hosts));
        let source = serde_json::json!([self.cluster, self.uri, self.max_jwks_bytes, discovery]);
        format!("{}/{source}", crate::namespace::NAMESPACE)
    }
}

/// OIDC discovery (provider field `oidc_discovery`): the JWKS URI comes from
/// `<issuer>/.well-known/openid-configuration`, fetched through `RemoteJwks::cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The provider's issuer: the document must name exactly it.
    pub issuer: String,
    /// Hosts (`host[:port]`, lower case) the document's `jwks_uri` may point at besides the
    /// issuer's own.
    pub allowed_jwks_hosts: Vec<String>,
}

const REMOTE_JWKS_UNUSED: &Unused =
    &[("retry_policy", Warn("failed fetches are retried after failed_refetch_duration"))];
const ASYNC_FETCH_UNUSED: &Unused =
    &[("fast_listener", Warn("requests wait for first keys up to startup_hold_timeout"))];
const DATA_SOURCE_UNUSED: &Unused = &[
    ("filename", Reject(LOCAL_JWKS_UNREACHABLE)),
    ("environment_variable", Reject(LOCAL_JWKS_UNREACHABLE)),
    ("watched_directory", Reject(LOCAL_JWKS_UNREACHABLE)),
];

/// Exactly one of `local_jwks`, `remote_jwks` and `oidc_discovery` (which may come with
/// `remote_jwks` for its refresh settings, without `http_uri`).
pub(super) fn parse_key_source(
    o: &mut Obj,
    issuer: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<KeySource> {
    let path = o.path.clone();
    match (o.obj("remote_jwks")?, o.obj("local_jwks")?, o.obj("oidc_discovery")?) {
        (None, Some(local), None) => parse_local_jwks(local, warnings).map(KeySource::Local),
        (None, None, None) => Err(error(path, "set remote_jwks, local_jwks or oidc_discovery")),
        (_, Some(_), _) => Err(error(path, "set only one of remote_jwks and local_jwks (or oidc_discovery)")),
        (remote, None, discovery) => parse_remote_jwks(remote, discovery, issuer, &path, warnings)
            .map(|r| KeySource::Remote(Box::new(r))),
    }
}

fn parse_local_jwks(mut o: Obj, warnings: &mut Vec<String>) -> Result<KeySet> {
    let path = o.path.clone();
    let bytes_path = o.at("inline_bytes");
    let inline_string = o.str("inline_string")?;
    let inline_bytes = o.str("inline_bytes")?;
    // The decision table first: `filename` deserves its own explanation.
    o.finish(&[DATA_SOURCE_UNUSED], warnings)?;
    let jwks = match (inline_string, inline_bytes) {
        (Some(s), None) => s.to_owned(),
        (None, Some(b64)) => decode_inline_bytes(b64, &bytes_path)?,
        (Some(_), Some(_)) => {
            return Err(error(path, "set only one of inline_string and inline_bytes"));
        }
        (None, None) => return Err(error(path, "set inline_string with the JWKS document")),
    };
    if jwks.trim().is_empty() {
        return Err(error(path, "the inline JWKS is empty"));
    }
    local_key_set(&jwks, &path, warnings)
}

/// An inline JWKS that is not a JWKS is a config error. One without a usable key is accepted with
/// a warning (as jwt_authn, and the `{"keys": []}` placeholder of its docs): every token of that
/// provider is then refused, which is the safe reading of "no keys".
fn local_key_set(jwks: &str, path: &str, warnings: &mut Vec<String>) -> Result<KeySet> {
    match KeySet::parse(jwks.as_bytes()) {
        Ok(parsed) => {
            for skipped in &parsed.skipped {
                warnings.push(format!("`{path}`: key skipped: {skipped}"));
            }
            Ok(parsed.keys)
        }
        Err(e @ JwksError::NoUsableKey(_)) => {
            warnings.push(format!("`{path}`: {e}; every token of this provider will be refused"));
            Ok(KeySet::default())
        }
        Err(e) => Err(error(path, e.to_string())),
    }
}

/// proto JSON `bytes`: base64, standard or URL-safe alphabet, padded or not.
fn decode_inline_bytes(b64: &str, path: &str) -> Result<String> {
    use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
    let bytes = STANDARD_PAD_INDIFFERENT
        .decode(b64)
        .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(b64))
        .map_err(|_| error(path, "expected base64"))?;
    String::from_utf8(bytes).map_err(|_| error(path, "the decoded JWKS is not UTF-8"))
}

/// Where a remote key set is fetched from: `remote_jwks.http_uri`, or the discovery document.
struct Source {
    uri: String,
    cluster: String,
    timeout: Duration,
    discovery: Option<Discovery>,
}

fn parse_remote_jwks(
    remote: Option<Obj>,
    discovery: Option<Obj>,
    issuer: Option<&str>,
    provider_path: &str,
    warnings: &mut Vec<String>,
) -> Result<RemoteJwks> {
    let mut remote = remote;
    let http_uri = match remote.as_mut() {
        Some(r) => r.obj("http_uri")?,
        None => None,
    };
    let source = match (http_uri, discovery) {
        (Some(http_uri), None) => parse_http_uri(http_uri)?,
        (None, Some(discovery)) => parse_discovery(discovery, issuer, provider_path)?,
        (None, None) => return Err(error(format!("{provider_path}.remote_jwks.http_uri"), "required")),
        (Some(_), Some(_)) => {
            return Err(error(
                format!("{provider_path}.oidc_discovery"),
                "oidc_discovery replaces remote_jwks.http_uri: set only one",
            ));
        }
    };
    let (authority, path) = split_uri(&source.uri).ok_or_else(|| error(provider_path, "unreachable URI"))?;
    let mut jwks = RemoteJwks {
        uri: source.uri,
        cluster: source.cluster,
        authority,
        path,
        timeout: source.timeout,
        cache_duration: DEFAULT_CACHE_DURATION,
        failed_refetch_duration: DEFAULT_FAILED_REFETCH_DURATION,
        min_cache_duration: DEFAULT_MIN_CACHE_DURATION,
        max_stale: DEFAULT_MAX_STALE,
        unknown_kid_refetch_interval: DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL,
        max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
        discovery: source.discovery,
    };
    if let Some(remote) = remote {
        parse_remote_tuning(remote, &mut jwks, warnings)?;
    }
    Ok(jwks)
}

fn parse_http_uri(mut http_uri: Obj) -> Result<Source> {
    let uri_path = http_uri.at("uri");
    let uri = non_empty(http_uri.str("uri")?.unwrap_or(""), &uri_path)?;
    if split_uri(uri).is_none() {
        return Err(error(
            &uri_path,
            "expected an http:// or https:// URL with a host and no user info or fragment",
        ));
    }
    let cluster_path = http_uri.at("cluster");
    let cluster = non_empty(http_uri.str("cluster")?.unwrap_or(""), &cluster_path)?.to_owned();
    let timeout = parse_timeout(&mut http_uri)?;
    http_uri.finish_all_known()?;
    Ok(Source { uri: uri.to_owned(), cluster, timeout, discovery: None })
}

/// `oidc_discovery: {cluster, timeout, allowed_jwks_hosts}`: the issuer must be an http(s) URL.
fn parse_discovery(mut o: Obj, issuer: Option<&str>, provider_path: &str) -> Result<Source> {
    let issuer_path = format!("{provider_path}.issuer");
    let issuer = issuer.ok_or_else(|| error(&issuer_path, "oidc_discovery needs the provider's issuer"))?;
    let uri = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    if split_uri(&uri).is_none() || uri.contains('?') {
        return Err(error(
            issuer_path,
            "oidc_discovery needs an http:// or https:// issuer URL without query",
        ));
    }
    let cluster_path = o.at("cluster");
    let cluster = non_empty(o.str("cluster")?.unwrap_or(""), &cluster_path)?.to_owned();
    let timeout = parse_timeout(&mut o)?;
    let hosts_path = o.at("allowed_jwks_hosts");
    let allowed_jwks_hosts = o
        .str_list("allowed_jwks_hosts")?
        .into_iter()
        .map(|h| match valid_authority(&h) {
            true => Ok(h.to_ascii_lowercase()),
            false => Err(error(&hosts_path, format!("`{h}` is not a host[:port]"))),
        })
        .collect::<Result<Vec<_>>>()?;
    o.finish_all_known()?;
    Ok(Source {
        uri,
        cluster,
        timeout,
        discovery: Some(Discovery { issuer: issuer.to_owned(), allowed_jwks_hosts }),
    })
}

fn parse_timeout(o: &mut Obj) -> Result<Duration> {
    match o.duration("timeout")? {
        None => Ok(DEFAULT_FETCH_TIMEOUT),
        Some(d) => in_range(
            d,
            &o.at("timeout"),
            Duration::from_millis(1),
            Duration::from_secs(1 << 32),
            "expected a positive timeout",
        ),
    }
}

/// The rest of `remote_jwks`: refresh, retry and the key-lifecycle extensions.
fn parse_remote_tuning(mut o: Obj, jwks: &mut RemoteJwks, warnings: &mut Vec<String>) -> Result<()> {
    let positive = |o: &mut Obj, key: &'static str, max: Duration, what: &str| -> Result<Option<Duration>> {
        let path = o.at(key);
        o.duration(key)?.map(|d| in_range(d, &path, Duration::from_millis(1), max, what)).transpose()
    };
    // jwt_authn's validation range.
    let cache = positive(
        &mut o,
        "cache_duration",
        Duration::from_secs(9_000_000_000),
        "expected at least 1ms and less than 9000000000s",
    )?;
    jwks.cache_duration = cache.unwrap_or(DEFAULT_CACHE_DURATION);
    if let Some(mut fetch) = o.obj("async_fetch")? {
        // Below 1ms the identity provider would be hammered while it is down.
        let retry = positive(&mut fetch, "failed_refetch_duration", Duration::MAX, "expected at least 1ms")?;
        jwks.failed_refetch_duration = retry.unwrap_or(DEFAULT_FAILED_REFETCH_DURATION);
        fetch.finish(&[ASYNC_FETCH_UNUSED], warnings)?;
    }
    let any = Duration::MAX;
    if let Some(d) = positive(&mut o, "min_cache_duration", any, "expected at least 1ms")? {
        jwks.min_cache_duration = d;
    }
    if let Some(d) = o.duration("max_stale")? {
        jwks.max_stale = d;
    }
    if let Some(d) = positive(&mut o, "unknown_kid_refetch_interval", any, "expected at least 1ms")? {
        jwks.unknown_kid_refetch_interval = d;
    }
    let max_path = o.at("max_jwks_bytes");
    if let Some(n) = o.u32("max_jwks_bytes")? {
        let n = n as usize;
        if !(1024..=MAX_CONFIGURABLE_JWKS_BYTES).contains(&n) {
            return Err(error(max_path, format!("expected 1024 to {MAX_CONFIGURABLE_JWKS_BYTES}")));
        }
        jwks.max_jwks_bytes = n;
    }
    o.finish(&[REMOTE_JWKS_UNUSED], warnings)
}

/// `http(s)://host[:port][/path][?query]` → (`host[:port]`, `/path?query`).
pub fn split_uri(uri: &str) -> Option<(String, String)> {
    let scheme_end = uri.find("://")?;
    let scheme = uri.get(..scheme_end)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = uri.get(scheme_end + 3..)?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if !valid_authority(authority) || !visible(path) || path.contains('#') {
        return None;
    }
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    Some((authority.to_owned(), path))
}

/// `host[:port]` with a DNS name, IPv4 or bracketed IPv6 host; user info is refused.
pub fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{JWKS, P, URI, assert_refused, base, parse, with};
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn key_source_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(URI, "timeout", json!("5")), "providers.p.remote_jwks.http_uri.timeout", "expected a duration like \"5s\""),
            (with(URI, "timeout", json!({"seconds": 5})), "providers.p.remote_jwks.http_uri.timeout", "like \"5s\""),
            (with(URI, "timeout", json!("0s")), "providers.p.remote_jwks.http_uri.timeout", "positive"),
            (with(JWKS, "cache_duration", json!("0s")), "providers.p.remote_jwks.cache_duration", "at least 1ms"),
            (with(JWKS, "cache_duration", json!("9000000000s")), "providers.p.remote_jwks.cache_duration", "less than"),
            (with(JWKS, "async_fetch", json!({"failed_refetch_duration": "1m"})), "providers.p.remote_jwks.async_fetch.failed_refetch_duration", "duration"),
            (with(P, "remote_jwks", Value::Null), "providers.p", "set remote_jwks, local_jwks or oidc_discovery"),
            (with(P, "local_jwks", json!({"inline_string": "{}"})), "providers.p", "only one of remote_jwks and local_jwks"),
            (with("/providers/q/local_jwks", "filename", json!("/etc/jwks.json")), "providers.q.local_jwks.filename", "wasm sandbox cannot read"),
            (with("/providers/q", "local_jwks", json!({"environment_variable": "JWKS"})), "providers.q.local_jwks.environment_variable", "vm_config"),
            (with("/providers/q", "local_jwks", json!({})), "providers.q.local_jwks", "set inline_string"),
            (with("/providers/q", "local_jwks", json!({"inline_string": " "})), "providers.q.local_jwks", "empty"),
            (with("/providers/q", "local_jwks", json!({"inline_bytes": "%%%"})), "providers.q.local_jwks.inline_bytes", "base64"),
            (with("/providers/q", "local_jwks", json!({"inline_bytes": "e30=", "inline_string": "{}"})), "providers.q.local_jwks", "only one"),
            (with(URI, "cluster", Value::Null), "providers.p.remote_jwks.http_uri.cluster", "must not be empty"),
            (with(URI, "uri", json!("ftp://idp.example/jwks")), "providers.p.remote_jwks.http_uri.uri", "http:// or https://"),
            (with(URI, "uri", json!("https://user:pw@idp.example/jwks")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(URI, "uri", json!("https:///jwks")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(URI, "uri", json!("https://idp.example/jwks#x")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(URI, "uri", json!("https://idp.example:99999/")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(URI, "uri", json!("idp.example/jwks")), "providers.p.remote_jwks.http_uri.uri", "http"),
            (with(JWKS, "http_uri", Value::Null), "providers.p.remote_jwks.http_uri", "required"),
            (with(JWKS, "cache_duraton", json!("1s")), "providers.p.remote_jwks.cache_duraton", "unknown field"),
        ]);
    }

    #[test]
    fn key_lifecycle_fields_and_discovery() {
        let mut doc = base();
        let remote = &mut doc["providers"]["p"]["remote_jwks"];
        remote["min_cache_duration"] = json!("5s");
        remote["max_stale"] = json!("3600s");
        remote["unknown_kid_refetch_interval"] = json!("10s");
        remote["max_jwks_bytes"] = json!(65536);
        let config = parse(&doc).unwrap();
        let KeySource::Remote(jwks) = &config.providers[0].keys else { panic!("remote expected") };
        assert_eq!(
            (jwks.min_cache_duration, jwks.max_stale, jwks.unknown_kid_refetch_interval, jwks.max_jwks_bytes),
            (Duration::from_secs(5), Duration::from_secs(3600), Duration::from_secs(10), 65536)
        );

        let discovery = |issuer: &str, d: Value, remote: Option<Value>| {
            let mut p = json!({"issuer": issuer, "oidc_discovery": d});
            if let Some(r) = remote {
                p["remote_jwks"] = r;
            }
            json!({"providers": {"p": p}})
        };
        let doc = discovery(
            "https://idp.example/realms/a/",
            json!({"cluster": "idp", "timeout": "2s", "allowed_jwks_hosts": ["Keys.Example:8443"]}),
            Some(json!({"cache_duration": "60s"})),
        );
        let config = parse(&doc).unwrap();
        let KeySource::Remote(jwks) = &config.providers[0].keys else { panic!("remote expected") };
        assert_eq!(jwks.uri, "https://idp.example/realms/a/.well-known/openid-configuration");
        assert_eq!(
            (jwks.authority.as_str(), jwks.path.as_str()),
            ("idp.example", "/realms/a/.well-known/openid-configuration")
        );
        assert_eq!(
            (jwks.cluster.as_str(), jwks.timeout, jwks.cache_duration),
            ("idp", Duration::from_secs(2), Duration::from_secs(60))
        );
        assert_eq!(
            jwks.discovery,
            Some(Discovery {
                issuer: "https://idp.example/realms/a/".into(),
                allowed_jwks_hosts: vec!["keys.example:8443".into()]
            })
        );

        let cases = [
            (
                discovery("https://idp.example", json!({"timeout": "2s"}), None),
                "providers.p.oidc_discovery.cluster",
            ),
            (json!({"providers": {"p": {"oidc_discovery": {"cluster": "idp"}}}}), "providers.p.issuer"),
            (discovery("urn:example", json!({"cluster": "idp"}), None), "providers.p.issuer"),
            (discovery("https://idp.example?x", json!({"cluster": "idp"}), None), "providers.p.issuer"),
            (
                discovery(
                    "https://idp.example",
                    json!({"cluster": "idp"}),
                    Some(json!({"http_uri": {"uri": "https://x/j", "cluster": "c"}})),
                ),
                "providers.p.oidc_discovery",
            ),
            (
                discovery(
                    "https://idp.example",
                    json!({"cluster": "idp", "allowed_jwks_hosts": ["a/b"]}),
                    None,
                ),
                "providers.p.oidc_discovery.allowed_jwks_hosts",
            ),
            (
                discovery("https://idp.example", json!({"cluster": "idp", "jwks": 1}), None),
                "providers.p.oidc_discovery.jwks",
            ),
            (
                json!({"providers": {"p": {"remote_jwks": {"cache_duration": "5s"}}}}),
                "providers.p.remote_jwks.http_uri",
            ),
            (
                with("/providers/p/remote_jwks", "max_jwks_bytes", json!(10)),
                "providers.p.remote_jwks.max_jwks_bytes",
            ),
            (with("/providers/p/remote_jwks", "max_stale", json!("1h")), "providers.p.remote_jwks.max_stale"),
            (
                with("/providers/p/remote_jwks", "unknown_kid_refetch_interval", json!("0s")),
                "providers.p.remote_jwks.unknown_kid_refetch_interval",
            ),
        ];
        for (doc, field) in cases {
            let e = parse(&doc).unwrap_err();
            assert_eq!(e.field, field, "{doc}: {e}");
        }
    }

    /// Two sources share keys only when every field that decides which answer is accepted is
    /// equal; each such field alone gives another name.
    #[test]
    fn shared_name_separates_sources_that_accept_different_answers() {
        let remote = |provider: Value| {
            let doc = json!({"providers": {"p": provider}});
            match parse(&doc).unwrap().providers.swap_remove(0).keys {
                KeySource::Remote(jwks) => jwks.shared_name(),
                KeySource::Local(_) => panic!("remote expected"),
            }
        };
        let http = |uri: &str, cluster: &str| json!({"uri": uri, "cluster": cluster});
        let plain = |uri: &str, cluster: &str, extra: Value| {
            let mut jwks = json!({"http_uri": http(uri, cluster), "cache_duration": "60s"});
            jwks.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            remote(json!({"issuer": "https://i.example", "remote_jwks": jwks}))
        };
        let discovery = |issuer: &str, hosts: &[&str]| {
            let d = json!({"cluster": "idp", "allowed_jwks_hosts": hosts});
            remote(json!({"issuer": issuer, "oidc_discovery": d}))
        };
        let base = plain("https://idp.example/jwks", "idp", json!({}));
        // Schedule fields do not decide what is accepted: the same name.
        assert_eq!(base, plain("https://idp.example/jwks", "idp", json!({"cache_duration": "1s"})));
        let others = [
            plain("https://idp.example/jwks2", "idp", json!({})),
            plain("https://idp.example/jwks", "idp2", json!({})),
            plain("https://idp.example/jwks", "idp", json!({"max_jwks_bytes": 4096})),
            // Separators inside names cannot make two sources meet.
            plain("https://idp.example/jwks", "idp/https://idp.example/jwks", json!({})),
            discovery("https://idp.example/jwks", &[]),
        ];
        for other in &others {
            assert_ne!(&base, other);
        }
        let login = discovery("https://login.example", &[]);
        assert_eq!(login, discovery("https://login.example", &[]));
        assert_ne!(login, discovery("https://login.example", &["keys.example"]));
        assert_ne!(login, discovery("https://login.example/other", &[]));
    }
}
