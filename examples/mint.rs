//! Mints test tokens and JWKS documents from PEM keys, for the demo and for manual testing.
//! The keys in tests/fixtures are public test keys: never use them (or these tokens) for real.
//!
//! ```text
//! cargo run --example mint -- token --sub bob --claim scope='"read write"'
//! cargo run --example mint -- jwks --key tests/fixtures/test-only-p256-a.pem:my-kid
//! cargo run --example mint -- dpop --key tests/fixtures/test-only-p256-b.pem --htu http://127.0.0.1:10000/api
//! ```

#[path = "../tests/support/mint.rs"]
mod mint;

use mint::{DEMO_KEYS, Key, Token, dpop_proof};
use serde_json::{Value, json};
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  mint token [--key FILE] [--alg ALG] [--kid KID] [--iss ISS] [--aud AUD] [--sub SUB]
             [--ttl SECONDS] [--claim NAME=VALUE]... [--bind-dpop FILE]
      Prints a signed JWT. Defaults: the demo RSA key (tests/fixtures/test-only-rsa2048-a.pem),
      the key's usual alg (RS256, ES256, ES384 or EdDSA), the key's kid in the demo JWKS (none
      for other keys), --iss https://issuer.example --aud api.example --sub alice --ttl 3600
      (negative: already expired). --claim VALUE is JSON if it parses (42, true, [\"a\"],
      '\"text\"'), else a plain string; it may repeat. ALG: RS256 RS384 RS512 PS256 PS384
      PS512 ES256 ES384 EdDSA. --bind-dpop binds the token to that key (cnf.jkt, its RFC 7638
      thumbprint): a DPoP-bound token, sent as `Authorization: DPoP <token>` with proofs by it.
  mint dpop --key FILE --htu URL [--htm METHOD] [--token TOKEN] [--count N] [--iat-offset SECONDS]
      Prints N DPoP proofs (RFC 9449; default 1), one per line, signed by the key with its usual
      alg (ES256 for a P-256 key), for a METHOD (default GET) request to URL (the origin and path
      the filter sees, or its dpop.public_url), bound to TOKEN (ath) when given. Each has a jti of
      its own and iat now (plus the offset), so each passes once, within dpop.max_age (60 s).
  mint jwks [--key FILE:KID]...
      Prints a JWKS with the public keys of these PKCS#8 PEM private keys; without --key, the
      demo JWKS (the same as envoy/demo-jwks.json).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((cmd, rest)) if cmd == "token" => token(rest),
        Some((cmd, rest)) if cmd == "jwks" => jwks(rest),
        Some((cmd, rest)) if cmd == "dpop" => dpop(rest),
        Some((cmd, _)) if cmd == "-h" || cmd == "--help" || cmd == "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some((cmd, _)) => Err(format!("unknown command {cmd:?}")),
        None => Err("a command is needed".into()),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("error: {why}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` pairs in order; every option takes a value.
fn options(args: &[String]) -> Result<Vec<(&str, &str)>, String> {
    let mut pairs = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let name = arg.strip_prefix("--").ok_or_else(|| format!("unexpected argument {arg:?}"))?;
        let value = iter.next().ok_or_else(|| format!("--{name} needs a value"))?;
        pairs.push((name, value.as_str()));
    }
    Ok(pairs)
}

fn token(args: &[String]) -> Result<String, String> {
    let opts = options(args)?;
    let mut key_file = DEMO_KEYS[0].0.path();
    let (mut alg, mut kid, mut ttl) = (None, None, 3600i64);
    let (mut iss, mut aud, mut sub) = ("https://issuer.example", "api.example", "alice");
    let mut claims = Vec::new();
    for (name, value) in opts {
        match name {
            "key" => key_file = value.to_string(),
            "alg" => alg = Some(value),
            "kid" => kid = Some(value.to_string()),
            "iss" => iss = value,
            "aud" => aud = value,
            "sub" => sub = value,
            "ttl" => {
                ttl =
                    value.parse().map_err(|_| format!("--ttl {value:?} is not a whole number of seconds"))?
            }
            "claim" => claims.push(claim(value)?),
            "bind-dpop" => claims.push(("cnf".into(), json!({"jkt": Key::from_file(value)?.thumbprint()}))),
            _ => return Err(format!("unknown option --{name} for token")),
        }
    }
    let key = Key::from_file(&key_file)?;
    let kid = kid.or_else(|| demo_kid(&key_file));
    let mut token =
        Token::with_key(alg.unwrap_or(key.default_alg()), &key).iss(iss).aud(aud).sub(sub).exp_in(ttl);
    if let Some(kid) = &kid {
        token = token.kid(kid);
    }
    for (name, value) in claims {
        token = token.claim(&name, value);
    }
    token.try_sign()
}

fn dpop(args: &[String]) -> Result<String, String> {
    let (mut key, mut htu, mut htm, mut token) = (None, None, "GET", None);
    let (mut count, mut iat_offset) = (1u64, 0i64);
    let number = |name: &str, value: &str| format!("--{name} {value:?} is not a whole number");
    for (name, value) in options(args)? {
        match name {
            "key" => key = Some(Key::from_file(value)?),
            "htu" => htu = Some(value),
            "htm" => htm = value,
            "token" => token = Some(value),
            "count" => count = value.parse().map_err(|_| number(name, value))?,
            "iat-offset" => iat_offset = value.parse().map_err(|_| number(name, value))?,
            _ => return Err(format!("unknown option --{name} for dpop")),
        }
    }
    let key = key.ok_or("dpop needs --key")?;
    let htu = htu.ok_or("dpop needs --htu")?;
    let proofs: Result<Vec<String>, String> = (0..count)
        .map(|_| dpop_proof(&key, htm, htu, token).claim("iat", json!(mint::now() + iat_offset)).try_sign())
        .collect();
    Ok(proofs?.join("\n"))
}

/// `NAME=VALUE`, VALUE as JSON when it parses, else as a string.
fn claim(spec: &str) -> Result<(String, Value), String> {
    let (name, value) = spec.split_once('=').ok_or_else(|| format!("--claim {spec:?} is not NAME=VALUE"))?;
    if name.is_empty() {
        return Err(format!("--claim {spec:?} has an empty name"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((name.to_string(), value))
}

/// The kid the demo JWKS gives this file's key, if it is one of the demo keys.
fn demo_kid(key_file: &str) -> Option<String> {
    let canonical = std::fs::canonicalize(key_file).ok()?;
    DEMO_KEYS
        .iter()
        .find(|(key, _)| std::fs::canonicalize(key.path()).is_ok_and(|p| p == canonical))
        .map(|(_, kid)| kid.to_string())
}

fn jwks(args: &[String]) -> Result<String, String> {
    let opts = options(args)?;
    if opts.is_empty() {
        return mint::demo_jwks();
    }
    let mut jwks = Vec::new();
    for (name, value) in opts {
        if name != "key" {
            return Err(format!("unknown option --{name} for jwks"));
        }
        let (file, kid) = value.rsplit_once(':').ok_or_else(|| format!("--key {value:?} is not FILE:KID"))?;
        jwks.push(Key::from_file(file)?.jwk(kid, None));
    }
    Ok(mint::jwks_of(jwks))
}
