#!/usr/bin/env bash
# Searched recurrent cells against the LSTM and against random cells, word
# level and (transfer) character level, on the fortunes corpus; issue 10 §4.
# For each seed: an ENAS search (shared weights) and a NAS-style rl search
# (every cell trained from scratch briefly) over enas-rnn, and a cell drawn
# uniformly from enas-rnn; then every cell and an LSTM of the same parameter
# count are trained with the same budget and schedule and scored on test.
#   bench/rnn-study.sh OUTDIR        (~40 min on 2 cores)
set -euo pipefail
out=${1:?usage: bench/rnn-study.sh OUTDIR}
seeds=${SEEDS:-"1 2 3"}
steps=${STEPS:-600}           # training windows of 20 streams × 35 steps per model
nasd=${NASD:-bin/nasd}
words=${WORDS:-bin/corpus/fortunes}
chars=${CHARS:-bin/corpus/fortunes-chars}
mkdir -p "$out"
[ -f "$chars/ptb.train.txt" ] || $nasd corpus -chars -o "$chars" -seed 1 -vocab 10000 -split 80,10,10 /usr/share/games/fortunes
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# The searches use both cores (2 workers).
for s in $seeds; do
  [ -f "$out/enas-$s/best.json" ] || $nasd search -config examples/rnn-enas-shared.toml -seed "$s" -run-dir "$out/enas-$s" >"$out/enas-$s.log" 2>&1
  [ -f "$out/nas-$s/best.json" ] || $nasd search -config examples/rnn-enas.toml -seed "$s" -run-dir "$out/nas-$s" >"$out/nas-$s.log" 2>&1
done
# Trainings: one core each, two at a time. The LSTM's hidden size gives it
# the parameter count of the enas-rnn cells' models (see the report).
jobs=()
for level in words chars; do
  # LSTM hidden units for the parameter count of an 8-node, 64-unit
  # enas-rnn model (embedding 64, untied decoder): 68 with the 10 000-word
  # vocabulary, 101 with the characters'.
  dir=$words lstm=68; [ $level = chars ] && dir=$chars lstm=101
  common="-data ptb -data-dir $dir -epochs 0 -steps $steps -clip 0.25 -state-clip 25 -test"
  for s in $seeds; do
    jobs+=("$level lstm $s $common -cell lstm -embed 64 -hidden $lstm -seed $s")
    jobs+=("$level enas $s $common -arch $out/enas-$s/best.json -seed $s")
    jobs+=("$level nas $s $common -arch $out/nas-$s/best.json -seed $s")
    jobs+=("$level random $s $common -space enas-rnn -sample -hidden 64 -embed 64 -seed $((s + 100))")
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} sh -c 'set -- {}; level=$1 model=$2 seed=$3; shift 3; f='"$out"'/train-$level-$model-$seed.json; [ -f $f ] || GOMAXPROCS=1 '"$nasd"' train "$@" -o $f >'"$out"'/train-$level-$model-$seed.log 2>&1'
python3 bench/rnn_study.py "$out" | tee "$out/report.md"
