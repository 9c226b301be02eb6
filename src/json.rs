//! Strict JSON for data that comes from outside (token headers and claims, JWKS documents):
//! UTF-8, no duplicate member names at any depth (RFC 7515 §5.2, RFC 8725 §3.x: parsers that keep
//! the first or the last of two `alg`s disagree, and attackers use the disagreement), and bounded
//! nesting. serde_json alone silently keeps the last duplicate, so values are built here through a
//! visitor that refuses them. [`NameSeed`] and [`TextSeed`] let a caller that needs only a few
//! members (the token header) read them borrowed, with the same strictness for the rest.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Nesting allowed in a token header or claim set; real tokens use 2 or 3 levels.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not UTF-8, not JSON, trailing data, or not an object at the top.
    Invalid,
    /// An object names a member twice.
    DuplicateMember,
    /// Objects/arrays nest deeper than allowed.
    TooDeep,
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StrictJsonError::Invalid => "not a JSON object",
            StrictJsonError::DuplicateMember => "duplicate member name",
            StrictJsonError::TooDeep => "nested too deep",
        })
    }
}

/// Parses `bytes` as one JSON object, refusing duplicates and nesting beyond `max_depth`
/// (the top object is depth 1).
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, StrictJsonError> {
    match parse_with(bytes, Strict { depth_left: max_depth })? {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::Invalid),
    }
}

/// Parses `bytes` as one JSON document with a seed of this module's kind (one that refuses
/// duplicates with [`duplicate`] and depth with [`Strict::nested`]), with nothing after it.
pub fn parse_with<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = seed.deserialize(&mut de).map_err(|e| classify(&e))?;
    de.end().map_err(|_| StrictJsonError::Invalid)?;
    Ok(value)
}

/// The error a visitor gives for a member name seen twice in one object.
pub fn duplicate<E: de::Error>() -> E {
    E::custom(DUPLICATE)
}

// serde_json flattens custom errors into its own type; the two strict failures are recognised by
// the messages this module gives them.
const DUPLICATE: &str = "strict-json: duplicate member";
const TOO_DEEP: &str = "strict-json: too deep";

fn classify(e: &serde_json::Error) -> StrictJsonError {
    let msg = e.to_string();
    if msg.starts_with(DUPLICATE) {
        StrictJsonError::DuplicateMember
    } else if msg.starts_with(TOO_DEEP) {
        StrictJsonError::TooDeep
    } else {
        StrictJsonError::Invalid
    }
}

/// A `serde_json::Value` builder that carries the remaining depth and refuses duplicates.
#[derive(Clone, Copy)]
pub struct Strict {
    depth_left: usize,
}

impl Strict {
    /// A builder for a value at the top, allowed `max_depth` levels of nesting (itself included).
    pub fn top(max_depth: usize) -> Strict {
        Strict { depth_left: max_depth }
    }

    /// The builder for the members or items of a value at this depth.
    pub fn nested<E: de::Error>(self) -> Result<Strict, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(Strict { depth_left }),
            None => Err(E::custom(TOO_DEEP)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN/Infinity; an overflowing literal such as 1e400 is refused by serde_json.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(duplicate());
            }
            let value = access.next_value_seed(inner)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// A member name (or any string), borrowed from the input unless it has escapes.
pub struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A value read only for its text: a string (borrowed where it can be), or anything else, which
/// is checked as strictly as [`Strict`] checks it but not kept.
pub enum Text<'de> {
    Str(Cow<'de, str>),
    Other,
}

impl<'de> Text<'de> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Text::Str(s) => Some(s),
            Text::Other => None,
        }
    }
}

/// Reads a [`Text`], at the depth of the given builder.
#[derive(Clone, Copy)]
pub struct TextSeed(pub Strict);

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        NameSeed.visit_borrowed_str(v).map(Text::Str)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        NameSeed.visit_str(v).map(Text::Str)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_unit<E>(self) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
        self.0.visit_seq(seq).map(|_| Text::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
        self.0.visit_map(map).map(|_| Text::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x",{"c":1.5}]}"#, 4).unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        for doc in
            [&br#"{"alg":"RS256","alg":"none"}"#[..], br#"{"a":{"b":1,"b":2}}"#, br#"{"a":[{"x":1,"x":1}]}"#]
        {
            assert_eq!(parse_object(doc, 8), Err(StrictJsonError::DuplicateMember));
        }
        // Escapes are decoded before comparing: "\u0061lg" is "alg".
        assert_eq!(parse_object(br#"{"alg":1,"\u0061lg":2}"#, 8), Err(StrictJsonError::DuplicateMember));
    }

    #[test]
    fn bounds_depth() {
        assert!(parse_object(br#"{"a":{"b":{}}}"#, 3).is_ok());
        assert!(parse_object(br#"{"a":{"b":{"c":1}}}"#, 3).is_ok());
        assert_eq!(parse_object(br#"{"a":{"b":{"c":{}}}}"#, 3), Err(StrictJsonError::TooDeep));
        assert_eq!(parse_object(br#"{"a":[[[]]]}"#, 3), Err(StrictJsonError::TooDeep));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_object(deep.as_bytes(), MAX_DEPTH), Err(StrictJsonError::TooDeep));
    }

    #[test]
    fn refuses_non_objects_and_garbage() {
        for doc in [
            &b"[]"[..],
            b"1",
            b"\"s\"",
            b"null",
            b"",
            b"{",
            b"{}x",
            b"{} {}",
            b"{\"a\":1,}",
            b"\xff{}",
            b"{\"\xff\":1}",
        ] {
            assert_eq!(parse_object(doc, 8), Err(StrictJsonError::Invalid), "{doc:?}");
        }
        assert!(parse_object(b" {} \n", 8).is_ok());
    }
}
