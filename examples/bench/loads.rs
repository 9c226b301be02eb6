//! What the windows of `instructions` send: per load, the requests of the warm-up and of the
//! counted window, each with its credentials.

use crate::callgrind::Credentials;
use crate::setup::{self, Alg, ES256, RS256, Tokens, Workload};
use crate::support::mint::{self, TestKey};
use std::path::Path;

/// Which tokens the requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// One token again and again.
    Repeat(Alg),
    /// A token never seen before with every request.
    Fresh(Alg),
    /// Two RS256 tokens in turn, with a per-worker cache of one token: every request misses the
    /// worker's cache and finds its token in the process-wide record, where the other token's
    /// request left it: the path of a token another worker verified.
    SharedHit,
    /// One DPoP-bound RS256 token (`cnf.jkt` of `DPOP_KEY`) again and again, as
    /// `Authorization: DPoP`, each request with a proof of its own (ES256, minted right before
    /// the warm-up): a cached token and one proof verification per request.
    Dpop,
}

pub const REPEAT: &[Load] = &[Load::Repeat(RS256)];
pub const VERIFYING: &[Load] = &[Load::Repeat(RS256), Load::Fresh(RS256), Load::Fresh(ES256)];
/// The table's columns.
pub const LOADS: [Load; 5] =
    [Load::Repeat(RS256), Load::Fresh(RS256), Load::Fresh(ES256), Load::SharedHit, Load::Dpop];

/// The key that makes the `Dpop` load's proofs (ES256).
const DPOP_KEY: TestKey = TestKey::P256B;

impl Load {
    pub fn name(self) -> String {
        match self {
            Load::Repeat(alg) => format!("{}-repeat", alg.name),
            Load::Fresh(alg) => format!("{}-fresh", alg.name),
            Load::SharedHit => "RS256-shared".into(),
            Load::Dpop => "dpop".into(),
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Load::Repeat(_) => "repeat",
            Load::Fresh(_) => "fresh",
            Load::SharedHit => "shared",
            Load::Dpop => "dpop",
        }
    }

    pub fn label(self) -> String {
        match self {
            Load::Repeat(alg) => format!("repeat {}", alg.name),
            Load::Fresh(alg) => format!("fresh {}", alg.name),
            Load::SharedHit => "shared-record hit".into(),
            Load::Dpop => "DPoP (cached token, new ES256 proof)".into(),
        }
    }

    /// The row and workload its ratio divides by, for row `row`: jwt_authn with its cache and a
    /// repeated token for tokens seen before, jwt_authn without it for tokens never seen; for
    /// DPoP, the same build's fresh ES256 token (a cached request plus one ES256 verification
    /// with its decoding and one shared-data read and write, which is all a proof should cost).
    pub fn reference(self, row: &str) -> (String, Load) {
        match self {
            Load::Fresh(_) => (setup::JWT_AUTHN.name.into(), self),
            Load::Repeat(_) => (setup::JWT_AUTHN_CACHE.name.into(), self),
            Load::SharedHit => (setup::JWT_AUTHN_CACHE.name.into(), Load::Repeat(RS256)),
            Load::Dpop => (row.replacen("filter-dpop", "filter", 1), Load::Fresh(ES256)),
        }
    }

    /// The requests of the warm-up and of the counted window, to Envoy on `port`: tokens from
    /// the bench's token files (fresh ones from the two ends of the list, so no window token was
    /// sent in the warm-up), or for DPoP a bound token and proofs minted now.
    pub fn requests(
        self,
        dir: &Path,
        port: u16,
        requests: usize,
        warmup: usize,
    ) -> Result<(Vec<Credentials>, Vec<Credentials>), String> {
        let read = |alg: Alg, tokens: Tokens| -> Result<Vec<String>, String> {
            let file = Workload::new(alg, tokens).tokens_file(dir);
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(text.lines().filter(|l| !l.is_empty()).map(String::from).collect())
        };
        let bearer =
            |list: &[String], n: usize| list.iter().cycle().take(n).map(|t| Credentials::bearer(t)).collect();
        let list = match self {
            Load::Repeat(alg) => read(alg, Tokens::Repeat)?,
            Load::SharedHit => read(RS256, Tokens::Fresh)?.into_iter().take(2).collect(),
            Load::Fresh(alg) => return fresh(&read(alg, Tokens::Fresh)?, requests, warmup),
            Load::Dpop => {
                let mut all = dpop_requests(port, warmup + requests)?;
                let window = all.split_off(warmup);
                return Ok((all, window));
            }
        };
        Ok((bearer(&list, warmup.max(list.len())), bearer(&list, requests)))
    }
}

/// Fresh tokens: the window's from the start of the list, the warm-up's from its end.
fn fresh(
    list: &[String],
    requests: usize,
    warmup: usize,
) -> Result<(Vec<Credentials>, Vec<Credentials>), String> {
    if list.len() < requests + warmup {
        return Err(format!("{} tokens for {requests} + {warmup} fresh requests (BENCH_TOKENS)", list.len()));
    }
    let (window, rest) = list.split_at(requests);
    let warm = rest.get(rest.len() - warmup..).unwrap_or_default();
    Ok((
        warm.iter().map(|t| Credentials::bearer(t)).collect(),
        window.iter().map(|t| Credentials::bearer(t)).collect(),
    ))
}

/// `n` DPoP requests to Envoy on `port`: one token bound to `DPOP_KEY`, a proof of its own each
/// (`GET http://127.0.0.1:<port>/`, `iat` now: the row's `max_age` leaves the window time).
pub fn dpop_requests(port: u16, n: usize) -> Result<Vec<Credentials>, String> {
    let token = setup::dpop_token(&DPOP_KEY.thumbprint())?;
    let htu = format!("http://127.0.0.1:{port}/");
    (0..n)
        .map(|_| {
            let proof = mint::dpop_proof(DPOP_KEY.key(), "GET", &htu, Some(&token)).try_sign()?;
            Ok(Credentials { authorization: format!("DPoP {token}"), dpop: Some(proof) })
        })
        .collect()
}
