#!/usr/bin/env bash
# Time to accuracy (issue 13 §3): the reference CNN (`nasd train -net
# reference-cnn`) and the enas-macro child (bench/enas-child.json; PyTorch
# builds it from bench/enas-child.graph.json) trained by `nasd train` and by
# PyTorch (bench/pytorch_tta.py, started by peer_run of bench/peer-env.sh) with
# the same schedule on the same images, in one run; after every epoch each side
# records its training clock and the test accuracy, and the tables give the
# clock at which each reached each target.
#
# Data: all 60,000 Fashion-MNIST training images (no validation hold-out:
# nasd train -val-size -1), test accuracy on the 10,000 test images after
# every epoch. Schedule (both sides): batch BATCH, SGD momentum 0.9 without
# Nesterov, learning rate LR with SCHEDULE (cosine over EPOCHS, per step, or
# constant), weight decay WD, no augmentation, no dropout, EPOCHS epochs; a new
# random order every epoch on each side (different generators). nasd's init
# scheme on both sides (bench/pytorch_tta.py --init nasd), different draws.
# The clock: wall time from network construction and initialisation to the end
# of the epoch's last step, evaluations (validation, test) excluded; data
# loading is before it (nasd: epochs[].train_clock of `nasd train -o`).
#
# Knobs: THREADS (default 2; nasd GOMAXPROCS, PyTorch every pool), NETS,
# EPOCHS (15), BATCH (64), LR (0.02), SCHEDULE (cosine), WD (0), TARGETS
# ("0.90 0.92"), SEED (1), PEER_ALLOC (tcmalloc; one allocator, see
# bench/peer-env.sh), SIDES ("nasd pytorch"; one of them for a seed sweep of
# one side), TAGS (nasd's build tags), SUBSET / TEST_SUBSET (smoke runs
# only: nasd draws a random subset, PyTorch takes the first N, so the sides then
# see different images). Expected duration on an idle 2-core VM at the
# defaults: ~50 min (per net and side 15 epochs of 60,000 images at the
# training rates of docs/performance.md: ~9–12 min each for the reference CNN,
# ~11 min for nasd's enas child and ~15–25 min for PyTorch's); THREADS="1 2"
# about 2 h.
# `bench/tta.sh LOG` re-prints the tables from a saved log of a run (its stderr).
set -euo pipefail
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
NETS=${NETS:-"reference-cnn enas-child"}
EPOCHS=${EPOCHS:-15}
BATCH=${BATCH:-64}
LR=${LR:-0.02}
SCHEDULE=${SCHEDULE:-cosine}
WD=${WD:-0}
TARGETS=${TARGETS:-"0.90 0.92"}
SEED=${SEED:-1}
SIDES=${SIDES:-"nasd pytorch"}
PEER_ALLOC=${PEER_ALLOC:-tcmalloc}
SUBSET=${SUBSET:-0}
TEST_SUBSET=${TEST_SUBSET:-0}
ARCH=${ARCH:-bench/enas-child.json}
GRAPH=${GRAPH:-bench/enas-child.graph.json}
tags=()
[ -n "${TAGS:-}" ] && tags=(-tags "$TAGS")
. "$(dirname "$0")/peer-env.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ $# -eq 1 ]; then
  grep '^tta ' "$1" >"$out/tta.txt" || true
