#!/usr/bin/env bash
# Training and evaluation throughput of the reference CNN: nasd (Go benchmarks
# in ./train) and PyTorch (bench/pytorch_ref.py) measured in the same run,
# interleaved per thread count, medians of COUNT repetitions; prints ratios.
# `bench/run.sh LOG` re-prints the table from a saved log of a run.
set -euo pipefail
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
COUNT=${COUNT:-3}
STEPS=${STEPS:-20}
THREADS=${THREADS:-"1 2"}
tags=()
[ -n "${TAGS:-}" ] && tags=(-tags "$TAGS")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ $# -eq 1 ]; then
  # Summarise the log of an earlier run (its stderr) instead of measuring.
  grep '^Benchmark' "$1" >"$out/go.txt" || true
  grep '^pytorch ' "$1" >"$out/py.txt" || true
else
"$GO" test "${tags[@]}" -c -o "$out/train.test" ./train
for t in $THREADS; do
  for ((i = 0; i < COUNT; i++)); do
    echo "== threads $t, repetition $((i + 1))/$COUNT" >&2
    GOMAXPROCS=$t OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$out/train.test" -test.run '^$' \
      -test.bench 'ReferenceCNN' -test.benchtime "${STEPS}x" -test.benchmem | tee -a "$out/go.txt" >&2
    "$PYTHON" bench/pytorch_ref.py --threads "$t" --steps "$STEPS" | tee -a "$out/py.txt" >&2
  done
done
fi

# Go lines: BenchmarkTrainReferenceCNN/batch=64-2  20  ...  412.3 img/s ...
awk '
  /^Benchmark(Train|Eval)ReferenceCNN/ {
    mode = ($1 ~ /^BenchmarkTrain/) ? "train" : "eval"
    match($1, /batch=[0-9]+/); batch = substr($1, RSTART + 6, RLENGTH - 6)
    # go test leaves the -GOMAXPROCS suffix off when it is 1.
    threads = 1; if (match($1, /-[0-9]+$/)) threads = substr($1, RSTART + 1)
    for (i = 2; i <= NF; i++) if ($i == "img/s") v = $(i - 1)
    for (i = 2; i <= NF; i++) if ($i == "B/op") a = $(i - 1)
    print "nasd", mode, threads, batch, v, a
  }' "$out/go.txt" >"$out/all.txt"
awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
       print "pytorch", f["mode"], f["threads"], f["batch"], f["img_per_s"], "-" }' "$out/py.txt" >>"$out/all.txt"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\n%-6s %-8s %-6s %12s %12s %8s %14s\n' mode threads batch "nasd img/s" "torch img/s" ratio "nasd B/step"
for mode in train eval; do
  for t in $THREADS; do
    for batch in $(awk -v m=$mode -v t=$t '$2 == m && $3 == t { print $4 }' "$out/all.txt" | sort -un); do
      n=$(awk -v m=$mode -v t=$t -v b=$batch '$1 == "nasd" && $2 == m && $3 == t && $4 == b { print $5 }' "$out/all.txt" | median)
      p=$(awk -v m=$mode -v t=$t -v b=$batch '$1 == "pytorch" && $2 == m && $3 == t && $4 == b { print $5 }' "$out/all.txt" | median)
      a=$(awk -v m=$mode -v t=$t -v b=$batch '$1 == "nasd" && $2 == m && $3 == t && $4 == b { print $6 }' "$out/all.txt" | median)
      printf '%-6s %-8s %-6s %12.1f %12.1f %8.2f %14.0f\n' "$mode" "$t" "$batch" "$n" "$p" "$(awk -v n="$n" -v p="$p" 'BEGIN { print (p > 0) ? n / p : 0 }')" "$a"
    done
  done
done
