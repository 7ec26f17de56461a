#!/usr/bin/env bash
# Builds kubelab and starts a whole cluster on this machine: the one command for a fresh Debian machine with Rust.
#
#   scripts/up.sh                               data in ~/.kubelab, apiserver on port 6443, embedded store
#   scripts/up.sh --etcd-servers http://127.0.0.1:2379   the same cluster, stored in an etcd you run
#
# Any arguments go to `kubelab up` (see `cargo run -p kubelab -- up --help`). Ctrl-C stops the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh build

echo "up: building kubelab (release; the first build takes a few minutes) and running 'kubelab up $*'"
exec cargo run --release -p kubelab -- up "$@"
