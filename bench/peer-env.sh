# Sourced by the bench scripts: how the PyTorch peer is started.
#
# peer_run ALLOC THREADS CMD...: runs CMD with every thread pool pinned to
# THREADS (torch.set_num_threads alone leaves Debian's OpenBLAS on a second
# core) and the memory allocator ALLOC:
#   tcmalloc  LD_PRELOAD of gperftools' tcmalloc (libtcmalloc-minimal4), as
#             PyTorch's CPU performance tuning guide recommends;
#   glibc     glibc's malloc told to keep freed memory (no mmap per tensor,
#             no trim), the same effect without a library;
#   default   glibc as it comes. Each large tensor is then mmap'd and
#             munmap'd every step, so the step pays fresh page faults for its
#             activations: 230 k faults in 60 steps and a third of the rate
#             on the project's VMs (docs/performance.md).
# PEER_ALLOCS (default "tcmalloc glibc") lists the allocators a run tries;
# the tables take the peer's best.
PEER_ALLOCS=${PEER_ALLOCS:-"tcmalloc glibc"}
peer_run() {
  local alloc=$1 t=$2
  shift 2
  local env=(OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" MKL_NUM_THREADS="$t" NASD_PEER_ALLOC="$alloc")
  case $alloc in
  tcmalloc)
    local lib="" f
    for f in /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4; do [ -e "$f" ] && lib=$f && break; done
    [ -n "$lib" ] || { echo "peer-env: tcmalloc missing: apt-get install libtcmalloc-minimal4 (or PEER_ALLOCS=glibc)" >&2; return 1; }
    env+=(LD_PRELOAD="$lib") ;;
  glibc) env+=(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736) ;;
  default) ;;
  *) echo "peer-env: unknown allocator $alloc (tcmalloc, glibc, default)" >&2; return 1 ;;
  esac
  env "${env[@]}" "$@"
}
