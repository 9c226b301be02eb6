//! The shell of the process-wide record of verified tokens (`crate::shared_record`, where the
//! format and every rule live): shared-data reads and writes, and the secret digest key.

use super::host;
use crate::shared_record::{Digester, Store, digest_key_name};

/// Shared data through the host.
pub struct HostStore;

impl Store for HostStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        host::shared_get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        host::shared_set(key, value, cas)
    }
}

/// The process's digest key: the one in shared data, or (the first VM) 128 fresh random bits put
/// there. `Err` only when WASI has no randomness to give, and then no digest can be trusted.
///
/// Creating a shared key is not CAS-protected, so two VMs starting together may both write one;
/// each VM takes what it reads back, and `current` (every tick) brings a VM whose key was
/// overwritten in step. Until then it only misses the other VMs' entries: a digest under another
/// key matches a recorded one with probability 2^-128.
pub fn process_key() -> Result<Digester, String> {
    if let Some(digester) = current() {
        return Ok(digester);
    }
    let mut key = [0; Digester::KEY_BYTES];
    random(&mut key)?;
    host::shared_set(&digest_key_name(), &key, None);
    Ok(current().unwrap_or_else(|| Digester::new(&key)))
}

/// The digest key in shared data, if there is a valid one.
pub fn current() -> Option<Digester> {
    host::shared_get(&digest_key_name()).0.as_deref().and_then(Digester::from_shared)
}

/// Fills `buf` from WASI `random_get` (the host's CSPRNG; the import std already uses).
fn random(buf: &mut [u8]) -> Result<(), String> {
    // SAFETY: a pointer and length of a live, writable buffer, filled by the host during the call.
    let errno = unsafe { wasi::random_get(buf.as_mut_ptr(), buf.len()) };
    match errno {
        0 => Ok(()),
        e => Err(format!("WASI random_get failed (errno {e}): no secret key for token digests")),
    }
}

mod wasi {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        pub fn random_get(buf: *mut u8, buf_len: usize) -> i32;
    }
}
