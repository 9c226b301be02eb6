//! Reads a WebAssembly module's exports and imports, and removes the `proxy_on_*` exports of
//! callbacks a proxy-wasm filter does not implement.
//!
//! Why: Envoy (proxy-wasm-cpp-host `WasmBase::getFunctions`) looks up every `proxy_on_*` callback
//! by name once per VM and enters the VM on each one the module exports; a callback that is not
//! exported is skipped on the host side (`onLog`, `onDone`, `onResponseHeaders`... test the
//! function pointer first, and answer as the SDK's default would: `Continue`, `true`). The Rust
//! SDK exports all of them, so a request through an SDK filter enters the VM at least seven times
//! whatever the filter uses. Removing an export leaves its function in the module as dead code;
//! nothing else in the module changes.

use std::fmt;

/// The `proxy_on_*` callbacks the filter's module keeps; `make build` removes every other one.
/// - `proxy_on_memory_allocate`: the host's allocator in the module (it is `malloc` for the
///   host: a module without it does not load);
/// - `proxy_on_context_create`, `proxy_on_delete`: the SDK makes its root and HTTP contexts in
///   the first and frees them in the second (the HTTP context forgets a held request there, when
///   its client gave up: `Drop` of `filter::http::Http`);
/// - `proxy_on_configure`, `proxy_on_tick`, `proxy_on_http_call_response`: the root context
///   (`filter::root`);
/// - `proxy_on_request_headers`: the HTTP context (`filter::http`);
/// - `proxy_on_response_headers`: the fresh `DPoP-Nonce` offered on a success (RFC 9449 §8.2,
///   providers with DPoP server nonces). Envoy enters the VM for it on every request, about
///   1,700 instructions, even where no provider uses nonces: exports are the module's, not the
///   configuration's.
///
/// Left out, with what Envoy does without them: `proxy_on_vm_start` (starts as if it returned
/// true), `proxy_on_done` (done at once), `proxy_on_log`, `proxy_on_request_body`,
/// `proxy_on_request_trailers`, `proxy_on_response_body`, `proxy_on_response_trailers` (the
/// stream goes on), `proxy_on_foreign_function`, `proxy_on_queue_ready`, the gRPC and the
/// network-filter callbacks (never called).
pub const FILTER_CALLBACKS: [&str; 8] = [
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_configure",
    "proxy_on_tick",
    "proxy_on_http_call_response",
    "proxy_on_request_headers",
    "proxy_on_response_headers",
];

/// The names proxy-wasm hosts look up as callbacks.
pub const CALLBACK_PREFIX: &str = "proxy_on_";

const MAGIC: &[u8; 8] = b"\0asm\x01\0\0\0";
const IMPORT_SECTION: u8 = 2;
const EXPORT_SECTION: u8 = 7;
/// Export and import kinds.
pub const FUNC: u8 = 0;
pub const TABLE: u8 = 1;
pub const MEMORY: u8 = 2;
pub const GLOBAL: u8 = 3;
const TAG: u8 = 4;

/// Why a module could not be read or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn error<T>(what: impl Into<String>) -> Result<T, Error> {
    Err(Error(what.into()))
}

/// One export: its name, kind (`FUNC`, table 1, memory 2, global 3, tag 4) and index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub kind: u8,
    pub index: u32,
}

/// One import: the module it comes from (`env` for proxy-wasm host calls, WASI's module for
/// WASI functions), its name and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub kind: u8,
}

/// A module with callbacks removed, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    pub module: Vec<u8>,
    pub removed: Vec<String>,
}

/// The module's exports, in order.
pub fn exports(wasm: &[u8]) -> Result<Vec<Export>, Error> {
    match section(wasm, EXPORT_SECTION)? {
        Some(content) => read_exports(content),
        None => Ok(Vec::new()),
    }
}

/// The module's imports, in order.
pub fn imports(wasm: &[u8]) -> Result<Vec<Import>, Error> {
    let Some(content) = section(wasm, IMPORT_SECTION)? else { return Ok(Vec::new()) };
    let mut r = Reader::new(content);
    let imports = (0..r.u32()?).map(|_| r.import()).collect::<Result<Vec<_>, _>>()?;
    r.end("import section")?;
    Ok(imports)
}