else
  "$GO" run ./bench/lower -arch "$ARCH" -o "$out/graph.json"
  cmp -s "$out/graph.json" "$GRAPH" || { echo "tta.sh: $GRAPH is stale: go run ./bench/lower -arch $ARCH -o $GRAPH" >&2; exit 1; }
  "$GO" build "${tags[@]}" -o "$out/nasd" ./cmd/nasd
  echo "gemm backend: $("$out/nasd" version 2>/dev/null | tr '\n' ' ')" >&2
  echo "tta-setup epochs=$EPOCHS batch=$BATCH lr=$LR schedule=$SCHEDULE wd=$WD seed=$SEED subset=$SUBSET test_subset=$TEST_SUBSET alloc=$PEER_ALLOC" >&2
  for t in $THREADS; do
    for net in $NETS; do
      case $net in
      reference-cnn) which=(-net reference-cnn) ;;
      enas-child) which=(-arch "$ARCH") ;;
      *) echo "tta.sh: unknown net $net (reference-cnn, enas-child)" >&2; exit 1 ;;
      esac
      if [[ " $SIDES " == *" nasd "* ]]; then
        echo "== $net, threads $t: nasd" >&2
        GOMAXPROCS=$t OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$out/nasd" train "${which[@]}" -seed "$SEED" \
          -val-size -1 -subset "$SUBSET" -test-subset "$TEST_SUBSET" -test-every-epoch \
          -epochs "$EPOCHS" -batch "$BATCH" -optimizer sgd -lr "$LR" -momentum 0.9 -nesterov=false \
          -weight-decay "$WD" -schedule "$SCHEDULE" -o "$out/nasd.json" >&2
        "$PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))["result"]
for e in r["epochs"]:
    print("tta side=nasd net=%s threads=%s epoch=%d clock=%.2f test_acc=%.4f train_loss=%.4f" %
          (sys.argv[2], sys.argv[3], e["epoch"], e["train_clock"], e["test_acc"], e["train_loss"]))
' "$out/nasd.json" "$net" "$t" | tee -a "$out/tta.txt" >&2
      fi
      [[ " $SIDES " == *" pytorch "* ]] || continue
      echo "== $net, threads $t: pytorch ($PEER_ALLOC)" >&2
      peer_run "$PEER_ALLOC" "$t" "$PYTHON" bench/pytorch_tta.py --net "$net" --graph "$GRAPH" --threads "$t" \
        --seed "$SEED" --subset "$SUBSET" --test-subset "$TEST_SUBSET" --epochs "$EPOCHS" --batch "$BATCH" \
        --lr "$LR" --momentum 0.9 --weight-decay "$WD" --schedule "$SCHEDULE" | tee -a "$out/tta.txt" >&2
    done
  done
fi

# One row per net, threads and side: the clock at the first epoch whose test
# accuracy reached each target, the final accuracy, the epochs run; then the
# ratio PyTorch clock ÷ nasd clock per target (> 1: nasd got there first).
awk -v targets="$TARGETS" '
  { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    k = f["net"] SUBSEP f["threads"] SUBSEP f["side"]
    if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
    n = split(targets, tg, " ")
    for (j = 1; j <= n; j++) if (!((k, j) in hit) && f["test_acc"] + 0 >= tg[j] + 0) hit[k, j] = f["clock"]
    last[k] = f["test_acc"]; ep[k] = f["epoch"] }
  END {
    n = split(targets, tg, " ")
    printf "\n%-14s %-8s %-8s", "net", "threads", "side"
    for (j = 1; j <= n; j++) printf " %14s", "s to " tg[j] * 100 "%"
    printf " %10s %7s\n", "final acc", "epochs"
    for (i = 1; i <= nk; i++) {
      split(keys[i], p, SUBSEP)
      printf "%-14s %-8s %-8s", p[1], p[2], p[3]
      for (j = 1; j <= n; j++) if ((keys[i], j) in hit) printf " %14.1f", hit[keys[i], j]; else printf " %14s", "not reached"
      printf " %10.4f %7d\n", last[keys[i]], ep[keys[i]]
    }
    printf "\n%-14s %-8s", "net", "threads"
    for (j = 1; j <= n; j++) printf " %16s", "torch÷nasd " tg[j] * 100 "%"
    printf "\n"
    for (i = 1; i <= nk; i++) {
      split(keys[i], p, SUBSEP)
      if (p[3] != "nasd") continue
      q = p[1] SUBSEP p[2] SUBSEP "pytorch"
      printf "%-14s %-8s", p[1], p[2]
      for (j = 1; j <= n; j++) {
        if (((keys[i], j) in hit) && ((q, j) in hit)) printf " %16.2f", hit[q, j] / hit[keys[i], j]
        else if ((keys[i], j) in hit) printf " %16s", "nasd only"
        else if ((q, j) in hit) printf " %16s", "pytorch only"
        else printf " %16s", "neither"
      }
      printf "\n"
    }
  }' "$out/tta.txt"
