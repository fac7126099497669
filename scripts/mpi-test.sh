#!/usr/bin/env bash
# mpi-test.sh: build nasd's MPI test binaries (packages mpi and cluster, build
# tag mpi) and run them under mpirun with 2, 4 and 8 ranks, as one-rank
# singletons, with one rank made to fail (the run must fail), and against
# MPICH when it is installed; once more under the race detector. Prints a
# summary; exits non-zero on any failure.
#
#   scripts/mpi-test.sh            # tests
#   scripts/mpi-test.sh -bench     # and the benchmarks (round trip, Gatherv, ENAS collectives)
#
# Environment: GO (default go), MPI_TEST_TIMEOUT (seconds per launch, default
# 120), KEEP=1 keeps the logs. Pitfalls followed (shared/reference/mpi/NOTES.md):
# every launch is wrapped in `timeout -k 10`, Open MPI gets --bind-to none (it
# binds each of ≤ 2 ranks to one core, GOMAXPROCS=1) and the environment below.
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 2
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
LIMIT=${MPI_TEST_TIMEOUT:-120}
BENCH=0
for a in "$@"; do
	case $a in
	-bench | --bench) BENCH=1 ;;
	*) echo "usage: $0 [-bench]" >&2; exit 2 ;;
	esac
done

# Environment for tests (NOTES.md): root is allowed, ranks may outnumber
# cores, no ssh, no CMA single copy in containers, peers die at once when one
# fails, and mpirun gives up after 300 s whatever happens.
if [ "$(id -u)" = 0 ]; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_plm_rsh_agent= \
	OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_odls_base_sigkill_timeout=0 \
	MPIEXEC_TIMEOUT=300

OMPIRUN=$(command -v mpirun.openmpi || command -v mpirun || true)
MPICHRUN=$(command -v mpirun.mpich || true)
if [ -z "$OMPIRUN" ]; then
	echo "mpi-test: no mpirun: install Open MPI (sudo apt-get install openmpi-bin libopenmpi-dev pkgconf)" >&2
	exit 2
fi

TMP=$(mktemp -d /tmp/nasd-mpi-test.XXXXXX)
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$TMP"' EXIT; fi
SUMMARY=()
FAILED=0

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# record NAME STATUS SECONDS [LOG]: one summary line; a failure shows its log's tail.
record() {
	SUMMARY+=("$(printf '%-52s %-5s %6ss' "$1" "$2" "$3")")
	if [ "$2" != PASS ]; then
		FAILED=$((FAILED + 1))
		if [ -n "${4:-}" ] && [ -f "$4" ]; then
			echo "---- $1: last lines of $4"
			tail -n 40 "$4"
			echo "----"
		fi
	fi
	printf '%-52s %-5s %6ss\n' "$1" "$2" "$3"
}

# build NAME TAGS PKG OUT [FLAGS...]: compile a test binary.
build() {
	local name=$1 tags=$2 pkg=$3 out=$4 t0 log=$TMP/build-$1.log
	shift 4
	t0=$(now)
	if $GO test -c "$@" -tags "$tags" -o "$out" "$pkg" >"$log" 2>&1; then
		record "build $name (-tags $tags)" PASS "$(secs "$t0" "$(now)")"
	else
		record "build $name (-tags $tags)" FAIL "$(secs "$t0" "$(now)")" "$log"
		return 1
	fi
}

# run NAME EXPECT CMD...: run a launch under timeout -k; EXPECT is pass or fail.
run() {
	local name=$1 expect=$2 t0 rc log
	shift 2
	log=$TMP/run-$(echo "$name" | tr -c 'a-zA-Z0-9=_-' '_').log
	t0=$(now)
	timeout -k 10 "$LIMIT" "$@" >"$log" 2>&1
	rc=$?
	local el
	el=$(secs "$t0" "$(now)")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		record "$name" HUNG "$el" "$log"
	elif [ "$expect" = pass ] && [ "$rc" = 0 ]; then
		record "$name" PASS "$el"
	elif [ "$expect" = fail ] && [ "$rc" != 0 ]; then
		record "$name (must fail)" PASS "$el"
	else
		record "$name" FAIL "$el" "$log"
	fi
	LAST_LOG=$log
}