/// The module without the function exports named `proxy_on_*` that `keep` does not list; every
/// other export and every other byte of the module stay as they were. Fails when a callback
/// `keep` names is not exported (a renamed SDK function would otherwise go unnoticed). Running it
/// again on its own output removes nothing.
pub fn strip_callbacks(wasm: &[u8], keep: &[&str]) -> Result<Stripped, Error> {
    let exports = exports(wasm)?;
    if let Some(missing) = keep.iter().find(|k| !exports.iter().any(|e| e.kind == FUNC && e.name == **k)) {
        return error(format!("the module does not export {missing}, which it must keep"));
    }
    let removable = |e: &Export| e.kind == FUNC && e.name.starts_with(CALLBACK_PREFIX);
    let (removed, kept): (Vec<Export>, Vec<Export>) =
        exports.into_iter().partition(|e| removable(e) && !keep.contains(&e.name.as_str()));
    let mut module = MAGIC.to_vec();
    for s in sections(wasm)? {
        match s.id {
            EXPORT_SECTION => write_section(&mut module, EXPORT_SECTION, &encode_exports(&kept)),
            _ => module.extend_from_slice(s.whole),
        }
    }
    Ok(Stripped { module, removed: removed.into_iter().map(|e| e.name).collect() })
}

/// One section: its id, its content, and its bytes as found (id and size included).
struct Section<'a> {
    id: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

fn sections(wasm: &[u8]) -> Result<Vec<Section<'_>>, Error> {
    let Some(body) = wasm.strip_prefix(MAGIC.as_slice()) else {
        return error("not a WebAssembly 1.0 module (bad magic or version)");
    };
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    while !r.is_empty() {
        let start = r.pos;
        let id = r.byte()?;
        let size = r.u32()? as usize;
        let content = r.bytes(size)?;
        out.push(Section { id, content, whole: &body[start..r.pos] });
    }
    Ok(out)
}

/// The content of the section `id` (a module has at most one of each known section).
fn section(wasm: &[u8], id: u8) -> Result<Option<&[u8]>, Error> {
    Ok(sections(wasm)?.into_iter().find(|s| s.id == id).map(|s| s.content))
}

fn read_exports(content: &[u8]) -> Result<Vec<Export>, Error> {
    let mut r = Reader::new(content);
    let exports = (0..r.u32()?)
        .map(|_| Ok(Export { name: r.name()?, kind: r.byte()?, index: r.u32()? }))
        .collect::<Result<Vec<_>, Error>>()?;
    r.end("export section")?;
    Ok(exports)
}

fn encode_exports(exports: &[Export]) -> Vec<u8> {
    let mut out = leb128(exports.len() as u64);
    for e in exports {
        out.extend(leb128(e.name.len() as u64));
        out.extend_from_slice(e.name.as_bytes());
        out.push(e.kind);
        out.extend(leb128(u64::from(e.index)));
    }
    out
}

fn write_section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    out.extend(leb128(content.len() as u64));
    out.extend_from_slice(content);
}

/// `n` as an unsigned LEB128, the integers of the WebAssembly binary format.
pub fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A cursor over bytes that fails, never panics, on anything short or malformed.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn end(&self, what: &str) -> Result<(), Error> {
        match self.is_empty() {
            true => Ok(()),
            false => error(format!("{} stray bytes at the end of the {what}", self.bytes.len() - self.pos)),
        }
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let Some(&b) = self.bytes.get(self.pos) else { return error("unexpected end of module") };
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len());
        let Some(end) = end else { return error("a length runs past the end of the module") };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// An unsigned LEB128 of at most `bits` bits.
    fn leb(&mut self, bits: u32) -> Result<u64, Error> {
        let (mut value, mut shift) = (0u64, 0u32);
        loop {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift >= bits {
                return error("an integer is longer than its type");
            }
        }
    }

    fn u32(&mut self) -> Result<u32, Error> {
        u32::try_from(self.leb(35)?).or_else(|_| error("an integer overflows u32"))
    }

    fn name(&mut self) -> Result<String, Error> {
        let n = self.u32()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).or_else(|_| error("a name is not UTF-8"))
    }

    /// Table and memory limits: flags, minimum, and a maximum when flag bit 0 says so.
    fn limits(&mut self) -> Result<(), Error> {
        let flags = self.byte()?;
        self.leb(70)?;
        if flags & 1 == 1 {
            self.leb(70)?;
        }
        Ok(())
    }

    fn import(&mut self) -> Result<Import, Error> {
        let (module, name, kind) = (self.name()?, self.name()?, self.byte()?);
        match kind {
            FUNC => {
                self.u32()?;
            }
            TABLE => {
                self.byte()?;
                self.limits()?;
            }
            MEMORY => self.limits()?,
            GLOBAL => {
                self.bytes(2)?;
            }
            TAG => {
                self.bytes(1)?;
                self.u32()?;
            }
            other => return error(format!("import {module}.{name} has an unknown kind {other}")),
        }
        Ok(Import { module, name, kind })
    }
}
