#!/usr/bin/env bash
# Runs every check of the project, on a fresh machine too: formatting, lints, all tests (unit,
# integration, doc, ui, every example with its output check, the scheduler stress test, the
# fault matrix), with the default features and with all features, the ring's algorithm under
# loom, the book, the API docs, and a short run of every fuzz target. Installs what it needs (mdbook,
# cargo-fuzz, Debian's postgresql and redis-server for the autoreconnect tests, and nats-server,
# iproute2 and openssl for the NATS backend's tests) when missing.
# Benchmarks are not run here (`cargo run --release -p skprocess-bench`).
#
# Knobs: SKPROCESS_STRESS_ROUNDS (scheduler stress rounds, default 500),
# SKPROCESS_FAULT_ROUNDS (fault-matrix rounds per cell, default 5),
# SKPROCESS_FUZZ_SECONDS (seconds per fuzz target, default 15), SKPROCESS_SKIP_FUZZ=1.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
step() {
  printf '\n==> [%ss] %s\n' "$(($(date +%s) - started))" "$*"
  # Disk use is printed at every step: CI machines' disks can be small.
  printf '    (target: %s; free: %s)\n' "$(du -sh target 2>/dev/null | cut -f1 || echo none)" \
    "$(df -h --output=avail . | tail -1 | tr -d ' ')"
}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Every build here is built once: incremental caches would only take disk.
export CARGO_INCREMENTAL=0

# Removes what the workspace's own packages built in a finished `cargo test` step (their test and
# example executables are most of it): the next feature set builds its own (a different hash),
# and keeping both sets outgrew a CI machine's disk. `cargo clean -p` drops cargo's records of
# them too, so a later `cargo test` rebuilds them instead of finding them fresh but gone.
# (Dependencies and the proc-macro crate are kept: the next step reuses them.)
drop_test_binaries() {
  cargo clean --quiet -p skprocess-runtime -p examples -p ui-tests -p skprocess-bench \
    -p skprocess-ring-loom -p generic-lib -p renamed-crate-tests
  # trybuild's own target (an executable of about 40 MB per pass case, per feature set): the
  # next feature set builds the cases with other features anyway.
  rm -rf target/tests/trybuild
}

step "toolchain"
rustc --version
cargo --version

step "cargo fmt --all -- --check (the workspace and fuzz/)"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

for features in "" "--all-features"; do
  step "cargo clippy --workspace --all-targets $features -- -D warnings"
  cargo clippy --workspace --all-targets $features -- -D warnings
done

step "database servers for the autoreconnect tests: Debian's postgresql and redis-server (installed when missing)"
# The tests start their own servers on loopback (scripts/servers.sh up); this only installs them,
# once, so that the time it takes shows here.
bash scripts/servers.sh install

step "NATS backend tests: Debian's nats-server, iproute2 (network namespaces) and openssl (a CA made at test time), installed when missing"
# tests/nats.rs starts its own servers (JetStream on a free port) and worker hosts in network
# namespaces; with CI=true a namespace that cannot be created fails the test.
nats_need=()
command -v nats-server >/dev/null 2>&1 || nats_need+=(nats-server)
command -v ip >/dev/null 2>&1 || nats_need+=(iproute2)
command -v openssl >/dev/null 2>&1 || nats_need+=(openssl)
if [ "${#nats_need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing ${nats_need[*]} and not root: cannot install" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get -o DPkg::Lock::Timeout=300 update
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y \
    --no-install-recommends "${nats_need[@]}"
fi
nats-server --version

for features in "" "--all-features"; do
  step "cargo test --workspace $features (unit, integration, doc, ui tests, examples, stress, fault matrix)"
  cargo test --workspace $features
  drop_test_binaries
done

step "loom: the shared-memory ring's wake-up protocol under every interleaving (bounded)"
# Only the ring's algorithm is built with --cfg loom (ring-loom/ includes its one file).
RUSTFLAGS="--cfg loom" cargo test -p skprocess-ring-loom --release --target-dir target/loom

step "mdbook build book"
if ! command -v mdbook >/dev/null 2>&1; then
  # Only the static build is needed: no live-reload server, no file watcher.
  cargo install mdbook --version 0.5.4 --locked --no-default-features --features search
fi
mdbook build book

for features in "" "--all-features"; do
  step "RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps $features"
  RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps $features
done

if [ "${SKPROCESS_SKIP_FUZZ:-}" != 1 ]; then
  step "fuzz: every decoder of another process's bytes"
  bash scripts/fuzz.sh
fi

step "all checks passed"