# The Go checks of the untagged build run in `go test ./...`; here only MPI.
B=$TMP/bin
mkdir -p "$B"
echo "== Open MPI ($($OMPIRUN --version 2>/dev/null | head -n 1))"
if build ompi-mpi "mpi" ./mpi "$B/mpi.test" && build ompi-cluster "mpi" ./cluster "$B/cluster.test"; then
	TESTFLAGS=(-test.timeout "$((LIMIT - 15))s")
	run "ompi singleton mpi" pass "$B/mpi.test" "${TESTFLAGS[@]}"
	run "ompi singleton cluster" pass "$B/cluster.test" -test.run '^TestMPI' "${TESTFLAGS[@]}"
	for n in 2 4 8; do
		extra=()
		[ "$n" -gt 2 ] && extra=(--oversubscribe)
		run "ompi mpirun -n $n mpi" pass "$OMPIRUN" -n "$n" --bind-to none "${extra[@]}" "$B/mpi.test" "${TESTFLAGS[@]}"
		run "ompi mpirun -n $n cluster" pass "$OMPIRUN" -n "$n" --bind-to none "${extra[@]}" \
			"$B/cluster.test" -test.run '^TestMPI' "${TESTFLAGS[@]}"
	done
	# Without bells (a cluster whose workers cannot reach rank 0 over TCP): waits sleep-poll.
	run "ompi mpirun -n 4 cluster, NASD_BELLS=off" pass "$OMPIRUN" -n 4 --bind-to none --oversubscribe \
		-x NASD_BELLS=off "$B/cluster.test" -test.run '^TestMPI' "${TESTFLAGS[@]}"
	# The wrapper-compiler route: no cgo flags, the wrapper supplies them.
	if command -v mpicc.openmpi >/dev/null; then
		CC=mpicc.openmpi build "ompi-mpi via CC=mpicc.openmpi" "mpi mpicc" ./mpi "$B/mpi-cc.test" &&
			run "ompi mpirun -n 2 mpi (mpicc build)" pass "$OMPIRUN" -n 2 --bind-to none "$B/mpi-cc.test" "${TESTFLAGS[@]}"
	fi
	# The race detector over the package's locking (goroutines share MPI in the tests).
	if build "ompi-mpi, race detector" "mpi" ./mpi "$B/mpi-race.test" -race; then
		run "ompi mpirun -n 4 mpi -race" pass "$OMPIRUN" -n 4 --bind-to none "$B/mpi-race.test" "${TESTFLAGS[@]}"
	fi
	# One failing rank must fail the whole run.
	run "ompi mpirun -n 4 rank 2 fails" fail env NASD_MPI_TEST_FAIL_RANK=2 "$OMPIRUN" -n 4 --bind-to none \
		-x NASD_MPI_TEST_FAIL_RANK "$B/mpi.test" -test.run 'TestInjectedFailure' "${TESTFLAGS[@]}"
	if [ "$BENCH" = 1 ]; then
		for n in 2 4 8; do
			what=.
			[ "$n" -gt 2 ] && what=Gatherv
			out=$TMP/bench-ompi-$n
			run "ompi bench -n $n" pass "$OMPIRUN" -n "$n" --bind-to none --output-filename "$out" "$B/mpi.test" \
				-test.run '^$' -test.bench "$what" -test.benchtime 2000x
			grep -h '^Benchmark' "$out"/1/rank.0/stdout | sed "s/^/    n=$n  /"
		done
		# The ENAS collectives through the transport (docs/performance.md).
		for n in 2 4; do
			out=$TMP/bench-coll-$n
			run "ompi bench collectives -n $n" pass "$OMPIRUN" -n "$n" --bind-to none --output-filename "$out" \
				"$B/cluster.test" -test.run '^$' -test.bench MPICollectives -test.benchtime 20x
			grep -h '^Benchmark' "$out"/1/rank.0/stdout | sed "s/^/    n=$n  /"
		done
	fi
fi

if pkg-config --exists mpich 2>/dev/null; then
	echo "== MPICH $(pkg-config --modversion mpich)"
	if build mpich-mpi "mpi mpich" ./mpi "$B/mpi-mpich.test" &&
		build mpich-cluster "mpi mpich" ./cluster "$B/cluster-mpich.test"; then
		if [ -n "$MPICHRUN" ]; then
			run "mpich singleton mpi" pass "$B/mpi-mpich.test" -test.timeout "$((LIMIT - 15))s"
			run "mpich singleton cluster" pass "$B/cluster-mpich.test" -test.run '^TestMPI' -test.timeout "$((LIMIT - 15))s"
			run "mpich mpirun -n 2 mpi" pass "$MPICHRUN" -n 2 "$B/mpi-mpich.test" -test.timeout "$((LIMIT - 15))s"
			run "mpich mpirun -n 2 cluster" pass "$MPICHRUN" -n 2 "$B/cluster-mpich.test" -test.run '^TestMPI' \
				-test.timeout "$((LIMIT - 15))s"
			# Pitfall 7: a binary under the other library's launcher must fail loudly.
			run "ompi binary under mpirun.mpich" fail "$MPICHRUN" -n 2 "$B/mpi.test" -test.run '^TestInitState$'
			if ! grep -q 'the launcher started 2 ranks' "$LAST_LOG"; then
				record "  ... says why (launcher mismatch)" FAIL 0 "$LAST_LOG"
			fi
			if [ "$BENCH" = 1 ]; then
				run "mpich bench -n 2" pass "$MPICHRUN" -n 2 -outfile-pattern "$TMP/bench-mpich.%r" "$B/mpi-mpich.test" \
					-test.run '^$' -test.bench . -test.benchtime 2000x
				grep -h '^Benchmark' "$TMP/bench-mpich.0" | sed 's/^/    n=2  /'
			fi
		else
			echo "mpi-test: mpirun.mpich not installed: MPICH build checked, not run"
		fi
	fi
else
	echo "== MPICH: not installed (sudo apt-get install libmpich-dev mpich); skipped"
fi

echo
echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
if [ "$FAILED" -gt 0 ]; then
	echo "mpi-test: $FAILED check(s) FAILED"
	exit 1
fi
echo "mpi-test: all ${#SUMMARY[@]} checks passed"
