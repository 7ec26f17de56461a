#!/usr/bin/env bash
# Installs what kubelab needs, only what is missing, and says so one line at a time.
#
#   scripts/deps.sh build   what `cargo build` needs: protoc (etcd-client compiles etcd's .proto files)
#   scripts/deps.sh test    everything `scripts/test.sh` needs: the above, etcd, busybox-static, kubectl,
#                           rustfmt and clippy, and mdbook
#
# When everything is there it only checks, in well under a second. Debian packages come from apt-get (as root, or
# through sudo when there is one); mdbook from `cargo install`. When something cannot be installed here, it names
# what is missing and how to install it, and exits non-zero.
set -euo pipefail

# `cargo install` puts binaries here; a fresh shell may not have it on PATH yet.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

usage() {
  echo "usage: scripts/deps.sh build|test" >&2
  echo "  build  protoc, needed to compile kubelab (etcd-client builds etcd's protobuf definitions)" >&2
  echo "  test   everything scripts/test.sh needs (build + etcd, busybox-static, kubectl, rustfmt, clippy, mdbook)" >&2
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

# --- test ------------------------------------------------------------------------------------------------------
if $want_test; then
  need_command etcd etcd-server "the store tests start their own etcd"
  need_package busybox-static "test images are built from its static busybox"

  if command -v kubectl >/dev/null 2>&1; then
    say "kubectl: found at $(command -v kubectl)"
  else
    say "kubectl: missing (the end-to-end tests drive the real kubectl)"
    problems+=("kubectl is not on PATH, and Debian's archive has no package for it: install kubectl 1.32 (any recent release works) and put it on PATH.")
  fi

  if docker info >/dev/null 2>&1; then
    say "docker: engine reachable"
  else
    say "docker: engine not reachable (the kubelet and whole-cluster tests run real containers)"
    problems+=("Docker Engine is not reachable: install it (Debian: apt-get install docker.io) and start it (systemctl start docker), or check that you may use /var/run/docker.sock.")
  fi

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
