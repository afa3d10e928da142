#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 60), one after
# another, and prints the runs, coverage and crashes of each. Needs the
# nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Seeds come from fuzz/corpus/<target>/ (committed, never written); what a
# run learns goes to fuzz/work/<target>/ (ignored by git) and is reused by
# the next run. A crash leaves its input in fuzz/artifacts/<target>/: turn
# it into a regression test in the crate it concerns.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "==> building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build -O

failed=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | wc -l)
  log="work/$target.log"
  echo "==> $target: ${seconds}s"
  status=0
  cargo +nightly fuzz run -O "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+')
  crashes=$(( $(find "artifacts/$target" -type f | wc -l) - before ))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes="?(exit $status, see fuzz/$log)"
  fi
  [ "$status" -ne 0 ] && failed=1
  line=$(printf '%-20s runs: %-12s cov: %-8s crashes: %s' "$target" "${runs:-?}" "${cov:-?}" "$crashes")
  echo "$line"
  summary+=("$line")
done

echo "==> summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
