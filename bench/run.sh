#!/usr/bin/env bash
# Training and evaluation throughput of the reference CNN and of a typical
# enas-macro child (bench/enas-child.json, lowered to bench/enas-child.graph.json):
# nasd (Go benchmarks in ./train) and PyTorch (bench/pytorch_ref.py, which builds
# the child from the lowered graph) measured in the same run, interleaved per
# thread count, medians of COUNT repetitions; prints ratios, bytes per step, and
# the achieved training GFLOP/s against the machine's sgemm peak
# (train.BenchmarkSgemmPeak through the same gemm backend).
# `bench/run.sh LOG` re-prints the tables from a saved log of a run (its stderr).
set -euo pipefail
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
COUNT=${COUNT:-3}
STEPS=${STEPS:-20}
THREADS=${THREADS:-"1 2"}
ARCH=${ARCH:-bench/enas-child.json}
GRAPH=${GRAPH:-bench/enas-child.graph.json}
REF_FLOPS=68.8e6 # reference CNN, per image per training step (train.ReferenceCNN)
tags=()
[ -n "${TAGS:-}" ] && tags=(-tags "$TAGS")
. "$(dirname "$0")/peer-env.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ $# -eq 1 ]; then
  # Summarise the log of an earlier run (its stderr) instead of measuring.
  grep '^Benchmark' "$1" >"$out/go.txt" || true
  grep '^pytorch .*mode=' "$1" >"$out/py.txt" || true
  stats=$(grep -m1 '^nasd-stats ' "$1" || echo "nasd-stats net=enas-child params=0 fwd_flops=0")
