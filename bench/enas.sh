#!/usr/bin/env bash
# ENAS shared-weight phase at WORKERS workers, under mpirun (-n P+1) and
# in process (-workers P): one epoch of STEPS steps on real Fashion-MNIST, a
# 6-layer, 16-channel enas-macro supernet, minibatch 64 a worker. The
# figures come from the run's enas_epoch event (docs/events.md). On a 2-core
# machine P+1 ranks above 2 are oversubscribed: they measure the protocol's
# cost, not a speedup.
set -euo pipefail
BIN=${BIN:-bin/nasd}
WORKERS=${WORKERS:-"1 2 4 8"}
MODES=${MODES:-"mpi inproc"}
STEPS=${STEPS:-30}
BATCH=${BATCH:-64}
LAYERS=${LAYERS:-6}
CHANNELS=${CHANNELS:-16}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_plm_rsh_agent= OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_odls_base_sigkill_timeout=0
command -v jq >/dev/null && command -v zstdcat >/dev/null || { echo "bench-enas: needs jq and zstd"; exit 2; }
if [[ " $MODES " == *" mpi "* ]] && ! { command -v mpirun >/dev/null && ${GO:-go} version -m "$BIN" | grep -q -- '-tags=.*mpi'; }; then
  echo "bench-enas: $BIN is not an MPI build or mpirun is missing: in-process only (make build-mpi, make deps)"
  MODES=${MODES// mpi/}; MODES=${MODES//mpi /}; MODES=${MODES/#mpi/}
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $LAYERS layers × $CHANNELS channels, batch $BATCH, $STEPS steps"
printf '%-7s %-6s %8s %9s %13s %12s %14s %10s %13s %10s\n' workers mode "steps/s" "images/s" "union floats" "union bkts" "bytes/step" "step ms" "allreduce ms" collective
for p in $WORKERS; do
  for mode in $MODES; do
    cat >"$work/c.toml" <<TOML
seed = 1
workers = $p
[data]
train_subset = $((STEPS * BATCH * p))
val_subset = $BATCH
[space]
name = "enas-macro"
layers = $LAYERS
channels = $CHANNELS
[strategy]
name = "enas"
[strategy.options]
epochs = 1
batch_size = $BATCH
controller_steps = 1
controller_batch = 1
derive_samples = 1
checkpoint_steps = 1000000
checksum_steps = 10
[trainer]
kind = "real"
TOML
    dir=$work/run-$p-$mode
    cmd=("$BIN" search -config "$work/c.toml" -run-dir "$dir")
    [ "$mode" = mpi ] && cmd=(mpirun -n $((p + 1)) --bind-to none "${cmd[@]}")
    timeout -k 10 900 "${cmd[@]}" >"$work/out" 2>&1 || { echo "$mode P=$p failed:"; tail -20 "$work/out"; exit 1; }
    zstdcat "$dir"/events-*.jsonl.zst | jq -r --argjson p "$p" --argjson b "$BATCH" --arg m "$mode" '
      select(.event == "enas_epoch") |
      [$p, $m, .train_steps / .train_s, .train_steps * $p * $b / .train_s, .union_floats, .union_buckets,
       .allreduce_bytes, 1000 * .step_s, 1000 * .allreduce_s, .allreduce_s / (.step_s + .allreduce_s)] |
      "\(.[0])|\(.[1])|\(.[2]*10|round/10)|\(.[3]|round)|\(.[4]|round)|\(.[5]*10|round/10)|\(.[6]|round)|\(.[7]*10|round/10)|\(.[8]*10|round/10)|\(.[9]*1000|round/10)%"' |
      awk -F'|' '{ printf "%-7s %-6s %8s %9s %13s %12s %14s %10s %13s %10s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
