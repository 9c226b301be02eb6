//! What a verified token must also carry for its provider: `subjects` (jwt_authn), and the
//! extensions `required_claims` and `required_scopes`. These depend only on the token and the
//! provider, so a token that passes them once may be cached.

use crate::claims::Claims;
use crate::config::{Provider, RequiredClaim};
use crate::error::JwtError;
use serde_json::Value;

/// Checks the provider's claim requirements on a token whose signature verified.
pub fn check(provider: &Provider, claims: &Claims) -> Result<(), JwtError> {
    if let Some(subjects) = &provider.subjects
        && !subjects.allows(claims.sub.as_deref())
    {
        return Err(JwtError::SubjectNotAllowed);
    }
    if !provider.required_claims.iter().all(|r| claim_matches(r, claims)) {
        return Err(JwtError::ClaimMismatch);
    }
    let granted = claims.scopes();
    if !provider.required_scopes.iter().all(|s| granted.contains(&s.as_str())) {
        return Err(JwtError::InsufficientScope);
    }
    Ok(())
}

/// The claim equals one of the values, or (an array) contains one of them. Values compare as JSON
/// values: `"1"` is not `1`.
fn claim_matches(required: &RequiredClaim, claims: &Claims) -> bool {
    match claims.get_path(&required.name) {
        Some(Value::Array(items)) => items.iter().any(|item| required.values.contains(item)),
        Some(value) => required.values.contains(value),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn provider(extra: serde_json::Value) -> Provider {
        let mut p = json!({"local_jwks": {"inline_string": "{\"keys\":[]}"}});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        let doc = json!({"providers": {"p": p}}).to_string();
        Config::parse(doc.as_bytes()).unwrap().providers.remove(0)
    }

    fn claims(json: serde_json::Value) -> Claims {
        Claims::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn required_claims_all_of_with_any_of_values() {
        let p = provider(json!({"required_claims": [
            {"name": "tenant", "values": ["acme"]},
            {"name": "realm.roles", "values": ["admin", "ops"]},
            {"name": "level", "values": [3, true]}]}));
        let ok = json!({"tenant": "acme", "realm": {"roles": ["dev", "ops"]}, "level": 3});
        assert_eq!(check(&p, &claims(ok.clone())), Ok(()));
        let cases = [
            json!({"tenant": "acme", "realm": {"roles": "ops"}, "level": true}),
            json!({"tenant": "acme", "realm": {"roles": ["admin"]}, "level": [1, 3]}),
        ];
        for c in cases {
            assert_eq!(check(&p, &claims(c.clone())), Ok(()), "{c}");
        }
        let refused = [
            json!({"realm": {"roles": ["ops"]}, "level": 3}),
            json!({"tenant": "ACME", "realm": {"roles": ["ops"]}, "level": 3}),
            json!({"tenant": "acme", "realm": {"roles": ["dev"]}, "level": 3}),
            json!({"tenant": "acme", "realm": {"roles": []}, "level": 3}),
            json!({"tenant": "acme", "realm": {"roles": ["ops"]}, "level": "3"}),
            json!({"tenant": ["acme"], "realm": {"roles": {"ops": true}}, "level": 3}),
        ];
        for c in refused {
            assert_eq!(check(&p, &claims(c.clone())), Err(JwtError::ClaimMismatch), "{c}");
        }
    }

    #[test]
    fn required_scopes_all_of_from_scope_or_scp() {
        let p = provider(json!({"required_scopes": ["read", "write"]}));
        for ok in [
            json!({"scope": "write read extra"}),
            json!({"scp": ["read", "write"]}),
            json!({"scope": "read", "scp": "write"}),
        ] {
            assert_eq!(check(&p, &claims(ok.clone())), Ok(()), "{ok}");
        }
        for refused in [
            json!({"scope": "read"}),
            json!({"scope": "readwrite"}),
            json!({}),
            json!({"scope": "READ WRITE"}),
        ] {
            assert_eq!(check(&p, &claims(refused.clone())), Err(JwtError::InsufficientScope), "{refused}");
        }
    }

    #[test]
    fn subjects_first() {
        let p = provider(json!({"subjects": {"prefix": "spiffe://"}, "required_scopes": ["a"]}));
        assert_eq!(check(&p, &claims(json!({"sub": "spiffe://x", "scope": "a"}))), Ok(()));
        assert_eq!(check(&p, &claims(json!({"sub": "x", "scope": "a"}))), Err(JwtError::SubjectNotAllowed));
        assert_eq!(check(&p, &claims(json!({"scope": "a"}))), Err(JwtError::SubjectNotAllowed));
        assert_eq!(check(&p, &claims(json!({"sub": "spiffe://x"}))), Err(JwtError::InsufficientScope));
    }
}
