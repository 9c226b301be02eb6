#!/usr/bin/env python3
"""Packages the filter's .wasm as the OCI image that Istio's WasmPlugin pulls (`url: oci://...`).

The image is the *compat* variant of the Wasm image spec, the one Istio's fetcher reads: a
regular image with a single `application/vnd.oci.image.layer.v1.tar+gzip` layer whose tar holds
`plugin.wasm` at its root, and the manifest annotation `module.wasm.image/variant: compat`. It
is what `FROM scratch` + `COPY jwt_authn_wasm.wasm plugin.wasm` gives, built without Docker.

Writes an OCI image layout directory (oci-layout, index.json, blobs/sha256/...) or, with --tar,
an oci-archive (the same tree in one tar), for `crane push`, `skopeo copy` or `oras cp`.

Reproducible: tar and gzip headers carry fixed times, owners and modes, and JSON is written
canonically, so every digest depends only on the module's bytes (and on zlib's deflate output,
which is the same for the same zlib). Python 3 standard library only.

    python3 tools/oci-layout.py target/wasm32-wasip1/release/jwt_authn_wasm.wasm \\
        -o target/oci/jwt-authn-wasm --tag 0.1.0
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import struct
import sys
import tarfile
import tempfile
import zlib

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# The Wasm image spec asks for this annotation when the layer has the OCI tar+gzip type.
VARIANT_ANNOTATION = {"module.wasm.image/variant": "compat"}
# Istio reads the module from this name at the root of the layer.
PLUGIN_NAME = "plugin.wasm"
# Informational only: Istio pulls one manifest and never selects by platform. Fixed values keep
# the digest independent of the machine that packs the image.
PLATFORM = {"architecture": "wasm", "os": "wasip1"}
WASM_HEADER = b"\0asm\x01\0\0\0"
# OCI image-spec's grammar for a tag (org.opencontainers.image.ref.name).
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class PackError(Exception):
    """A reason to stop, printed without a traceback."""


def read_module(path):
    """The module's bytes; refuses anything that is not a binary wasm module (a wrong path
    would otherwise ship as a plugin that only fails when the proxy loads it)."""
    try:
        with open(path, "rb") as f:
            module = f.read()
    except OSError as e:
        raise PackError(f"cannot read {path}: {e.strerror}") from e
    if not module.startswith(WASM_HEADER):
        raise PackError(f"{path} is not a binary wasm module (no \\0asm version 1 header)")
    return module


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type, blob, annotations=None):
    d = {"mediaType": media_type, "digest": sha256(blob), "size": len(blob)}
    if annotations:
        d["annotations"] = annotations
    return d


def reproducible_tar(entries):
    """A ustar archive of (name, bytes or None for a directory), owned by root, dated 1970."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def reproducible_gzip(data):
    """gzip (RFC 1952) with mtime 0, no name and OS 'unknown'. Written by hand because
    gzip.compress's header differs between Python versions."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    # ID1 ID2, CM=deflate, FLG=0, MTIME=0, XFL=2 (best compression), OS=255 (unknown)
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer


def image(module, tag):
    """The layout's files as (path, bytes) in a fixed order, and the manifest's digest."""
    layer_tar = reproducible_tar([(PLUGIN_NAME, module)])
    layer = reproducible_gzip(layer_tar)
    config = canonical_json(
        {**PLATFORM, "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]}}
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": descriptor(MEDIA_CONFIG, config),
            "layers": [descriptor(MEDIA_LAYER, layer)],
            "annotations": VARIANT_ANNOTATION,
        }
    )
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                descriptor(MEDIA_MANIFEST, manifest, {"org.opencontainers.image.ref.name": tag})
            ],
        }
    )
    blobs = sorted((sha256(b).removeprefix("sha256:"), b) for b in (config, layer, manifest))
    files = [("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})), ("index.json", index)]
    files += [(f"blobs/sha256/{hex_digest}", blob) for hex_digest, blob in blobs]
    return files, sha256(manifest)


def write_directory(out, files):
    """Replaces `out` (only if it is absent, empty or an earlier OCI layout) with the layout."""
    if os.path.lexists(out):
        if not os.path.isdir(out):
            raise PackError(f"{out} exists and is not a directory")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, "oci-layout")):
            raise PackError(f"{out} is not empty and not an OCI layout: refusing to replace it")
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".oci-layout-", dir=parent)
    try:
        for path, data in files:
            target = os.path.join(staging, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        if os.path.lexists(out):
            shutil.rmtree(out)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_archive(out, files):
    """An oci-archive: the layout tree in a tar, with its directories, replacing `out`."""
    entries = files[:2] + [("blobs", None), ("blobs/sha256", None)] + files[2:]
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=".oci-archive-", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(reproducible_tar(entries))
        os.replace(staging, out)
    except BaseException:
        os.unlink(staging)
        raise


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wasm", help="the filter module, e.g. target/wasm32-wasip1/release/jwt_authn_wasm.wasm")
    parser.add_argument("-o", "--output", required=True, help="layout directory (or archive file with --tar)")
    parser.add_argument("--tag", default="latest", help="the tag recorded in index.json (default: latest)")
    parser.add_argument("--tar", action="store_true", help="write an oci-archive tarball instead of a directory")
    args = parser.parse_args(argv)
    try:
        if not TAG.fullmatch(args.tag):
            raise PackError(f"invalid tag {args.tag!r}: expected {TAG.pattern}")
        module = read_module(args.wasm)
        files, manifest_digest = image(module, args.tag)
        (write_archive if args.tar else write_directory)(args.output, files)
    except PackError as e:
        print(f"oci-layout: {e}", file=sys.stderr)
        return 1
    kind = "oci-archive" if args.tar else "OCI image layout"
    print(f"wrote {kind} {args.output} (tag {args.tag})")
    # The manifest digest pins the image (url: oci://REGISTRY/REPO@sha256:...); the module's is
    # the WasmPlugin `sha256` for a file:// or https:// url.
    print(f"manifest {manifest_digest}")
    print(f"{PLUGIN_NAME} {sha256(module)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
