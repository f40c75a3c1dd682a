#!/usr/bin/env bash
# Fuzzes every decoder of bytes from another process (the targets in fuzz/fuzz_targets/)
# for a short while each, and fails if any target finds a crash, a timeout or an out-of-memory.
# Works on a fresh machine: installs cargo-fuzz when it is missing.
#
# Each target starts from a copy of its committed seed corpus (fuzz/corpus/<target>) in a
# temporary directory, so this never writes into the repository (crash inputs are printed as
# hex and kept in the temporary directory, whose path is printed).
#
# Knobs: SKPROCESS_FUZZ_SECONDS (seconds per target, default 15),
# SKPROCESS_FUZZ_TARGETS (space-separated targets, default all).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

seconds="${SKPROCESS_FUZZ_SECONDS:-15}"
read -r -a targets <<<"${SKPROCESS_FUZZ_TARGETS:-frames handshake start task results outcome tell share pipe}"
if [ "${#targets[@]}" -eq 0 ]; then
  echo "SKPROCESS_FUZZ_TARGETS names no target" >&2
  exit 1
fi

started=$(date +%s)
step() { printf '\n==> [fuzz %ss] %s\n' "$(($(date +%s) - started))" "$*"; }

step "cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
cargo fuzz --version

# cargo fuzz needs a nightly compiler (sanitizers, coverage instrumentation). Use the `nightly`
# toolchain when there is one; otherwise the project's pinned toolchain with RUSTC_BOOTSTRAP=1,
# which unlocks the same flags on a stable compiler (a machine may have only one toolchain).
if command -v rustup >/dev/null 2>&1 && rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz() { cargo +nightly fuzz "$@"; }
  rustup run nightly rustc --version
else
  echo "no nightly toolchain: using the pinned one with RUSTC_BOOTSTRAP=1"
  fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
  rustc --version
fi
# Release mode with debug assertions and overflow checks, and AddressSanitizer (the default).
# `run` must get the same flags as `build`, or it builds again.
build_flags=(-O -a)

step "cargo fuzz build ${build_flags[*]} (all targets)"
fuzz build "${build_flags[@]}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skprocess-fuzz.XXXXXX")
failed=()
summary=()
for target in "${targets[@]}"; do
  step "fuzz $target for ${seconds}s"
  cp -r "fuzz/corpus/$target" "$tmp/$target"
  mkdir -p "$tmp/artifacts/$target"
  log="$tmp/$target.log"
  status=0
  # The later -artifact_prefix wins over the one cargo fuzz passes (fuzz/artifacts/).
  fuzz run "${build_flags[@]}" "$target" "$tmp/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$tmp/artifacts/$target/" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "$tmp/$target" -type f | wc -l)
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" || true
  summary+=("$(printf '%-10s %12s executions  %5s corpus files  exit %s' \
    "$target" "${execs:-?}" "$corpus" "$status")")
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "!! $target failed (exit $status); the end of its log:"
    tail -n 60 "$log"
    for artifact in "$tmp/artifacts/$target"/*; do
      [ -f "$artifact" ] || continue
      echo "!! input $artifact ($(wc -c <"$artifact") bytes), as hex:"
      od -An -v -tx1 "$artifact" | head -n 64
    done
  fi
done

step "summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (logs and inputs kept in $tmp)"
  exit 1
fi
rm -rf "$tmp"
echo "fuzz: ${#targets[@]} targets, no crash"
