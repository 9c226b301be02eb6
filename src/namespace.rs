//! The prefix of every proxy-wasm shared-data name this module uses, with the format version.
//!
//! Shared data is one namespace per `vm_id`, shared by every listener, configuration version and
//! module build that runs under it: an upgraded module sharing the old one's `vm_id` during a
//! rollout must never read a value in the old format. A change to what any shared value means (a
//! key set, a fetch lease, a record bucket, the digest key) bumps the version here. v3: token
//! digests are SipHash-2-4 (v2: SipHash-1-3).

pub const NAMESPACE: &str = "jwt_authn_wasm/v3";

/// The name of bucket `n` under `prefix` (`<prefix><n>`, `n` in decimal), as the shared token
/// record and the DPoP replay record name theirs. Not `format!`: its machinery costs some
/// hundreds of instructions, and a bucket is named on every lookup.
pub fn bucket_name(prefix: &str, n: u64) -> String {
    let mut name = String::with_capacity(prefix.len() + 20);
    name.push_str(prefix);
    let mut power = 10u64.pow(n.checked_ilog10().unwrap_or(0));
    while power > 0 {
        name.extend(char::from_digit((n / power % 10) as u32, 10));
        power /= 10;
    }
    name
}

#[cfg(test)]
mod tests {
    #[test]
    fn bucket_numbers_are_written_as_format_writes_them() {
        for n in [0, 1, 9, 10, 11, 99, 100, 4095, 4096, 1_000_000, u64::MAX / 10, u64::MAX] {
            assert_eq!(super::bucket_name("p/", n), format!("p/{n}"));
        }
    }
}
