//! `tools/wasm-exports`, the post-link step of `make build`, on modules made here: it reads
//! exports and imports, removes exactly the `proxy_on_*` exports not kept and leaves every other
//! byte of the module as it was, refuses to lose a callback it must keep, and never panics on a
//! malformed module. (tests/packaging.rs checks the module `make build` ships.)

use wasm_exports::{Export, FUNC, GLOBAL, MEMORY, TABLE, exports, imports, leb128, strip_callbacks};

const HEADER: &[u8] = b"\0asm\x01\0\0\0";
const EXPORT_SECTION: u8 = 7;

fn name(s: &str) -> Vec<u8> {
    [leb128(s.len() as u64), s.as_bytes().to_vec()].concat()
}

fn vec_of(items: &[Vec<u8>]) -> Vec<u8> {
    [leb128(items.len() as u64), items.concat()].concat()
}

fn section(id: u8, content: &[u8]) -> Vec<u8> {
    [vec![id], leb128(content.len() as u64), content.to_vec()].concat()
}

/// A module whose export section (the given names: "memory" a memory, the others functions) has
/// sections before it (types, imports of every kind, functions) and after it (a custom one).
/// Returns the bytes before the export section, the section, and the bytes after it.
fn module(exported: &[&str]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let imports = [
        [name("env"), name("proxy_log"), vec![FUNC, 0]].concat(),
        [name("wasi_snapshot_preview1"), name("fd_write"), vec![FUNC, 0]].concat(),
        [name("env"), name("table"), vec![TABLE, 0x70, 1, 1, 2]].concat(),
        [name("env"), name("global"), vec![GLOBAL, 0x7f, 0]].concat(),
    ];
    let entries: Vec<Vec<u8>> = exported
        .iter()
        .enumerate()
        .map(|(i, e)| match *e {
            "memory" => [name(e), vec![MEMORY, 0]].concat(),
            _ => [name(e), vec![FUNC], leb128(i as u64)].concat(),
        })
        .collect();
    let before = [
        HEADER.to_vec(),
        section(1, &vec_of(&[vec![0x60, 0, 0]])),
        section(2, &vec_of(&imports)),
        section(3, &vec_of(&[vec![0], vec![0], vec![0]])),
    ]
    .concat();
    let after = section(0, &[name("note"), b"kept as is".to_vec()].concat());
    (before, section(EXPORT_SECTION, &vec_of(&entries)), after)
}

fn whole(exported: &[&str]) -> Vec<u8> {
    let (before, exports, after) = module(exported);
    [before, exports, after].concat()
}

fn names(wasm: &[u8]) -> Vec<String> {
    exports(wasm).unwrap().into_iter().map(|e| e.name).collect()
}

#[test]
fn reads_exports_and_imports() {
    let wasm = whole(&["memory", "_initialize", "proxy_on_log"]);
    assert_eq!(
        exports(&wasm).unwrap(),
        [
            Export { name: "memory".into(), kind: MEMORY, index: 0 },
            Export { name: "_initialize".into(), kind: FUNC, index: 1 },
            Export { name: "proxy_on_log".into(), kind: FUNC, index: 2 },
        ]
    );
    let imported: Vec<(String, u8)> =
        imports(&wasm).unwrap().into_iter().map(|i| (format!("{}.{}", i.module, i.name), i.kind)).collect();
    assert_eq!(
        imported,
        [
            ("env.proxy_log".into(), FUNC),
            ("wasi_snapshot_preview1.fd_write".into(), FUNC),
            ("env.table".into(), TABLE),
            ("env.global".into(), GLOBAL),
        ]
    );
}

#[test]
fn removes_only_the_callbacks_not_kept_and_nothing_else() {
    let all = ["memory", "_initialize", "proxy_on_log", "proxy_on_delete", "proxy_abi_version_0_2_1"];
    let wasm = whole(&all);
    let stripped = strip_callbacks(&wasm, &["proxy_on_delete"]).unwrap();
    assert_eq!(stripped.removed, ["proxy_on_log"]);
    assert_eq!(
        names(&stripped.module),
        ["memory", "_initialize", "proxy_on_delete", "proxy_abi_version_0_2_1"]
    );
    // Byte for byte: the sections around the export section as they were, and the export section
    // as a module with the kept exports at their indexes would have it.
    let (before, _, after) = module(&all);
    let kept_at_their_indexes = [
        [name("memory"), vec![MEMORY, 0]].concat(),
        [name("_initialize"), vec![FUNC, 1]].concat(),
        [name("proxy_on_delete"), vec![FUNC, 3]].concat(),
        [name("proxy_abi_version_0_2_1"), vec![FUNC, 4]].concat(),
    ];
    let expected = [before, section(EXPORT_SECTION, &vec_of(&kept_at_their_indexes)), after].concat();
    assert_eq!(stripped.module, expected);
    // The same again: nothing more to remove.
    let again = strip_callbacks(&stripped.module, &["proxy_on_delete"]).unwrap();
    assert_eq!((again.module, again.removed), (stripped.module, vec![]));
}

#[test]
fn a_callback_to_keep_that_is_not_exported_fails() {
    let wasm = whole(&["memory", "proxy_on_log"]);
    let e = strip_callbacks(&wasm, &["proxy_on_delete"]).unwrap_err();
    assert!(e.0.contains("proxy_on_delete"), "{e}");
    // A memory of that name is not the callback.
    let e = strip_callbacks(&whole(&["proxy_on_log"]), &["memory"]).unwrap_err();
    assert!(e.0.contains("memory"), "{e}");
}

#[test]
fn malformed_modules_fail_without_panicking() {
    let wasm = whole(&["memory", "proxy_on_log"]);
    assert!(exports(b"\0asm\x02\0\0\0").is_err(), "another version");
    assert!(exports(b"\0asm").is_err(), "no version");
    let (before, exports_section, _) = module(&["memory", "proxy_on_log"]);
    for len in HEADER.len() + 1..wasm.len() {
        let cut = &wasm[..len];
        // Cut inside the export section or before its end: an error, never a panic or a guess.
        if len < before.len() + exports_section.len() && len > before.len() {
            assert!(exports(cut).is_err(), "cut at {len}");
            assert!(strip_callbacks(cut, &[]).is_err(), "cut at {len}");
        }
        let _ = imports(cut);
    }
    let over_long = [wasm.clone(), vec![EXPORT_SECTION, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]].concat();
    assert!(exports(&over_long).is_err(), "an over-long section size");
    let stray = [before, section(EXPORT_SECTION, &[vec_of(&[]), vec![0]].concat())].concat();
    assert!(exports(&stray).is_err(), "a byte after the last export");
}
