#!/usr/bin/env bash
# LSTM language model training throughput: nasd (train.BenchmarkTrainLSTMLM) and
# PyTorch (bench/pytorch_lstm.py, the word_language_model loop with nn.LSTM) on the
# same PTB-layout text and sizes (vocabulary 10 000, embedding = hidden = 200,
# 20 streams × 35 steps), interleaved per thread count, medians of COUNT runs.
# Thread pools pinned on both sides: GOMAXPROCS, OPENBLAS_NUM_THREADS and
# OMP_NUM_THREADS = the thread count (nasd's LM runs its GEMMs in the BLAS).
set -euo pipefail
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
COUNT=${COUNT:-3}
WINDOWS=${WINDOWS:-40}
THREADS=${THREADS:-"1 2"}
tags=()
[ -n "${TAGS:-}" ] && tags=(-tags "$TAGS")
. "$(dirname "$0")/peer-env.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$GO" run "${tags[@]}" ./cmd/nasd corpus -o "$out/text" /usr/share/games/fortunes >/dev/null
"$GO" test "${tags[@]}" -c -o "$out/train.test" ./train
for t in $THREADS; do
  for ((i = 0; i < COUNT; i++)); do
    (cd train && NASD_LM_DATA="$out/text" GOMAXPROCS=$t OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t \
      "$out/train.test" -test.run '^$' -test.bench 'TrainLSTMLM' -test.benchtime "${WINDOWS}x") |
      awk -v t="$t" '/^BenchmarkTrainLSTMLM/ { for (i = 1; i < NF; i++) if ($(i+1) == "tokens/s") print "nasd-lstm threads=" t " tokens_per_s=" $i }' |
      tee -a "$out/go.txt" >&2
    for alloc in $PEER_ALLOCS; do
      peer_run "$alloc" "$t" "$PYTHON" bench/pytorch_lstm.py --data "$out/text" --threads "$t" --windows "$WINDOWS" |
        sed "s/\$/ alloc=$alloc/" | tee -a "$out/py.txt" >&2
    done
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| threads | nasd tokens/s | PyTorch tokens/s | nasd / PyTorch |"
echo "|---|---|---|---|"
for t in $THREADS; do
  g=$(sed -n "s/^nasd-lstm threads=$t tokens_per_s=\([0-9.]*\).*/\1/p" "$out/go.txt" | median)
  # The peer's best allocator (median per allocator, then the larger).
  p=0
  for alloc in $PEER_ALLOCS; do
    v=$(grep " alloc=$alloc\$" "$out/py.txt" | sed -n "s/^pytorch-lstm threads=$t .*tokens_per_s=\([0-9.]*\).*/\1/p" | median)
    p=$(awk -v a="$p" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
  done
  awk -v t="$t" -v g="$g" -v p="$p" 'BEGIN { printf "| %s | %.0f | %.0f | %.2f |\n", t, g, p, g / p }'
done
