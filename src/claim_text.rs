//! A claim written as text: the value of a `claim_to_headers` header or a `claim_to_filter_state`
//! entry.

use crate::claims::Claims;
use crate::config::ClaimFormat;
use serde_json::Value;

/// A claim (dotted path) as text in `format` (see [`ClaimFormat`]); `None` when the claim is
/// absent or a text value would carry control characters.
pub fn claim_text(claim_name: &str, format: ClaimFormat, claims: &Claims) -> Option<String> {
    let value = claims.get_path(claim_name)?;
    let text = match (format, value) {
        (ClaimFormat::Json, v) => v.to_string(),
        (ClaimFormat::Text, Value::Array(items)) if items.iter().all(is_scalar) => {
            items.iter().map(scalar_text).collect::<Vec<_>>().join(",")
        }
        (ClaimFormat::Text, v) if is_scalar(v) => scalar_text(v),
        (ClaimFormat::Text, v) => v.to_string(),
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(claim: &str, format: ClaimFormat, claims: Value) -> Option<String> {
        claim_text(claim, format, &Claims::parse(claims.to_string().as_bytes()).unwrap())
    }

    #[test]
    fn claim_values_as_text_and_json() {
        let claims = json!({"sub": "alice", "n": 7, "b": true, "f": 1.5, "realm": {"roles": ["a", "b", 3]},
            "mixed": ["a", {"x": 1}], "obj": {"k": "v"}, "bad": "a\nb", "u": "é"});
        let text = |c| header(c, ClaimFormat::Text, claims.clone());
        assert_eq!(text("sub").as_deref(), Some("alice"));
        assert_eq!(text("n").as_deref(), Some("7"));
        assert_eq!(text("b").as_deref(), Some("true"));
        assert_eq!(text("f").as_deref(), Some("1.5"));
        assert_eq!(text("realm.roles").as_deref(), Some("a,b,3"));
        assert_eq!(text("mixed").as_deref(), Some(r#"["a",{"x":1}]"#));
        assert_eq!(text("obj").as_deref(), Some(r#"{"k":"v"}"#));
        assert_eq!(text("u").as_deref(), Some("é"));
        assert_eq!(text("bad"), None, "control characters never reach a header");
        assert_eq!(text("absent"), None);
        let json = |c| header(c, ClaimFormat::Json, claims.clone());
        assert_eq!(json("sub").as_deref(), Some(r#""alice""#));
        assert_eq!(json("realm.roles").as_deref(), Some(r#"["a","b",3]"#));
        assert_eq!(json("bad").as_deref(), Some(r#""a\nb""#), "escaped in JSON");
    }
}
