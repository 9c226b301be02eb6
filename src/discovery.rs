//! OIDC discovery (OpenID Connect Discovery 1.0 §4): from the issuer's
//! `/.well-known/openid-configuration` document to the JWKS location, trusting the document only
//! as far as the configuration allows: it must name exactly the provider's issuer, and its
//! `jwks_uri` must point at the issuer's own host (or one the configuration lists), so a tampered
//! document cannot aim the proxy elsewhere.

use crate::config::{Discovery, split_uri};
use crate::json;

/// Largest discovery document read.
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// The JWKS `(authority, path)` named by a discovery document, or why it is not trusted.
pub fn jwks_location(document: &[u8], discovery: &Discovery) -> Result<(String, String), String> {
    if document.len() > MAX_DISCOVERY_BYTES {
        return Err(format!("discovery document over {MAX_DISCOVERY_BYTES} bytes"));
    }
    let doc = json::parse_object(document, 8).map_err(|e| format!("discovery document: {e}"))?;
    let issuer = doc.get("issuer").and_then(|v| v.as_str()).ok_or("discovery document has no issuer")?;
    if issuer != discovery.issuer {
        return Err(format!("discovery document names issuer {issuer:?}, not {:?}", discovery.issuer));
    }
    let jwks_uri =
        doc.get("jwks_uri").and_then(|v| v.as_str()).ok_or("discovery document has no jwks_uri")?;
    let (authority, path) =
        split_uri(jwks_uri).ok_or_else(|| format!("jwks_uri {jwks_uri:?} is not an http(s) URL"))?;
    if !host_allowed(&authority, discovery) {
        return Err(format!("jwks_uri host {authority:?} is neither the issuer's nor allowed"));
    }
    Ok((authority, path))
}

/// The issuer's host, or an allowed entry (`host` matches any port, `host:port` only that one);
/// hosts compare case-insensitively.
fn host_allowed(authority: &str, discovery: &Discovery) -> bool {
    let authority = authority.to_ascii_lowercase();
    let host = host_of(&authority);
    let issuer_host = split_uri(&discovery.issuer).map(|(a, _)| host_of(&a.to_ascii_lowercase()).to_owned());
    issuer_host.as_deref() == Some(host)
        || discovery.allowed_jwks_hosts.iter().any(|h| *h == authority || *h == host)
}

/// `host` of `host[:port]` (bracketed IPv6 kept whole).
fn host_of(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(allowed: &[&str]) -> Discovery {
        Discovery {
            issuer: "https://idp.example/realms/a".into(),
            allowed_jwks_hosts: allowed.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn doc(issuer: &str, jwks_uri: &str) -> Vec<u8> {
        serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["code"]})
            .to_string()
            .into_bytes()
    }

    const ISSUER: &str = "https://idp.example/realms/a";

    #[test]
    fn a_good_document_names_the_jwks() {
        let found =
            jwks_location(&doc(ISSUER, "https://IDP.example:8443/realms/a/certs?x=1"), &discovery(&[]));
        assert_eq!(found, Ok(("IDP.example:8443".into(), "/realms/a/certs?x=1".into())));
        let other = jwks_location(&doc(ISSUER, "https://keys.example/jwks"), &discovery(&["keys.example"]));
        assert_eq!(other, Ok(("keys.example".into(), "/jwks".into())));
        let port =
            jwks_location(&doc(ISSUER, "https://keys.example:9443/jwks"), &discovery(&["keys.example:9443"]));
        assert!(port.is_ok());
    }

    #[test]
    fn a_tampered_document_is_refused() {
        let d = discovery(&["keys.example:9443"]);
        let refused = [
            doc("https://idp.example/realms/a/", "https://idp.example/certs"),
            doc("https://evil.example", "https://idp.example/certs"),
            doc(ISSUER, "https://evil.example/certs"),
            doc(ISSUER, "https://idp.example.evil.example/certs"),
            doc(ISSUER, "https://keys.example/certs"),
            doc(ISSUER, "https://keys.example:9444/certs"),
            doc(ISSUER, "ftp://idp.example/certs"),
            doc(ISSUER, "https://user@idp.example/certs"),
            br#"{"issuer":"https://idp.example/realms/a"}"#.to_vec(),
            br#"{"jwks_uri":"https://idp.example/certs"}"#.to_vec(),
            br#"{"issuer":"https://idp.example/realms/a","jwks_uri":"https://idp.example/c","issuer":"x"}"#
                .to_vec(),
            br#"{"issuer":1,"jwks_uri":"https://idp.example/c"}"#.to_vec(),
            b"not json".to_vec(),
            vec![b' '; MAX_DISCOVERY_BYTES + 1],
        ];
        for document in refused {
            let answer = jwks_location(&document, &d);
            assert!(answer.is_err(), "{}: {answer:?}", String::from_utf8_lossy(&document));
        }
    }
}
