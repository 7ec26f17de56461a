#!/usr/bin/env bash
# Runs every kubelab test, the same way on a laptop and in CI (.ci/run calls this script and nothing else).
#
#   1. scripts/deps.sh test    install what is missing (protoc, etcd, busybox-static, mdbook) or say what is
#   2. cargo fmt               formatting
#   3. cargo clippy            lints, warnings are errors
#   4. cargo test              unit tests, store tests (embedded and a real etcd the tests start), end-to-end tests
#                              (a real apiserver driven by kubectl and by kube-rs)
#   5. the book                every include points at real code, `mdbook build`, `mdbook test`
#   6. scripts/fresh-machine.sh  a clean Debian 12 container installs everything with deps.sh and builds kubelab
#
# It stops at the first step that fails and says which one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Keep cargo's colours on a terminal even though its output goes through `tee`.
[ -t 1 ] && export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"

summary=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# step NAME COMMAND...: runs one step, records its time, stops everything on failure. Output is also kept, to add
# up the test counts at the end.
step() {
  local name=$1
  shift
  printf '\n==> %s: %s\n' "$name" "$*"
  local started=$SECONDS
  if "$@" 2>&1 | tee -a "$log"; then
    summary+=("$(printf 'ok   %-9s %4ss  %s' "$name" $((SECONDS - started)) "$*")")
  else
    local code=$?
    printf '\n==> FAILED: %s (%s exited with %s)\n' "$name" "$*" "$code" >&2
    for line in "${summary[@]}"; do printf '    %s\n' "$line" >&2; done
    printf '    FAIL %s\n' "$name" >&2
    exit 1
  fi
}

step deps scripts/deps.sh test
step format cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step test cargo test --workspace
step includes scripts/check-book.sh
step book mdbook build book
# `mdbook test` compiles the book's Rust code blocks with rustdoc, alone: it cannot link the workspace crates
# (only with `-L target/debug/deps` and `extern crate`, which breaks as soon as two versions of a dependency sit in
# that folder). So code included from the crates is marked `rust,ignore` in the book: cargo already compiles and
# tests it where it lives. What `mdbook test` checks is every self-contained snippet the book shows.
step doctest mdbook test book
# Last, as it takes minutes: what a newcomer's machine would meet (see the script's header).
step fresh scripts/fresh-machine.sh

printf '\n==> summary\n'
for line in "${summary[@]}"; do printf '    %s\n' "$line"; done
# "test result: ok. 12 passed; 0 failed; 1 ignored; ..." from every test binary, doc-test and book run, added up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i;
       if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
