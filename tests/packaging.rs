//! Packaging, checked here without Docker or Kubernetes:
//! - `tools/oci-layout.py` writes the OCI image Istio pulls (Wasm image spec, *compat* variant):
//!   every digest and size holds, the one layer holds exactly `plugin.wasm`, and a second run
//!   gives the same bytes;
//! - the Istio manifests in `envoy/istio` parse, use only `WasmPlugin` v1alpha1 fields, and carry
//!   the demo config, which the filter's own parser (and, with Envoy and the module, the filter
//!   in Envoy) accepts, pointed at the cluster their `ServiceEntry` creates;
//! - `envoy/docker-compose.yaml` mounts what `demo.yaml` names, where it looks for it;
//! - the module `make build` ships exports only the callbacks the filter uses.
//!
//! The layout tests need python3, the Envoy tests Envoy and the release `.wasm`: each is skipped
//! without them, unless CI=true.

mod support;

use flate2::read::GzDecoder;
use jwt_authn_wasm::config::{Config, KeySource};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::envoy::{Envoy, TempDir, stub_module};
use support::{crate_root, require_envoy, require_wasm};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The only layer type of the compat variant Istio reads from an OCI manifest.
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `WasmPlugin.spec` fields in istio/api `extensions/v1alpha1/wasm.proto`, as JSON names.
const WASM_PLUGIN_FIELDS: &[&str] = &[
    "selector",
    "targetRef",
    "targetRefs",
    "url",
    "sha256",
    "imagePullPolicy",
    "imagePullSecret",
    "verificationKey",
    "pluginConfig",
    "pluginName",
    "phase",
    "priority",
    "failStrategy",
    "vmConfig",
    "match",
    "type",
];
/// The enums of wasm.proto (and `WorkloadMode` of type/v1beta1/selector.proto), by field.
const WASM_PLUGIN_ENUMS: &[(&str, &[&str])] = &[
    ("phase", &["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]),
    ("imagePullPolicy", &["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]),
    ("failStrategy", &["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"]),
    ("type", &["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"]),
];
const WORKLOAD_MODES: &[&str] = &["UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"];
/// Fields of the messages nested in `WasmPlugin.spec` that the manifest may use.
const NESTED_FIELDS: &[(&str, &[&str])] = &[
    ("selector", &["matchLabels"]),
    ("match[]", &["mode", "ports"]),
    ("match[].ports[]", &["number"]),
    ("vmConfig", &["env"]),
    ("vmConfig.env[]", &["name", "valueFrom", "value"]),
];

// --- OCI image layout ---

/// Whether python3 runs: `None` (the test skips) without it, a panic with CI=true.
fn require_python() -> Option<()> {
    let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    match found {
        true => Some(()),
        false if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("no python3 (CI=true)"),
        false => {
            eprintln!("SKIPPED: no python3 for tools/oci-layout.py");
            None
        }
    }
}

fn pack(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(crate_root().join("tools/oci-layout.py"))
        .args(args)
        .output()
        .expect("run tools/oci-layout.py")
}

fn pack_ok(args: &[&str]) -> String {
    let out = pack(args);
    assert!(out.status.success(), "oci-layout.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The `<digest>` the script prints after `label`.
fn printed(stdout: &str, label: &str) -> String {
    let line = stdout.lines().find_map(|l| l.strip_prefix(&format!("{label} ")));
    line.unwrap_or_else(|| panic!("no `{label}` line in {stdout}")).to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Bytes that start as a module does (all the script checks), followed by 300 kB of noise so
/// that the layer's deflate stream has several blocks.
fn test_module(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let noise = (0..300_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 251) as u8
    });
    stub_module().into_iter().chain(noise).collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The blob a descriptor names, after checking its media type, digest and size.
fn blob(layout: &Path, descriptor: &Value, media_type: &str) -> Vec<u8> {
    assert_eq!(descriptor["mediaType"], media_type, "{descriptor}");
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(sha256(&bytes), digest, "content of blobs/sha256/{hex}");
    assert_eq!(descriptor["size"], bytes.len(), "size of {digest}");
    bytes
}

/// One ustar entry, as the header says.
#[derive(Debug)]
struct TarEntry {
    name: String,
    typeflag: u8,
    mode: u64,
    uid: u64,
    gid: u64,
    mtime: u64,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let text = std::str::from_utf8(field).unwrap().trim_matches(['\0', ' ']);
    u64::from_str_radix(text, 8).unwrap_or_else(|_| panic!("octal field {field:?}"))
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec()).unwrap()
}

/// A ustar archive's entries; checks every header's magic and checksum, and the end marker.
fn tar_entries(archive: &[u8]) -> Vec<TarEntry> {
    assert_eq!(archive.len() % 512, 0, "tar length");
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= archive.len() && archive[at..at + 512].iter().any(|b| *b != 0) {
        let h = &archive[at..at + 512];
        assert_eq!(&h[257..265], b"ustar\x0000", "ustar magic");
        let unsigned: u64 =
            h.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u64 }).sum();
        assert_eq!(octal(&h[148..156]), unsigned, "header checksum");
        let size = octal(&h[124..136]) as usize;
        let prefix = cstr(&h[345..500]);
        let name = cstr(&h[0..100]);
        let data = archive[at + 512..at + 512 + size].to_vec();
        entries.push(TarEntry {
            name: if prefix.is_empty() { name } else { format!("{prefix}/{name}") },
            typeflag: h[156],
            mode: octal(&h[100..108]),
            uid: octal(&h[108..116]),
            gid: octal(&h[116..124]),
            mtime: octal(&h[136..148]),
            data,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    assert!(
        archive[at..].len() >= 1024 && archive[at..].iter().all(|b| *b == 0),
        "two zero blocks end the archive"
    );
    entries
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut out).expect("a gzip stream");
    out
}

/// Checks an OCI image layout against the Wasm image spec's compat variant holding `module`,
/// tagged `tag`; returns the manifest's digest.
fn check_layout(layout: &Path, module: &[u8], tag: &str) -> String {
    assert_eq!(read_json(&layout.join("oci-layout")), json!({"imageLayoutVersion": "1.0.0"}));
    let index = read_json(&layout.join("index.json"));
    assert_eq!((index["schemaVersion"].as_u64(), index["mediaType"].as_str()), (Some(2), Some(INDEX)));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["annotations"]["org.opencontainers.image.ref.name"], tag);

    let manifest: Value = serde_json::from_slice(&blob(layout, &manifests[0], MANIFEST)).unwrap();
    assert_eq!(
        (manifest["schemaVersion"].as_u64(), manifest["mediaType"].as_str()),
        (Some(2), Some(MANIFEST))
    );
    assert_eq!(manifest["annotations"], json!({"module.wasm.image/variant": "compat"}));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {manifest}");

    let layer = blob(layout, &layers[0], LAYER);
    // gzip with no timestamp: the digest must not depend on when the image was packed.
    assert_eq!((&layer[..4], &layer[4..8]), (&[0x1f, 0x8b, 8, 0][..], &[0, 0, 0, 0][..]), "gzip header");
    let layer_tar = gunzip(&layer);
    let entries = tar_entries(&layer_tar);
    assert_eq!(entries.len(), 1, "only plugin.wasm in the layer: {entries:?}");
    let e = &entries[0];
    assert_eq!(
        (e.name.as_str(), e.typeflag, e.mode, e.uid, e.gid, e.mtime),
        ("plugin.wasm", b'0', 0o644, 0, 0, 0)
    );
    assert!(e.data == module, "plugin.wasm is not the module");

    let config: Value = serde_json::from_slice(&blob(layout, &manifest["config"], CONFIG)).unwrap();
    assert_eq!(config["rootfs"], json!({"type": "layers", "diff_ids": [sha256(&layer_tar)]}));
    assert!(config["architecture"].is_string() && config["os"].is_string(), "{config}");

    let mut stored: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    stored.sort();
    let mut referenced = vec![
        manifests[0]["digest"].clone(),
        manifest["config"]["digest"].clone(),
        layers[0]["digest"].clone(),
    ];
    referenced.sort_by_key(|d| d.to_string());
    assert_eq!(json!(stored), json!(referenced), "blobs/sha256 holds exactly the three blobs");
    manifests[0]["digest"].as_str().unwrap().to_owned()
}

/// Every file under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn oci_layout_holds_the_module_as_plugin_wasm_and_is_reproducible() {
    if require_python().is_none() {
        return;
    }
    let dir = TempDir::new("oci");
    let module = test_module(7);
    let wasm = dir.path().join("filter.wasm");
    std::fs::write(&wasm, &module).unwrap();
    let (wasm, a, b) = (wasm.to_str().unwrap(), dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let out = pack_ok(&[wasm, "-o", a, "--tag", "0.1.0"]);
    let digest = check_layout(Path::new(a), &module, "0.1.0");
    assert_eq!(printed(&out, "manifest"), digest);
    assert_eq!(printed(&out, "plugin.wasm"), sha256(&module));

    // Another run, elsewhere: the same bytes. Again in place: an earlier layout is replaced.
    pack_ok(&[wasm, "-o", b, "--tag", "0.1.0"]);
    assert!(tree(Path::new(a)) == tree(Path::new(b)), "a second run differs");
    pack_ok(&[wasm, "-o", a, "--tag", "0.1.0"]);
    assert!(tree(Path::new(a)) == tree(Path::new(b)), "a run in place differs");

    // The tag lives in index.json only: the image, and so its digest, are the module's alone.
    let out = pack_ok(&[wasm, "-o", b, "--tag", "v2"]);
    assert_eq!(check_layout(Path::new(b), &module, "v2"), digest);
    assert_eq!(printed(&out, "manifest"), digest);
    let other = test_module(8);
    std::fs::write(wasm, &other).unwrap();
    pack_ok(&[wasm, "-o", b, "--tag", "v2"]);
    assert_ne!(check_layout(Path::new(b), &other, "v2"), digest);
}

#[test]
fn oci_archive_is_the_layout_in_one_reproducible_tar() {
    if require_python().is_none() {
        return;
    }
    let dir = TempDir::new("oci-archive");
    let module = test_module(11);
    let wasm = dir.path().join("filter.wasm");
    std::fs::write(&wasm, &module).unwrap();
    let wasm = wasm.to_str().unwrap();
    let paths = ["layout", "one.tar", "two.tar"].map(|p| dir.path().join(p).to_string_lossy().into_owned());
    pack_ok(&[wasm, "-o", &paths[0]]);
    let layout = tree(Path::new(&paths[0]));
    check_layout(Path::new(&paths[0]), &module, "latest");
    pack_ok(&[wasm, "-o", &paths[1], "--tar"]);
    pack_ok(&[wasm, "-o", &paths[2], "--tar"]);
    let archive = std::fs::read(&paths[1]).unwrap();
    assert!(archive == std::fs::read(&paths[2]).unwrap(), "a second archive differs");

    let entries = tar_entries(&archive);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut expected = vec!["oci-layout", "index.json", "blobs/", "blobs/sha256/"];
    expected.extend(layout.keys().filter(|k| k.starts_with("blobs/")).map(String::as_str));
    assert_eq!(names, expected);
    for e in &entries {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.name);
        match e.typeflag {
            b'5' => assert_eq!(e.mode, 0o755, "{}", e.name),
            _ => assert!(e.typeflag == b'0' && e.mode == 0o644 && layout[&e.name] == e.data, "{}", e.name),
        }
    }
}

#[test]
fn oci_layout_refuses_what_it_should_not_pack_or_overwrite() {
    if require_python().is_none() {
        return;
    }
    let dir = TempDir::new("oci-refuse");
    let wasm = dir.path().join("filter.wasm");
    std::fs::write(&wasm, stub_module()).unwrap();
    let text = dir.write("notes.txt", "not a module");
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep.txt"), "mine").unwrap();
    let [wasm, text, occupied] = [&wasm, &text, &occupied].map(|p| p.to_string_lossy().into_owned());
    let fresh = dir.path().join("fresh").to_string_lossy().into_owned();
    let missing = dir.path().join("missing.wasm").to_string_lossy().into_owned();

    let cases: &[(&[&str], &str)] = &[
        (&[&text, "-o", &fresh], "not a binary wasm module"),
        (&[&missing, "-o", &fresh], "cannot read"),
        (&[&wasm, "-o", &fresh, "--tag", "no/slash"], "invalid tag"),
        (&[&wasm, "-o", &fresh, "--tag", ".dot"], "invalid tag"),
        (&[&wasm, "-o", &occupied], "refusing to replace"),
        (&[&wasm, "-o", &text], "not a directory"),
    ];
    for (args, why) in cases {
        let out = pack(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    assert!(!Path::new(&fresh).exists(), "nothing written on refusal");
    assert_eq!(std::fs::read_to_string(Path::new(&occupied).join("keep.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1);
}

// --- YAML: Istio manifests, docker-compose ---

/// Every document of a YAML file, as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// The Istio manifests, by kind.
fn istio_objects() -> BTreeMap<String, Value> {
    let dir = crate_root().join("envoy/istio");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    let mut objects = BTreeMap::new();
    for doc in files.iter().flat_map(|f| yaml_docs(f)) {
        let kind = doc["kind"].as_str().unwrap_or_else(|| panic!("no kind: {doc}")).to_owned();
        assert!(objects.insert(kind.clone(), doc).is_none(), "two {kind}s");
    }
    objects
}

/// The HTTP filters of envoy/demo.yaml's listener, as a JSON pointer.
const DEMO_HTTP_FILTERS: &str =
    "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters";

/// envoy/demo.yaml as JSON.
fn demo_yaml() -> Value {
    yaml_docs(&crate_root().join("envoy/demo.yaml")).remove(0)
}

/// JSON pointer to the wasm filter's `config` (`envoy.extensions.wasm.v3.PluginConfig`) in demo.yaml.
fn demo_wasm_config(demo: &Value) -> String {
    let filters = demo.pointer(DEMO_HTTP_FILTERS).and_then(Value::as_array).unwrap();
    let i = filters.iter().position(|f| f["name"] == "envoy.filters.http.wasm").unwrap();
    format!("{DEMO_HTTP_FILTERS}/{i}/typed_config/config")
}

/// The demo's plugin config: the wasm filter's `configuration.value` in envoy/demo.yaml.
fn demo_policy() -> Value {
    let demo = demo_yaml();
    let config = demo.pointer(&demo_wasm_config(&demo)).unwrap();
    serde_json::from_str(config["configuration"]["value"].as_str().unwrap()).unwrap()
}

#[test]
fn istio_manifests_parse_as_the_three_expected_objects() {
    let objects = istio_objects();
    let kinds: Vec<(&str, &str)> =
        objects.values().map(|o| (o["apiVersion"].as_str().unwrap(), o["kind"].as_str().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("networking.istio.io/v1", "DestinationRule"),
            ("networking.istio.io/v1", "ServiceEntry"),
            ("extensions.istio.io/v1alpha1", "WasmPlugin"),
        ]
    );
    for o in objects.values() {
        let keys: Vec<&String> = o.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"], "{o}");
        assert!(o["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{o}");
        // One namespace: a ServiceEntry exported elsewhere still gives every sidecar the cluster,
        // but the three are meant to be applied together.
        assert_eq!(o["metadata"]["namespace"], objects["WasmPlugin"]["metadata"]["namespace"]);
    }
}

/// What in a `WasmPlugin.spec` is not v1alpha1: unknown fields, enum values, nested fields.
fn wasm_plugin_problems(spec: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(fields) = spec.as_object() else { return vec!["spec is not a mapping".into()] };
    problems.extend(
        fields
            .keys()
            .filter(|k| !WASM_PLUGIN_FIELDS.contains(&k.as_str()))
            .map(|k| format!("unknown field {k}")),
    );
    for (field, values) in WASM_PLUGIN_ENUMS {
        if let Some(v) = spec.get(*field).filter(|v| !v.as_str().is_some_and(|s| values.contains(&s))) {
            problems.push(format!("{field}: {v} is not one of {values:?}"));
        }
    }
    for (path, allowed) in NESTED_FIELDS {
        for object in at_path(spec, path) {
            let keys = object
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_else(|| vec![format!("{object}")]);
            problems.extend(
                keys.iter()
                    .filter(|k| !allowed.contains(&k.as_str()))
                    .map(|k| format!("{path}: unknown field {k}")),
            );
        }
    }
    for mode in at_path(spec, "match[]").iter().filter_map(|m| m.get("mode")) {
        if !mode.as_str().is_some_and(|m| WORKLOAD_MODES.contains(&m)) {
            problems.push(format!("match[].mode: {mode}"));
        }
    }
    if !spec["sha256"]
        .as_str()
        .is_none_or(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    {
        problems.push("sha256: expected 64 lower-case hex digits".into());
    }
    problems
}

/// The values at a dotted path where `name[]` steps into each element of a list.
fn at_path<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    path.split('.').fold(vec![root], |values, step| {
        let (name, each) = step.strip_suffix("[]").map_or((step, false), |n| (n, true));
        let found = values.into_iter().filter_map(|v| v.get(name));
        match each {
            true => found.flat_map(|v| v.as_array().into_iter().flatten()).collect(),
            false => found.collect(),
        }
    })
}

#[test]
fn wasm_plugin_uses_only_v1alpha1_fields_and_fails_closed_before_istio_authn() {
    let plugin = &istio_objects()["WasmPlugin"];
    let spec = &plugin["spec"];
    assert_eq!(wasm_plugin_problems(spec), Vec::<String>::new());
    assert_eq!((spec["phase"].as_str(), spec["failStrategy"].as_str()), (Some("AUTHN"), Some("FAIL_CLOSE")));
    assert!(spec["url"].as_str().unwrap().starts_with("oci://"), "{}", spec["url"]);
    assert!(spec["imagePullPolicy"].is_string() && spec["selector"]["matchLabels"].is_object());
    // Inbound only: on a sidecar's outbound side it would ask for tokens on the workload's calls.
    assert_eq!(spec["match"], json!([{"mode": "SERVER"}]));
    let text = std::fs::read_to_string(crate_root().join("envoy/istio/wasmplugin.yaml")).unwrap();
    assert!(text.lines().any(|l| l.trim_start().starts_with("# url: file://")), "the file:// variant");

    // The checker itself: each mistake below is caught.
    let broken: &[(&str, Value)] = &[
        ("failurePolicy", json!("FAIL_CLOSED")),
        ("failStrategy", json!("FAIL_CLOSED")),
        ("phase", json!("AUTHENTICATION")),
        ("imagePullPolicy", json!("IF_NOT_PRESENT")),
        ("match", json!([{"mode": "INBOUND"}])),
        ("match", json!([{"port": 8080}])),
        ("selector", json!({"labels": {"app": "api"}})),
        ("sha256", json!("ABC")),
    ];
    for (field, value) in broken {
        let mut spec = spec.clone();
        spec[*field] = value.clone();
        assert_ne!(wasm_plugin_problems(&spec), Vec::<String>::new(), "{field}: {value}");
    }
}

#[test]
fn wasm_plugin_config_is_the_demo_config_pointed_at_the_service_entry_cluster() {
    let objects = istio_objects();
    let (entry, rule) = (&objects["ServiceEntry"]["spec"], &objects["DestinationRule"]["spec"]);
    let plugin_config = &objects["WasmPlugin"]["spec"]["pluginConfig"];

    // The filter's own parser takes what Istio hands it: pluginConfig as JSON.
    let config = Config::parse(serde_json::to_string(plugin_config).unwrap().as_bytes())
        .unwrap_or_else(|e| panic!("pluginConfig refused: {e}"));
    let [provider] = config.providers.as_slice() else { panic!("one provider") };
    let KeySource::Remote(remote) = &provider.keys else { panic!("remote_jwks") };

    // The cluster is the one Istio makes of the ServiceEntry's plain-HTTP port, on which the
    // DestinationRule originates TLS to the host's 443.
    let host = entry["hosts"][0].as_str().unwrap();
    let ports = entry["ports"].as_array().unwrap();
    let jwks_port = ports.iter().find(|p| p["protocol"] == "HTTP").expect("an HTTP port");
    assert_eq!(jwks_port["targetPort"], 443);
    let port = jwks_port["number"].as_u64().unwrap();
    assert_eq!(remote.cluster, format!("outbound|{port}||{host}"));
    assert_eq!(remote.authority, host);
    assert_eq!((rule["host"].as_str(), entry["resolution"].as_str()), (Some(host), Some("DNS")));
    let tls =
        at_path(rule, "trafficPolicy.portLevelSettings[]").into_iter().find(|s| s["port"]["number"] == port);
    let tls = &tls.expect("port-level settings for the JWKS port")["tls"];
    assert_eq!((tls["mode"].as_str(), tls["sni"].as_str()), (Some("SIMPLE"), Some(host)));
    assert_eq!(tls["subjectAltNames"], json!([host]));

    // Apart from where the keys come from, it is the demo's config.
    let mut demo = demo_policy();
    let http_uri = &plugin_config["providers"]["demo"]["remote_jwks"]["http_uri"];
    for field in ["uri", "cluster"] {
        demo["providers"]["demo"]["remote_jwks"]["http_uri"][field] = http_uri[field].clone();
    }
    assert_eq!(plugin_config, &demo);
}

/// demo.yaml as JSON, with the module at `wasm` and the plugin configuration `plugin_config`.
fn demo_envoy_config(wasm: &Path, plugin_config: &Value, cluster: &str) -> String {
    let mut demo = demo_yaml();
    let config = demo.pointer_mut(&demo_wasm_config(&demo)).unwrap();
    config["vm_config"]["code"]["local"]["filename"] = json!(wasm);
    config["configuration"]["value"] = json!(plugin_config.to_string());
    let clusters = demo["static_resources"]["clusters"].as_array_mut().unwrap();
    let jwks = clusters.iter_mut().find(|c| c["name"] == "jwks").unwrap();
    jwks["name"] = json!(cluster);
    jwks["load_assignment"]["cluster_name"] = json!(cluster);
    demo.to_string()
}

/// What Envoy gets from Istio, approximately: the demo listener with the WasmPlugin's
/// pluginConfig and a cluster of that name. `--mode validate` loads the real module, which
/// parses the configuration (a refused one fails validation).
#[test]
fn wasm_plugin_config_loads_in_envoy_with_the_real_module() {
    let (Some(_), Some(wasm)) = (require_envoy(), require_wasm()) else { return };
    let objects = istio_objects();
    let plugin_config = &objects["WasmPlugin"]["spec"]["pluginConfig"];
    let cluster = plugin_config["providers"]["demo"]["remote_jwks"]["http_uri"]["cluster"].as_str().unwrap();
    Envoy::validate(&demo_envoy_config(&wasm, plugin_config, cluster)).unwrap_or_else(|e| panic!("{e}"));

    let mut refused = plugin_config.clone();
    refused["providers"]["demo"]["issuer"] = json!(5);
    let err =
        Envoy::validate(&demo_envoy_config(&wasm, &refused, cluster)).expect_err("a refused config fails");
    assert!(err.contains("providers.demo.issuer"), "{err}");
}

/// The demo as docker-compose.yaml runs it: demo.yaml, unchanged, with the real module.
#[test]
fn demo_yaml_validates_with_the_real_module() {
    let (Some(_), Some(wasm)) = (require_envoy(), require_wasm()) else { return };
    let demo = std::fs::read_to_string(crate_root().join("envoy/demo.yaml")).unwrap();
    let relative = "target/wasm32-wasip1/release/jwt_authn_wasm.wasm";
    assert!(demo.contains(relative));
    Envoy::validate(&demo.replace(relative, &wasm.to_string_lossy())).unwrap_or_else(|e| panic!("{e}"));
}

// --- The module's exports ---

/// What the shipped module exports besides the callbacks the filter uses
/// (`wasm_exports::FILTER_CALLBACKS`, with why each): its memory, entry point and ABI version.
const NOT_CALLBACKS: [&str; 3] = ["memory", "_initialize", "proxy_abi_version_0_2_1"];

/// The module `make build` leaves is stripped: Envoy enters the VM for every `proxy_on_*` a
/// module exports, and the SDK exports all of them, among them some Envoy calls on every request
/// (done, log, the response and body callbacks) that the filter does not use.
#[test]
fn the_module_exports_only_the_callbacks_the_filter_uses() {
    let Some(wasm) = require_wasm() else { return };
    let module = std::fs::read(&wasm).unwrap();
    let exports = wasm_exports::exports(&module).unwrap();
    let mut expected = [NOT_CALLBACKS.as_slice(), &wasm_exports::FILTER_CALLBACKS].concat();
    expected.sort_unstable();
    let mut found: Vec<&str> = exports.iter().map(|e| e.name.as_str()).collect();
    found.sort_unstable();
    assert_eq!(
        found,
        expected,
        "{}: not the module `make build` ships (it strips the exports)",
        wasm.display()
    );
    // The entry points are functions, the memory is the memory.
    assert!(exports.iter().all(|e| (e.kind == wasm_exports::FUNC) == (e.name != "memory")), "{exports:?}");
}

/// A compose service's bind mounts, target → source resolved against envoy/ (compose resolves
/// relative sources against the compose file's directory). Only the long syntax, with
/// create_host_path off, so that a missing file stops compose.
fn binds(service: &Value) -> BTreeMap<String, PathBuf> {
    let envoy_dir = crate_root().join("envoy");
    let mut mounts = BTreeMap::new();
    for v in service["volumes"].as_array().unwrap() {
        assert_eq!((v["type"].as_str(), v["read_only"].as_bool()), (Some("bind"), Some(true)), "{v}");
        assert_eq!(v["bind"]["create_host_path"], false, "{v}");
        let source = envoy_dir.join(v["source"].as_str().unwrap());
        mounts.insert(v["target"].as_str().unwrap().to_owned(), normalize(&source));
    }
    mounts
}

/// `a/b/../c` → `a/c`, without touching the filesystem (the module may not be built).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => assert!(out.pop()),
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn port_of(cluster: &Value) -> u64 {
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap()
}

#[test]
fn docker_compose_mounts_what_demo_yaml_names_and_serves_its_clusters() {
    let compose = yaml_docs(&crate_root().join("envoy/docker-compose.yaml")).remove(0);
    let (envoy, nginx) = (&compose["services"]["envoy"], &compose["services"]["nginx"]);
    let root = crate_root();

    // Envoy's config is demo.yaml; the module it names, from the working directory, is the build's.
    let command: Vec<&str> =
        envoy["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let config_at = command.iter().position(|a| *a == "-c").map(|i| command[i + 1]).unwrap();
    let mounts = binds(envoy);
    assert_eq!(mounts[config_at], root.join("envoy/demo.yaml"));
    let demo = demo_yaml();
    let wasm = demo.pointer(&demo_wasm_config(&demo)).unwrap();
    let module = wasm["vm_config"]["code"]["local"]["filename"].as_str().unwrap();
    let module_at = Path::new(envoy["working_dir"].as_str().unwrap()).join(module);
    assert_eq!(
        mounts[module_at.to_str().unwrap()],
        root.join("target/wasm32-wasip1/release/jwt_authn_wasm.wasm")
    );
    assert_eq!(mounts.len(), 2, "{mounts:?}");

    // The image is the Envoy the tests run (the Makefile's ENVOY_VERSION).
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let version = makefile.lines().find_map(|l| l.strip_prefix("ENVOY_VERSION := ")).unwrap();
    let minor = version.rsplit_once('.').unwrap().0;
    assert_eq!(envoy["image"], format!("envoyproxy/envoy:v{minor}-latest"));

    // nginx stands in for the devserver: it listens where demo.yaml's clusters point, serves the
    // JWKS at the path of the demo's uri, and every file it mounts exists.
    let nginx_mounts = binds(nginx);
    for source in nginx_mounts.values() {
        assert!(source.is_file(), "{}", source.display());
    }
    let conf_source = &nginx_mounts["/etc/nginx/conf.d/default.conf"];
    let conf = std::fs::read_to_string(conf_source).unwrap();
    let listens: Vec<u64> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("listen 127.0.0.1:")?.strip_suffix(';')?.parse().ok())
        .collect();
    let clusters = demo["static_resources"]["clusters"].as_array().unwrap();
    let cluster_ports: Vec<u64> = ["jwks", "echo"]
        .iter()
        .map(|n| port_of(clusters.iter().find(|c| c["name"] == *n).unwrap()))
        .collect();
    assert_eq!(listens, cluster_ports);
    let uri =
        demo_policy()["providers"]["demo"]["remote_jwks"]["http_uri"]["uri"].as_str().unwrap().to_owned();
    let path = &uri[uri.find("://").unwrap() + 3..];
    let path = &path[path.find('/').unwrap()..];
    assert!(conf.contains(&format!("location = {path} {{")), "nginx serves {path}");
    assert!(conf.contains("alias /srv/demo-jwks.json;") && nginx_mounts.contains_key("/srv/demo-jwks.json"));
}
