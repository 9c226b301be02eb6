//! The module's build identity: a SHA-256 over everything that decides what this build does (its
//! sources, manifest and lock file, build script, the compiler's version, the target, the profile
//! and flags), as `JWT_AUTHN_WASM_BUILD_ID` (hex). The shared record of verified tokens puts it in
//! every key-set identity (`shared_record::KeySetId`), so two builds that share a `vm_id` during a
//! rollout never take each other's entries, even with the same version number. Identical inputs
//! give the same identity, so a reproducible build stays reproducible.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock"), root.join("build.rs")];
    collect(&root.join("src"), &mut files);
    files.sort();
    let mut sha = Sha256::new();
    for file in &files {
        let name = file.strip_prefix(&root).unwrap_or(file).to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap_or_default();
        for part in [name.as_bytes(), &bytes] {
            sha.update((part.len() as u64).to_le_bytes());
            sha.update(part);
        }
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!("cargo:rerun-if-changed={}", root.join("src").display());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc).arg("-vV").output().map(|o| o.stdout).unwrap_or_default();
    sha.update(&version);
    for var in ["TARGET", "PROFILE", "OPT_LEVEL", "CARGO_ENCODED_RUSTFLAGS", "CARGO_CFG_FEATURE"] {
        let value = std::env::var(var).unwrap_or_default();
        sha.update((value.len() as u64).to_le_bytes());
        sha.update(value.as_bytes());
        println!("cargo:rerun-if-env-changed={var}");
    }
    let id: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=JWT_AUTHN_WASM_BUILD_ID={id}");
}

/// Every file under `dir`, recursively.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