else
  # The committed graph must be the lowering of the committed architecture
  # (train.TestENASChildGraphFile checks the same).
  "$GO" run ./bench/lower -arch "$ARCH" -o "$out/graph.json"
  cmp -s "$out/graph.json" "$GRAPH" || { echo "run.sh: $GRAPH is stale: go run ./bench/lower -arch $ARCH -o $GRAPH" >&2; exit 1; }
  stats="nasd-stats net=enas-child $("$GO" run ./bench/lower -arch "$ARCH" -stats)"
  echo "$stats" >&2
  params=$(sed -n 's/.* params=\([0-9]*\).*/\1/p' <<<"$stats")
  "$GO" test "${tags[@]}" -c -o "$out/train.test" ./train
  echo "gemm backend: $("$GO" run "${tags[@]}" ./cmd/nasd version 2>/dev/null | tr '\n' ' ')" >&2
  for t in $THREADS; do
    for ((i = 0; i < COUNT; i++)); do
      echo "== threads $t, repetition $((i + 1))/$COUNT" >&2
      # The test binary runs in ./train, as go test would (it reads ../bench/enas-child.json).
      (cd train && GOMAXPROCS=$t OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$out/train.test" -test.run '^$' \
        -test.bench 'ReferenceCNN|ENASChild' -test.benchtime "${STEPS}x" -test.benchmem) | tee -a "$out/go.txt" >&2
      (cd train && GOMAXPROCS=$t OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$out/train.test" -test.run '^$' \
        -test.bench 'SgemmPeak/n=1024' -test.benchtime 20x) | tee -a "$out/go.txt" >&2
      for alloc in $PEER_ALLOCS; do
        peer_run "$alloc" "$t" "$PYTHON" bench/pytorch_ref.py --threads "$t" --steps "$STEPS" --nets reference-cnn enas-child \
          --graph "$GRAPH" --expect-params "$params" | tee -a "$out/py.txt" >&2
      done
    done
  done
fi
fwd_flops=$(sed -n 's/.* fwd_flops=\([0-9]*\).*/\1/p' <<<"$stats")

# Go lines: BenchmarkTrainReferenceCNN/batch=64-2  20  ...  412.3 img/s ...
#           BenchmarkSgemmPeak/n=1024-2  20  ...  110.6 GFLOP/s ...
awk '
  function threads() { # go test leaves the -GOMAXPROCS suffix off when it is 1.
    if (match($1, /-[0-9]+$/)) return substr($1, RSTART + 1); return 1 }
  /^Benchmark(Train|Eval)(ReferenceCNN|ENASChild)/ {
    mode = ($1 ~ /^BenchmarkTrain/) ? "train" : "eval"
    net = ($1 ~ /ENASChild/) ? "enas-child" : "reference-cnn"
    match($1, /batch=[0-9]+/); batch = substr($1, RSTART + 6, RLENGTH - 6)
    for (i = 2; i <= NF; i++) if ($i == "img/s") v = $(i - 1)
    for (i = 2; i <= NF; i++) if ($i == "B/op") a = $(i - 1)
    print "nasd", net, mode, threads(), batch, v, a
  }
  /^BenchmarkSgemmPeak\/n=1024/ {
    for (i = 2; i <= NF; i++) if ($i == "GFLOP/s") v = $(i - 1)
    print "sgemm", "-", "-", threads(), 1024, v, "-"
  }' "$out/go.txt" >"$out/all.txt"
# The peer under each allocator it was run with ("pytorch-ALLOC"); the
# "pytorch" column of the tables is the best allocator's median per cell.
awk '{ delete f; for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
       print "pytorch-" (f["alloc"] == "" ? "default" : f["alloc"]), f["net"], f["mode"], f["threads"], f["batch"], f["img_per_s"], "-" }' "$out/py.txt" >>"$out/all.txt"

median() { sort -g | awk '{ v[NR] = $1 } END { print NR == 0 ? 0 : (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# cell WHO NET MODE THREADS BATCH FIELD: the median of one column over repetitions.
cell() { awk -v w="$1" -v n="$2" -v m="$3" -v t="$4" -v b="$5" -v f="$6" \
  '$1 == w && $2 == n && $3 == m && $4 == t && $5 == b { print $f }' "$out/all.txt" | median; }
allocs=$(awk '$1 ~ /^pytorch-/ { print substr($1, 9) }' "$out/all.txt" | sort -u)
# peer NET MODE THREADS BATCH: the best allocator's median img/s.
peer() {
  local best=0 v a
  for a in $allocs; do
    v=$(cell "pytorch-$a" "$@" 6)
    best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
  done
  echo "$best"
}
nets=$(awk '$1 == "nasd" || $1 ~ /^pytorch/ { print $2 }' "$out/all.txt" | sort -u -r)
printf '\n%-14s %-6s %-8s %-6s %12s %12s %8s %14s\n' net mode threads batch "nasd img/s" "torch img/s" ratio "nasd B/step"
for net in $nets; do
  for mode in train eval; do
    for t in $THREADS; do
      for batch in $(awk -v n=$net -v m=$mode -v t=$t '$2 == n && $3 == m && $4 == t { print $5 }' "$out/all.txt" | sort -un); do
        n=$(cell nasd $net $mode $t $batch 6)
        p=$(peer $net $mode $t $batch)
        a=$(cell nasd $net $mode $t $batch 7)
        printf '%-14s %-6s %-8s %-6s %12.1f %12.1f %8.2f %14.0f\n' "$net" "$mode" "$t" "$batch" "$n" "$p" \
          "$(awk -v n="$n" -v p="$p" 'BEGIN { print (p > 0) ? n / p : 0 }')" "$a"
      done
    done
  done
done

# The peer under each allocator (bench/peer-env.sh): what the allocator is
# worth to PyTorch on this machine.
printf '\n%-14s %-6s %-8s %-6s' net mode threads batch
for a in $allocs; do printf ' %14s' "torch $a"; done
printf '\n'
for net in $nets; do
  for mode in train eval; do
    for t in $THREADS; do
      for batch in $(awk -v n=$net -v m=$mode -v t=$t '$2 == n && $3 == m && $4 == t { print $5 }' "$out/all.txt" | sort -un); do
        printf '%-14s %-6s %-8s %-6s' "$net" "$mode" "$t" "$batch"
        for a in $allocs; do printf ' %14.1f' "$(cell "pytorch-$a" $net $mode $t $batch 6)"; done
        printf '\n'
      done
    done
  done
done

# Achieved training GFLOP/s = training FLOPs per image × img/s; training FLOPs
# per image: 68.8 M for the reference CNN, 3 × static forward FLOPs for the
# child (forward + backward ≈ 3× forward).
printf '\n%-8s %12s %-14s %-6s %12s %12s %8s\n' threads "sgemm GF/s" net batch "nasd GF/s" "torch GF/s" "% peak"
for t in $THREADS; do
  peak=$(cell sgemm - - $t 1024 6)
  for net in $nets; do
    if [ "$net" = reference-cnn ]; then fl=$REF_FLOPS; else fl=$(awk -v f="$fwd_flops" 'BEGIN { print 3 * f }'); fi
    for batch in $(awk -v n=$net -v t=$t '$2 == n && $3 == "train" && $4 == t { print $5 }' "$out/all.txt" | sort -un); do
      n=$(cell nasd $net train $t $batch 6)
      p=$(peer $net train $t $batch)
      awk -v t="$t" -v pk="$peak" -v net="$net" -v b="$batch" -v n="$n" -v p="$p" -v fl="$fl" 'BEGIN {
        g = fl * n / 1e9; printf "%-8s %12.1f %-14s %-6s %12.2f %12.2f %8.1f\n", t, pk, net, b, g, fl * p / 1e9, (pk > 0) ? 100 * g / pk : 0 }'
    done
  done
done

# The peer's CPU seconds per wall second while timing: it should match the
# thread count (a "1-thread" PyTorch that uses two cores is not 1 thread).
printf '\n%-8s %-14s %-6s %-6s %10s\n' threads net mode batch "torch cpu/wall"
for t in $THREADS; do
  awk -v t="$t" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (f["threads"] == t && f["cpu_per_wall"] != "") print f["net"], f["mode"], f["batch"], f["cpu_per_wall"] }' "$out/py.txt" |
    sort | awk -v t="$t" '{ k = $1 " " $2 " " $3; s[k] += $4; n[k]++ } END { for (k in s) { split(k, a, " "); printf "%-8s %-14s %-6s %-6s %10.2f\n", t, a[1], a[2], a[3], s[k] / n[k] } }' | sort
done
