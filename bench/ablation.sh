#!/usr/bin/env bash
# The effect of each optimisation of child training, one build per row, all in
# one run (so rows compare): training img/s at batch BATCH of the reference CNN
# and of the enas-macro child (bench/enas-child.json), THREADS threads, medians
# of COUNT repetitions of STEPS steps, and bytes allocated per step.
#   pure Go            TAGS=                      gonum gemm, Go loops
#   + OpenBLAS         TAGS=openblas,nockernels   OpenBLAS sgemm, Go loops
#   + oneDNN           TAGS=openblas,dnnl,nockernels
#   + C kernels        TAGS=openblas,dnnl         im2col, depthwise, pooling, BN in C
# and, on the last build, the executor against Gorgonia's TapeMachine
# (train.BenchmarkExecutor, batch 64). `bench/ablation.sh LOG` re-prints the
# table from a saved log (the script's stderr).
set -euo pipefail
GO=${GO:-go}
COUNT=${COUNT:-3}
STEPS=${STEPS:-20}
THREADS=${THREADS:-"1 2"}
BATCH=${BATCH:-64}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rows=("pure Go:" "+ OpenBLAS sgemm:openblas,nockernels" "+ oneDNN sgemm:openblas,dnnl,nockernels"
  "+ C kernels:openblas,dnnl")

if [ $# -eq 1 ]; then
  cp "$1" "$out/log.txt"
else
  for row in "${rows[@]}"; do
    tags=${row#*:}
    "$GO" test ${tags:+-tags "$tags"} -c -o "$out/$tags.test" ./train
  done
  for t in $THREADS; do
    for ((i = 0; i < COUNT; i++)); do
      for row in "${rows[@]}"; do
        tags=${row#*:}
        echo "== row ${row%%:*} | threads $t | repetition $((i + 1))" >&2
        (cd train && GOMAXPROCS=$t OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$out/$tags.test" -test.run '^$' \
          -test.bench "Train(ReferenceCNN|ENASChild)/batch=$BATCH\$" -test.benchtime "${STEPS}x") |
          sed "s/^Benchmark/row=${row%%:*}|threads=$t|Benchmark/" | tee -a "$out/log.txt" >&2
      done
      last=${rows[-1]#*:}
      echo "== executor | threads $t | repetition $((i + 1))" >&2
      (cd train && GOMAXPROCS=$t "$out/$last.test" -test.run '^$' -test.bench 'Executor' -test.benchtime "${STEPS}x") |
        sed "s/^Benchmark/row=executor|threads=$t|Benchmark/" | tee -a "$out/log.txt" >&2
    done
  done
fi

python3 - "$out/log.txt" <<'EOF'
import re, statistics, sys
cells = {}  # (row, threads, net) -> ([img/s], [B/step])
order = []
for line in open(sys.argv[1]):
    m = re.match(r'row=(.*?)\|threads=(\d+)\|Benchmark(\S+)\s+\d+\s+\d+ ns/op\s+([\d.]+) B/step\s+([\d.]+) img/s', line)
    if not m:
        continue
    row, threads, name, bstep, imgs = m.group(1), int(m.group(2)), m.group(3), float(m.group(4)), float(m.group(5))
    name = re.sub(r'-\d+$', '', name)
    if row == 'executor':
        net, ex = re.match(r'Executor/net=(.*)/exec=(.*)', name).groups()
        row, net = 'executor: ' + ('own program' if ex == 'program' else 'Gorgonia TapeMachine'), net
    else:
        net = 'reference-cnn' if 'ReferenceCNN' in name else 'enas-child'
    if row not in order:
        order.append(row)
    c = cells.setdefault((row, threads, net), ([], []))
    c[0].append(imgs); c[1].append(bstep)
threads = sorted({k[1] for k in cells})
def size(b):
    return f'{b/1e6:.2f} MB' if b >= 1e6 else f'{b/1e3:.1f} KB' if b >= 1e3 else f'{b:.0f} B'
hdr = ['change'] + [f'{net} img/s ({t} thr)' for net in ('reference-cnn', 'enas-child') for t in threads] + ['B/step (ref, child; 1 thr)']
print('| ' + ' | '.join(hdr) + ' |')
print('|' + '---|' * len(hdr))
prev = None
for row in order:
    out = [row]
    for net in ('reference-cnn', 'enas-child'):
        for t in threads:
            c = cells.get((row, t, net))
            if not c:
                out.append('—'); continue
            v = statistics.median(c[0])
            p = cells.get((prev, t, net)) if prev and not row.startswith('executor') else None
            out.append(f'{v:.0f}' + (f' (×{v/statistics.median(p[0]):.2f})' if p else ''))
    b = [cells.get((row, threads[0], net)) for net in ('reference-cnn', 'enas-child')]
    out.append(', '.join(size(statistics.median(c[1])) if c else '—' for c in b))
    print('| ' + ' | '.join(out) + ' |')
    prev = row
EOF
