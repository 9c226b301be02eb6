//! The `cnf` (confirmation) claim of a verified access token (RFC 7800 §3.1): who may present it.
//! Two confirmation methods are checked here: `jkt`, the thumbprint of a DPoP key (RFC 9449
//! §6.1), and `x5t#S256`, the thumbprint of a client certificate (RFC 8705 §3.1).
//!
//! Strict: a `cnf` that is not an object, or one of these members that is not a base64url
//! SHA-256 digest, refuses the token (`CnfMalformed`); any other member (`jwk`, `jwe`, `jku`,
//! `kid`, ...) binds the token by a method this filter cannot check, so the token must not pass
//! as if it were unbound (`CnfUnsupported`).

use super::BindingError;
use super::thumbprint::Thumbprint;
use crate::claims::Claims;
use serde_json::Value;

/// The confirmation methods a token carries; both `None` for an unbound token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confirmation {
    /// `cnf.jkt`: bound to a DPoP key.
    pub jkt: Option<Thumbprint>,
    /// `cnf.x5t#S256`: bound to a client certificate.
    pub x5t_s256: Option<Thumbprint>,
}

impl Confirmation {
    /// The token's `cnf`, if any (rules in the module doc).
    pub fn of(claims: &Claims) -> Result<Confirmation, BindingError> {
        let Some(cnf) = claims.all.get("cnf") else { return Ok(Confirmation::default()) };
        let members = cnf.as_object().ok_or(BindingError::CnfMalformed)?;
        if members.keys().any(|name| name != "jkt" && name != "x5t#S256") {
            return Err(BindingError::CnfUnsupported);
        }
        Ok(Confirmation {
            jkt: thumbprint(members.get("jkt"))?,
            x5t_s256: thumbprint(members.get("x5t#S256"))?,
        })
    }
}

fn thumbprint(member: Option<&Value>) -> Result<Option<Thumbprint>, BindingError> {
    member
        .map(|value| value.as_str().and_then(Thumbprint::from_b64).ok_or(BindingError::CnfMalformed))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const X5T: &str = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";

    fn of(payload: &str) -> Result<Confirmation, BindingError> {
        Confirmation::of(&Claims::parse(payload.as_bytes()).unwrap())
    }

    #[test]
    fn table() {
        let jkt = Thumbprint::from_b64(JKT);
        let x5t = Thumbprint::from_b64(X5T);
        let cases: Vec<(String, Result<Confirmation, BindingError>)> = vec![
            (r#"{"sub":"a"}"#.into(), Ok(Confirmation::default())),
            (format!(r#"{{"cnf":{{"jkt":"{JKT}"}}}}"#), Ok(Confirmation { jkt, x5t_s256: None })),
            (format!(r#"{{"cnf":{{"x5t#S256":"{X5T}"}}}}"#), Ok(Confirmation { jkt: None, x5t_s256: x5t })),
            (
                format!(r#"{{"cnf":{{"jkt":"{JKT}","x5t#S256":"{X5T}"}}}}"#),
                Ok(Confirmation { jkt, x5t_s256: x5t }),
            ),
            // An empty cnf confirms nothing, like none.
            (r#"{"cnf":{}}"#.into(), Ok(Confirmation::default())),
            (r#"{"cnf":"x"}"#.into(), Err(BindingError::CnfMalformed)),
            (r#"{"cnf":null}"#.into(), Err(BindingError::CnfMalformed)),
            (r#"{"cnf":[]}"#.into(), Err(BindingError::CnfMalformed)),
            (r#"{"cnf":{"jkt":7}}"#.into(), Err(BindingError::CnfMalformed)),
            (r#"{"cnf":{"jkt":null}}"#.into(), Err(BindingError::CnfMalformed)),
            (r#"{"cnf":{"jkt":"abc"}}"#.into(), Err(BindingError::CnfMalformed)),
            (format!(r#"{{"cnf":{{"jkt":"{JKT}="}}}}"#), Err(BindingError::CnfMalformed)),
            (r#"{"cnf":{"x5t#S256":{"a":1}}}"#.into(), Err(BindingError::CnfMalformed)),
            (
                format!(r#"{{"cnf":{{"jkt":"{JKT}","jwk":{{"kty":"EC"}}}}}}"#),
                Err(BindingError::CnfUnsupported),
            ),
            (r#"{"cnf":{"kid":"k"}}"#.into(), Err(BindingError::CnfUnsupported)),
            (r#"{"cnf":{"x5t":"sha1"}}"#.into(), Err(BindingError::CnfUnsupported)),
            (r#"{"cnf":{"JKT":"x"}}"#.into(), Err(BindingError::CnfUnsupported)),
        ];
        for (payload, expected) in cases {
            assert_eq!(of(&payload), expected, "{payload}");
        }
    }
}
