#!/usr/bin/env bash
# Rank-0 cost and worker utilisation of nasd search under mpirun, with the
# surrogate trainer (no training): RANKS × MODES × trial durations.
# 0 s trials measure the controller's own cost per trial; 1 s trials show how
# busy it keeps the workers, over the whole run and in steady state (while
# every worker had work: start-up and the budget's tail left out). Above 2 ranks this 2-core machine is
# oversubscribed, so every rank competes with rank 0 for a core.
#
# With BASE=<git rev> (e.g. BASE=fb60da9) the same runs are made with that
# commit's nasd too, built in a temporary git worktree with TAGS, and printed
# as a "before" column next to BIN's ("after"). BASE_BIN=<path> uses a binary
# built already instead.
set -euo pipefail
BIN=${BIN:-bin/nasd}
GO=${GO:-go}
TAGS=${TAGS:-mpi}
RANKS=${RANKS:-"4 16 64"}
MODES=${MODES:-"sync async"}
DURATIONS=${DURATIONS:-"0s 1s"}
PER_WORKER=${PER_WORKER:-25}           # trials per worker for trials under 1 s
PER_WORKER_LONG=${PER_WORKER_LONG:-10} # and for trials of 1 s or more
REPEAT=${REPEAT:-1}                    # rows per configuration (before and after interleaved, ABBA)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_plm_rsh_agent= OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_odls_base_sigkill_timeout=0
command -v mpirun >/dev/null || { echo "bench-scale: mpirun not found (make deps)"; exit 2; }
work=$(mktemp -d)
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cleanup() {
  if [ -d "$work/base" ]; then git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${BASE:-}" ] && [ -z "${BASE_BIN:-}" ]; then
  echo "bench-scale: building nasd at $BASE (tags $TAGS) for the before column"
  git -C "$repo" worktree add --detach "$work/base" "$BASE" >/dev/null 2>&1
  (cd "$work/base" && "$GO" build -tags "$TAGS" -o "$work/nasd-base" ./cmd/nasd)
  BASE_BIN=$work/nasd-base
fi

# run BIN N MODE D: one search; prints "trials/s busy% µs" from its Throughput line.
run() {
  local bin=$1 n=$2 mode=$3 d=$4 per=$PER_WORKER
  [[ $d =~ ^[0-9]+s$ && $d != 0s ]] && per=$PER_WORKER_LONG
  cat >"$work/c.toml" <<TOML
seed = 1
mode = "$mode"
[budget]
trials = $(((n - 1) * per))
[space]
name = "nas"
layers = 6
[trainer]
kind = "surrogate"
[trainer.surrogate]
duration = "$d"
TOML
  rm -rf "$work/run"
  local out
  out=$(timeout -k 10 600 mpirun -n "$n" --bind-to none "$bin" search -config "$work/c.toml" \
    -run-dir "$work/run" 2>"$work/err") || { echo "mpirun -n $n $bin failed:" >&2; tail -20 "$work/err" >&2; exit 1; }
  # Throughput: 66.1 trials/s; workers busy 89% of 3×0.5s, 98.1% over the 0.4s all had work; rank 0 CPU 2158 µs per trial
  # (binaries before 2026-12-06 print no steady figure: "-")
  sed -nE 's/^Throughput: ([0-9.]+) trials.*workers busy ([0-9]+%) of [^,;]*(, ([0-9.]+%) over)?.*CPU (.*) per trial.*/\1 \2 S\4 \5/p' <<<"$out" |
    awk '{ s = substr($3, 2); if (s == "") s = "-"; c = $4; if ($5 != "µs") { sub(/ms$/, "", c); c = int(c * 1000) } print $1, $2, s, c }'
}

echo "ranks: $RANKS on $(nproc) cores (oversubscribed above $(nproc)); $(mpirun --version | head -1)"
if [ -n "${BASE_BIN:-}" ]; then
  printf '%-5s %-5s %-5s %6s | %-36s | %-36s\n' "" "" "" "" "before (${BASE:-$BASE_BIN})" "after ($BIN)"
  printf '%-5s %-5s %-5s %6s | %9s %6s %7s %11s | %9s %6s %7s %11s\n' ranks mode trial trials \
    trials/s busy steady "µs/trial" trials/s busy steady "µs/trial"
else
  printf '%-5s %-5s %-5s %6s | %9s %6s %7s %11s\n' ranks mode trial trials trials/s busy steady "rank-0 µs/trial"
fi
for n in $RANKS; do
  for mode in $MODES; do
    for d in $DURATIONS; do
     for i in $(seq "$REPEAT"); do
      per=$PER_WORKER
      [[ $d =~ ^[0-9]+s$ && $d != 0s ]] && per=$PER_WORKER_LONG
      row=$(printf '%-5s %-5s %-5s %6s' "$n" "$mode" "$d" $(((n - 1) * per)))
      if [ -n "${BASE_BIN:-}" ]; then
        # The second of two back-to-back runs reads 5-18 % more rank-0 CPU
        # (an A/A run, docs/performance.md): every other repetition runs
        # BIN first.
        if ((i % 2 == 0)); then
          r1=$(run "$BIN" "$n" "$mode" "$d")
          r0=$(run "$BASE_BIN" "$n" "$mode" "$d")
        else
          r0=$(run "$BASE_BIN" "$n" "$mode" "$d")
          r1=$(run "$BIN" "$n" "$mode" "$d")
        fi
        read -r t0 b0 s0 c0 <<<"$r0"
        row+=$(printf ' | %9s %6s %7s %11s' "$t0" "$b0" "$s0" "$c0")
      else
        r1=$(run "$BIN" "$n" "$mode" "$d")
      fi
      read -r t1 b1 s1 c1 <<<"$r1"
      printf '%s | %9s %6s %7s %11s\n' "$row" "$t1" "$b1" "$s1" "$c1"
     done
    done
  done
done
