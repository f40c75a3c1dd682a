#!/usr/bin/env bash
# Runs every check of the project, on a fresh machine too: formatting, lints, all tests (unit,
# integration, doc, ui, every example with its output check), the book and the API docs.
# Installs what it needs (mdbook) when it is missing. Benchmarks are not run here.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustc --version
cargo --version

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace (unit, integration, doc, ui tests, examples with output checks)"
cargo test --workspace

step "mdbook build book"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v mdbook >/dev/null 2>&1; then
  # Only the static build is needed: no live-reload server, no file watcher.
  cargo install mdbook --version 0.5.4 --locked --no-default-features --features search
fi
mdbook build book

step "RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps

step "all checks passed"
