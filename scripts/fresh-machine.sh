#!/usr/bin/env bash
# The fresh-machine check: does a newcomer's clone build on a Debian 12 machine that has nothing installed?
#
# Our own machines always have something a newcomer lacks (a package installed by hand months ago, a warm cargo
# cache). This check starts from a clean Debian 12 root file system, built here with mmdebstrap (no registry
# needed), and gives it only what the README says a newcomer has:
#
#   - the Rust toolchain (this machine's rustup toolchains, mounted read-only);
#   - a running Docker engine (this machine's socket, mounted);
#   - kubectl on PATH (this machine's kubectl folder, mounted read-only: no Debian package or registry here has it).
#
# In it, `scripts/deps.sh build test` must install everything else from nothing (protoc and its include files,
# busybox-static, gcc, etcd, mmdebstrap, mdbook, the Python tools) and `cargo check --workspace --locked` must then
# succeed with an empty cargo home and target directory. The sources are the committed tree (HEAD), as a clean
# clone has them. Takes 6 to 10 minutes on 2 cores, most of it compiling.
#
#   scripts/fresh-machine.sh            build the root file system, run the check, remove the container and image
#   KEEP_IMAGE=1 scripts/fresh-machine.sh   keep the image (kubelab/fresh-debian:12) for a second run
set -euo pipefail
cd "$(dirname "$0")/.."

image=kubelab/fresh-debian:12
container=kubelab-fresh-machine-$$
work=$(mktemp -d)
say() { printf 'fresh-machine: %s\n' "$*"; }
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  [ -n "${KEEP_IMAGE:-}" ] || docker rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for cmd in mmdebstrap docker git rustup; do
  command -v "$cmd" >/dev/null 2>&1 || { say "ERROR: $cmd is missing (scripts/deps.sh test installs mmdebstrap)"; exit 1; }
done
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
# Only rustup's own commands from ~/.cargo/bin: whatever else was `cargo install`ed there (mdbook) must be
# installed by deps.sh inside.
cargo_bin=$(dirname "$(command -v cargo)")
toolchain_mounts=()
for tool in cargo rustc rustup rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  [ -e "$cargo_bin/$tool" ] && toolchain_mounts+=(-v "$cargo_bin/$tool:/opt/cargo-bin/$tool:ro")
done
kubectl_dir=$(dirname "$(readlink -f "$(command -v kubectl)")")

started=$SECONDS
if [ -n "${KEEP_IMAGE:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
  say "reusing $image"
else
  # minbase is the smallest Debian that has apt; ca-certificates is on every installed Debian (and rustup needed it).
  # The certificate authorities this machine adds locally (a network's own proxy CA, say) are part of the network,
  # not of kubelab: a newcomer's machine on the same network has them too, so they are copied in.
  say "building a clean Debian 12 root file system with mmdebstrap"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share' \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    bookworm "$work/rootfs.tar" http://deb.debian.org/debian
  docker import "$work/rootfs.tar" "$image" >/dev/null
  rm -f "$work/rootfs.tar"
  say "image $image ready in $((SECONDS - started)) s"
fi

# ... and so are the variables that point programs with their own certificate bundles (pip) at the system's.
network_env=()
for var in PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE; do
  [ -n "${!var:-}" ] && network_env+=(-e "$var=/etc/ssl/certs/ca-certificates.crt")
done

# What a clean clone holds: the committed tree (uncommitted changes are not part of what a newcomer clones).
git archive --format=tar HEAD >"$work/src.tar"

say "running scripts/deps.sh build test, then cargo check --workspace --locked, inside it"
checked=$SECONDS
docker run --rm --name "$container" -i \
  -v "$rustup_home:/opt/rustup:ro" \
  "${toolchain_mounts[@]}" \
  -v "$kubectl_dir:/opt/kubectl:ro" \
  -v /var/run/docker.sock:/var/run/docker.sock \
  "${network_env[@]}" \
  -e RUSTUP_HOME=/opt/rustup \
  -e CARGO_HOME=/root/.cargo \
  -e CARGO_TERM_COLOR=never \
  -e PATH=/root/.cargo/bin:/opt/cargo-bin:/opt/kubectl:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "$image" bash -euo pipefail -c '
    mkdir -p /root/kubelab && cd /root/kubelab && tar -xf -
    t=$SECONDS
    scripts/deps.sh build test
    echo "fresh-machine: deps installed in $((SECONDS - t)) s"
    t=$SECONDS
    cargo check --workspace --locked --quiet
    echo "fresh-machine: cargo check --workspace passed in $((SECONDS - t)) s"
  ' <"$work/src.tar"
say "passed: deps and build from nothing in $((SECONDS - checked)) s (whole check $((SECONDS - started)) s)"
