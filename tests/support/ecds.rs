//! Istio's delivery path for end-to-end tests: the file from which Envoy takes the filter's config
//! by ECDS (`envoy/e2e-ecds.yaml.tmpl`), replaced atomically as istiod's pushes replace the
//! resource, and what Envoy made of each push (its `extension_config_discovery` counters).
#![allow(dead_code)]

use super::envoy::{Envoy, TempDir};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the listener's filter in `e2e-ecds.yaml.tmpl`, which is also the resource's name.
pub const FILTER: &str = "jwt_authn_wasm";
/// How long Envoy may take to notice a replaced file and build the filter (a V8 module on a
/// shared machine).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(20);

/// What Envoy did with a pushed resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// `update_success`: the new config serves new requests.
    Accepted,
    /// `update_rejected`: Envoy refused it (bad proto, or the filter refused its configuration);
    /// the config in force stays.
    Rejected,
}

/// The watched ECDS file, in a directory of its own.
pub struct EcdsFile {
    dir: TempDir,
    path: PathBuf,
}

impl EcdsFile {
    /// The file with its first resource (Envoy reads it at start; the listener waits for it).
    pub fn new(resource_yaml: &str) -> EcdsFile {
        let dir = TempDir::new("ecds");
        let path = dir.write("ecds.yaml", resource_yaml);
        EcdsFile { dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the resource and waits until Envoy has taken or refused it. The new text is
    /// written beside the file and renamed over it, so Envoy sees one move and never reads a
    /// half-written file.
    pub fn push(&self, envoy: &Envoy, resource_yaml: &str) -> Push {
        let before = counters(envoy);
        let next = self.dir.write("ecds.yaml.next", resource_yaml);
        fs::rename(&next, &self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        let mut now = before;
        let answered = super::wait_until(PUSH_TIMEOUT, || {
            now = counters(envoy);
            now != before
        });
        assert!(answered, "Envoy took no ECDS update within {PUSH_TIMEOUT:?}: {before:?}");
        match (now.0 > before.0, now.1 > before.1) {
            (true, false) => Push::Accepted,
            (false, true) => Push::Rejected,
            _ => panic!("one push, unclear outcome: (success, rejected) {before:?} -> {now:?}"),
        }
    }
}

/// The filter's ECDS counter `name` (`update_success`, `update_rejected`, `config_fail`...).
pub fn counter(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(&counter_name(name)).unwrap_or(0)
}

fn counter_name(name: &str) -> String {
    format!("extension_config_discovery.http_filter.{FILTER}.{name}")
}

/// (`update_success`, `update_rejected`), from one read of the stats.
fn counters(envoy: &Envoy) -> (u64, u64) {
    let stats = envoy.stats();
    let get = |name: &str| stats.get(&counter_name(name)).copied().unwrap_or(0);
    (get("update_success"), get("update_rejected"))
}
