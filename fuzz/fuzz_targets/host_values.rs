//! Values that reach the filter through the host from somewhere it does not control, decoded by
//! pure code: the matched route's metadata (Envoy's pair map, `route::parse`), and a bucket of the
//! shared record of verified tokens as another VM, or another module version sharing the `vm_id`,
//! left it (`shared_record::bucket_entries`, `contains`, `with_entry`). Input: a selector byte,
//! then the value.
#![no_main]

use jwt_authn_wasm::config::CryptoMode;
use jwt_authn_wasm::route::{self, RouteChoice, RouteMetadata};
use jwt_authn_wasm::shared_record::{
    Digester, ENTRY_BYTES, KeySetId, WAYS, bucket_entries, contains, with_entry,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, value)) = data.split_first() else { return };
    match selector % 2 {
        0 => route_metadata(value),
        _ => bucket(value),
    }
});

/// Whatever the bytes, a choice comes out: never the rules (only "not found" means those), a
/// requirement only with a printable name to look up.
fn route_metadata(value: &[u8]) {
    match route::parse(RouteMetadata::Value(value)) {
        RouteChoice::Rules => panic!("a value read as no metadata"),
        RouteChoice::Requirement(name) => assert!(!name.is_empty() && !name.chars().any(char::is_control)),
        RouteChoice::Disabled | RouteChoice::Invalid(_) => {}
    }
}

/// A bucket of any content: its entries are a whole part of it; recording a token keeps the bucket
/// readable, makes that token a hit under its key set and under no other.
fn bucket(value: &[u8]) {
    let entries = bucket_entries(value);
    assert!(entries.is_empty() || value.get(1..) == Some(entries));
    let token = Digester::new(&[7; Digester::KEY_BYTES]).digest("a.b.c");
    let keys = KeySetId::remote("p", "https://idp/jwks", CryptoMode::Auto, b"{\"keys\":[]}");
    let other_keys = KeySetId::remote("p", "https://idp/jwks", CryptoMode::Auto, b"{\"keys\": []}");
    let updated = with_entry(entries, token, &keys);
    let read = bucket_entries(&updated);
    assert_eq!(read, updated.get(1..).unwrap_or_default(), "a written bucket reads back whole");
    assert!(contains(read, token, &keys));
    assert!(!contains(read, token, &other_keys), "one token keeps one key set's entry");
    // The other entries are ones the bucket held: kept or dropped, never made up or altered.
    let held: Vec<&[u8]> = entries.chunks_exact(ENTRY_BYTES).collect();
    assert!(read.chunks_exact(ENTRY_BYTES).skip(1).all(|e| held.contains(&e)));
    assert!(read.len() <= WAYS * ENTRY_BYTES);
}
