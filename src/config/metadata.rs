//! `JwtProvider`'s dynamic-metadata fields. This filter writes no dynamic metadata yet, so setting
//! one is accepted with a warning that says so: a later filter reading the metadata (RBAC) sees
//! none, as for a request without a token; an ALLOW policy then refuses, but a DENY-style policy
//! may let the request through, which is why the warning names the field.

use super::walk::Decision::Warn;
use super::walk::Unused;

const NO_METADATA: &str = "this filter writes no dynamic metadata; a policy reading it sees none";

/// Read with the provider's own table (`providers`).
pub(super) const METADATA_UNUSED: &Unused = &[
    ("payload_in_metadata", Warn(NO_METADATA)),
    ("header_in_metadata", Warn(NO_METADATA)),
    ("failed_status_in_metadata", Warn(NO_METADATA)),
    ("normalize_payload_in_metadata", Warn(NO_METADATA)),
];

#[cfg(test)]
mod tests {
    use super::super::fixtures::{parse, with};
    use serde_json::json;

    #[test]
    fn each_metadata_field_set_is_a_warning_and_unset_is_silent() {
        for (field, set) in [
            ("payload_in_metadata", json!("jwt_payload")),
            ("header_in_metadata", json!("jwt_header")),
            ("failed_status_in_metadata", json!("jwt_status")),
            ("normalize_payload_in_metadata", json!({"space_delimited_claims": ["scope"]})),
        ] {
            let about = |doc| -> Vec<String> {
                let warnings = parse(&doc).unwrap().warnings;
                warnings.into_iter().filter(|w| w.contains(field)).collect()
            };
            let expected = format!(
                "`providers.p.{field}` is ignored: this filter writes no dynamic metadata; a policy reading \
                 it sees none"
            );
            assert_eq!(about(with("/providers/p", field, set)), [expected]);
            let unset = if field == "normalize_payload_in_metadata" { json!(null) } else { json!("") };
            assert!(about(with("/providers/p", field, unset)).is_empty(), "{field}");
        }
    }
}
