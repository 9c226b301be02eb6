# The filter as the OCI image Istio's WasmPlugin pulls: the "compat" Wasm image, a scratch image
# whose single layer holds the module as /plugin.wasm. Without Docker, `make oci`
# (tools/oci-layout.py) builds the same kind of image reproducibly. See envoy/istio/README.md.
#
#   make build
#   docker buildx build --provenance=false --sbom=false -t REGISTRY/jwt-authn-wasm:TAG --push .
#
# One COPY and nothing else: every further instruction would add a layer. No attestations
# (--provenance/--sbom=false): they turn the pushed reference into an image index, and Istio
# would then pick the image by its linux/amd64 default platform.
FROM scratch
COPY target/wasm32-wasip1/release/jwt_authn_wasm.wasm ./plugin.wasm
