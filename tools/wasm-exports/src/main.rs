//! `wasm-exports strip FILE`: removes the `proxy_on_*` exports the filter does not implement (the
//! post-link step of `make build`); `wasm-exports list FILE`, `wasm-exports imports FILE`: print
//! a module's exports or imports, one per line.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;
use wasm_exports::{FILTER_CALLBACKS, exports, imports, strip_callbacks};

const USAGE: &str = "usage: wasm-exports strip FILE | list FILE | imports FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, file] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    match run(command, file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("wasm-exports: {file}: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &str, file: &str) -> Result<(), String> {
    let wasm = std::fs::read(file).map_err(|e| e.to_string())?;
    match command {
        "list" => exports(&wasm)
            .map_err(|e| e.to_string())?
            .iter()
            .for_each(|e| println!("{} {}", kind_name(e.kind), e.name)),
        "imports" => imports(&wasm)
            .map_err(|e| e.to_string())?
            .iter()
            .for_each(|i| println!("{} {}.{}", kind_name(i.kind), i.module, i.name)),
        "strip" => {
            let stripped = strip_callbacks(&wasm, &FILTER_CALLBACKS).map_err(|e| e.to_string())?;
            if !stripped.removed.is_empty() {
                overwrite(file, &stripped.module)?;
            }
            println!(
                "wasm-exports: {} callback exports removed: {}",
                stripped.removed.len(),
                stripped.removed.join(" ")
            );
        }
        other => return Err(format!("unknown command {other:?}\n{USAGE}")),
    }
    Ok(())
}

/// Writes through the file rather than replacing it: cargo hard-links its output
/// (`target/<triple>/release/X.wasm`) to `deps/X.wasm` and links it again on every build, even
/// one with nothing to compile, so a replaced file would be back to the unstripped one after the
/// next `cargo build`; written through, both names hold the stripped module.
fn overwrite(file: &str, bytes: &[u8]) -> Result<(), String> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(file).map_err(|e| e.to_string())?;
    f.write_all(bytes).map_err(|e| e.to_string())
}

fn kind_name(kind: u8) -> &'static str {
    ["func", "table", "memory", "global", "tag"].get(usize::from(kind)).copied().unwrap_or("unknown")
}
