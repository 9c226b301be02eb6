//! The shell of the process-wide record of verified tokens (`crate::shared_record`, where the
//! format and every rule live): shared-data reads and writes, the secret digest key, and how any
//! secret the VMs of the process share is made (WASI randomness) and found.

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
    process_secret(&digest_key_name(), Digester::KEY_BYTES, Digester::from_shared)
}

/// The digest key in shared data, if there is a valid one.
pub fn current() -> Option<Digester> {
    shared_secret(&digest_key_name(), Digester::from_shared)
}

/// The secret at `name` in shared data, as `read` takes it, if there is one it takes.
pub fn shared_secret<T>(name: &str, read: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    host::shared_get(name).0.as_deref().and_then(read)
}

/// A secret every VM of the process shares, at `name` in shared data: the one there (as `read`
/// takes it), or (the first VM) `bytes` fresh random bytes put there. Two VMs starting together
/// may both write one: each takes what it reads back, and must look again later (on its tick).
pub fn process_secret<T>(name: &str, bytes: usize, read: impl Fn(&[u8]) -> Option<T>) -> Result<T, String> {
    let current = || shared_secret(name, &read);
    if let Some(secret) = current() {
        return Ok(secret);
    }
    let mut fresh = vec![0; bytes];
    random(&mut fresh)?;
    host::shared_set(name, &fresh, None);
    current().or_else(|| read(&fresh)).ok_or_else(|| format!("{name}: {bytes} random bytes are not a secret"))
}

/// Fills `buf` from WASI `random_get` (the host's CSPRNG; the import std already uses).
pub fn random(buf: &mut [u8]) -> Result<(), String> {
    // SAFETY: a pointer and length of a live, writable buffer, filled by the host during the call.
    let errno = unsafe { wasi::random_get(buf.as_mut_ptr(), buf.len()) };
    match errno {
        0 => Ok(()),
        e => Err(format!("WASI random_get failed (errno {e}): no secret keys")),
    }
}

mod wasi {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        pub fn random_get(buf: *mut u8, buf_len: usize) -> i32;
    }
}
