#!/usr/bin/env bash
# Load benchmark: server CPU per request of one axum handler, bare and behind
# tessera's session layer with HS256, EdDSA, ES256 and RS256 sessions (a
# valid session cookie on every request), the server pinned to one core and
# wrk to the other, in interleaved rounds. Every response must be 2xx.
#
#   scripts/load.sh [SECONDS per run, default 5] [ROUNDS, default 3]
#
# Needs wrk (Debian package `wrk`, installed here when missing and run as
# root) and two cores. Prints one line per run and a summary with the
# ratios to bare; exits 1 when a response was not 2xx.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
rounds="${2:-3}"

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "wrk is missing: installing Debian's package"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
  else
    echo "wrk is missing: install it (Debian: apt-get install wrk)" >&2
    exit 1
  fi
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "the load benchmark needs two cores (server on one, wrk on the other)" >&2
  exit 1
fi

cargo build --quiet --release --example load_target
server=target/release/examples/load_target
ticks=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT

cpu_ticks() { # utime + stime of a pid, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run() { # mode round
  local mode=$1 round=$2 out token address pid before after requests non2xx rps
  out=$(mktemp)
  taskset -c 0 "$server" --mode "$mode" --port 0 >"$out" &
  pid=$!
  for _ in $(seq 100); do grep -q '^LISTENING' "$out" && break; sleep 0.05; done
  token=$(awk '/^TOKEN/ {print $2}' "$out")
  address=$(awk '/^LISTENING/ {print $2}' "$out")
  # Warm up (first verifications, connection set-up), then measure.
  taskset -c 1 wrk -t1 -c16 -d1s -H "Cookie: __Host-session=$token" "http://$address/posts/42" >/dev/null
  before=$(cpu_ticks "$pid")
  wrk_out=$(taskset -c 1 wrk -t1 -c16 -d"${seconds}s" -H "Cookie: __Host-session=$token" "http://$address/posts/42")
  after=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$out"
  requests=$(echo "$wrk_out" | awk '/requests in/ {print $1}')
  non2xx=$(echo "$wrk_out" | awk '/Non-2xx or 3xx responses/ {print $5}')
  rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')
  awk -v m="$mode" -v r="$round" -v req="$requests" -v bad="${non2xx:-0}" -v rps="$rps" \
      -v cpu=$((after - before)) -v t="$ticks" \
      'BEGIN { us = cpu / t * 1e6 / req; printf "%s round %d: %d requests, %s req/s, %d non-2xx, %.2f us server CPU per request\n", m, r, req, rps, bad, us; print m, us, bad > "/dev/stderr" }' \
      2>>"$results"
}

modes=(bare hs256 eddsa es256 rs256)
for round in $(seq "$rounds"); do
  # Alternate the order, so that no mode always runs first.
  if [ $((round % 2)) = 0 ]; then order=$(printf '%s\n' "${modes[@]}" | tac); else order=${modes[*]}; fi
  for mode in $order; do run "$mode" "$round"; done
done

echo
awk '
  { us[$1] = us[$1] " " $2; bad += $3 }
  END {
    split("bare hs256 eddsa es256 rs256", order, " ")
    for (i = 1; i <= 5; i++) {
      n = split(us[order[i]], v, " "); asort(v); med[order[i]] = v[int((n + 1) / 2)]
    }
    printf "median server CPU per request (us): bare %.2f", med["bare"]
    for (i = 2; i <= 5; i++) printf ", %s %.2f", order[i], med[order[i]]
    printf "\nlayer adds over bare (HS256): %.2f us (budget <= 2.00)\n", med["hs256"] - med["bare"]
    for (i = 3; i <= 5; i++) printf "%s / hs256: %.2f (budget <= 1.20)\n", order[i], med[order[i]] / med["hs256"]
    printf "non-2xx responses: %d\n", bad
    exit (bad > 0)
  }' "$results"
