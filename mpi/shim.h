// shim.h: the only code that touches MPI handle types and sentinels.
//
// Open MPI's handles are pointers and MPICH's are ints, and MPICH's
// MPI_STATUS_IGNORE is (MPI_Status*)1, which would crash Go's stack scan if Go
// held it. So Go sees only ints, doubles, byte buffers and opaque pointers to C
// memory (a request or a matched message lives in malloc'd storage); every
// communicator, datatype, op and sentinel is chosen here. The functions are
// static inline, so this header is the whole shim and needs no .c file (which
// the untagged, cgo-free build could not carry).
#ifndef NASD_MPI_SHIM_H
#define NASD_MPI_SHIM_H

#include <mpi.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sched.h>

// Go-side encodings (see api.go: AnySource, AnyTag, ThreadLevel).
enum { NASD_ANY = -1 };
enum { NASD_BYTE = 0, NASD_I64, NASD_F32, NASD_F64, NASD_U64 };

typedef struct { int source, tag, count; } nasd_status;

// Fault injection, for the tests (mpi.go's injectFault): while
// nasd_faults[f] > 0, the next call of step f fails with MPI_ERR_INTERN
// instead of calling MPI, so the error paths around it can be exercised. All
// zero, the default, costs one load per step. Set and read under the Go
// package's mutex, like every call here.
enum { NASD_FAULT_INIT, NASD_FAULT_IS_THREAD_MAIN, NASD_FAULT_GET_COUNT, NASD_FAULT_GET_ELEMENTS, NASD_FAULT_TEST, NASD_NFAULTS };
static int nasd_faults[NASD_NFAULTS];
static inline int nasd_fault(int f) {
	if (nasd_faults[f] <= 0) return 0;
	nasd_faults[f]--;
	return 1;
}
static inline void nasd_inject(int f, int n) { nasd_faults[f] = n; }

// nasd_live counts request and matched-message storage allocated and not yet
// freed, so the tests can see a leak.
static long nasd_live;
static inline long nasd_live_handles(void) { return nasd_live; }

static inline MPI_Datatype nasd_type(int t) {
	switch (t) {
	case NASD_BYTE: return MPI_BYTE;
	case NASD_I64: return MPI_INT64_T;
	case NASD_F32: return MPI_FLOAT;
	case NASD_F64: return MPI_DOUBLE;
	case NASD_U64: return MPI_UINT64_T;
	}
	return MPI_DATATYPE_NULL;
}
static inline int nasd_src(int s) { return s == NASD_ANY ? MPI_ANY_SOURCE : s; }
static inline int nasd_tag(int t) { return t == NASD_ANY ? MPI_ANY_TAG : t; }

static inline int nasd_level_to_mpi(int l) {
	switch (l) {
	case 0: return MPI_THREAD_SINGLE;
	case 1: return MPI_THREAD_FUNNELED;
	case 2: return MPI_THREAD_SERIALIZED;
	}
	return MPI_THREAD_MULTIPLE;
}
static inline int nasd_level_from_mpi(int l) {
	if (l == MPI_THREAD_SINGLE) return 0;
	if (l == MPI_THREAD_FUNNELED) return 1;
	if (l == MPI_THREAD_SERIALIZED) return 2;
	return 3;
}

// nasd_init initializes MPI, makes errors on COMM_WORLD come back as return
// codes, and reports rank, size and the largest tag. *inited says whether
// MPI_Init_thread succeeded, also when a later step fails: MPI may then not
// be initialized again.
static inline int nasd_init(int level, int *provided, int *rank, int *size, int *tag_ub, int *inited) {
	int p = 0, rc = MPI_Init_thread(NULL, NULL, nasd_level_to_mpi(level), &p);
	*inited = rc == MPI_SUCCESS;
	if (rc != MPI_SUCCESS) return rc;
	*provided = nasd_level_from_mpi(p);
	if (nasd_fault(NASD_FAULT_INIT)) return MPI_ERR_INTERN;
	if ((rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS) return rc;
	if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return rc;
	if ((rc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS) return rc;
	int *ub = NULL, flag = 0;
	rc = MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
	*tag_ub = (rc == MPI_SUCCESS && flag && ub) ? *ub : 32767;
	return MPI_SUCCESS;
}
static inline int nasd_finalize(void) { return MPI_Finalize(); }
static inline int nasd_is_thread_main(int *flag) {
	*flag = 0;
	if (nasd_fault(NASD_FAULT_IS_THREAD_MAIN)) return MPI_ERR_INTERN;
	return MPI_Is_thread_main(flag);
}
static inline double nasd_wtime(void) { return MPI_Wtime(); }
static inline void nasd_yield(void) { sched_yield(); }
// nasd_sleep sleeps this thread for ns nanoseconds (plus the kernel's timer
// slack, 50 µs by default): Go's own timers wake no sooner than ~1 ms on
// kernels without epoll_pwait2, too coarse for the back-off.
static inline void nasd_sleep(long ns) {
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
	nanosleep(&ts, NULL);
}
static inline int nasd_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

static inline void nasd_library_version(char *buf, int cap) {
	char v[MPI_MAX_LIBRARY_VERSION_STRING];
	int n = 0;
	buf[0] = 0;
	if (MPI_Get_library_version(v, &n) != MPI_SUCCESS) return;
	if (n >= cap) n = cap - 1;
	memcpy(buf, v, n);
	buf[n] = 0;
}

// Error text: the library's string for code, and the name of its class
// (MPICH's strings do not start with it, Open MPI's do).
static inline void nasd_error_string(int code, char *buf, int cap) {
	char s[MPI_MAX_ERROR_STRING];
	int n = 0;
	buf[0] = 0;
	if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) return;
	if (n >= cap) n = cap - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
}
#define NASD_CLASS(c) case c: return #c;
static inline const char *nasd_error_class(int code) {
	int c = MPI_ERR_UNKNOWN;
	if (MPI_Error_class(code, &c) != MPI_SUCCESS) return "MPI_ERR_UNKNOWN";
	switch (c) {
	NASD_CLASS(MPI_ERR_BUFFER) NASD_CLASS(MPI_ERR_COUNT) NASD_CLASS(MPI_ERR_TYPE)
	NASD_CLASS(MPI_ERR_TAG) NASD_CLASS(MPI_ERR_COMM) NASD_CLASS(MPI_ERR_RANK)
	NASD_CLASS(MPI_ERR_REQUEST) NASD_CLASS(MPI_ERR_ROOT) NASD_CLASS(MPI_ERR_GROUP)
	NASD_CLASS(MPI_ERR_OP) NASD_CLASS(MPI_ERR_TOPOLOGY) NASD_CLASS(MPI_ERR_DIMS)
	NASD_CLASS(MPI_ERR_ARG) NASD_CLASS(MPI_ERR_UNKNOWN) NASD_CLASS(MPI_ERR_TRUNCATE)
	NASD_CLASS(MPI_ERR_OTHER) NASD_CLASS(MPI_ERR_INTERN) NASD_CLASS(MPI_ERR_PENDING)
	NASD_CLASS(MPI_ERR_IN_STATUS) NASD_CLASS(MPI_ERR_NO_MEM) NASD_CLASS(MPI_ERR_SPAWN)
	NASD_CLASS(MPI_ERR_UNSUPPORTED_OPERATION)
	}
	return "MPI_ERR_UNKNOWN";
}
#undef NASD_CLASS

// Requests live in C memory (allocated by Go's C.malloc, which never returns
// NULL) so that Go never holds an MPI_Request value.
static inline size_t nasd_req_size(void) { return sizeof(MPI_Request); }
static inline void nasd_req_init(void *req) { *(MPI_Request *)req = MPI_REQUEST_NULL; nasd_live++; }
static inline void nasd_req_free(void *req) { free(req); nasd_live--; }
// nasd_req_null reports whether req holds no active request (never posted, or
// completed and freed by MPI, as MPI_Test does when it reports a request's
// own error).
static inline int nasd_req_null(void *req) { return *(MPI_Request *)req == MPI_REQUEST_NULL; }
static inline int nasd_test(void *req, int *flag) {
	*flag = 0;
	if (nasd_fault(NASD_FAULT_TEST)) return MPI_ERR_INTERN;
	return MPI_Test((MPI_Request *)req, flag, MPI_STATUS_IGNORE);
}

// Point to point.
static inline int nasd_isend(const void *buf, int n, int dest, int tag, void *req) {
	return MPI_Isend(buf, n, MPI_BYTE, dest, tag, MPI_COMM_WORLD, (MPI_Request *)req);
}
// nasd_discard receives a matched message whose byte count could not be read
// and drops it: into a buffer of its size when MPI_Get_elements_x, a second
// way to read the size, works; else into an empty buffer, which truncates it
// (an error that is expected here). Only MPI_Mrecv ends a matched message, so
// one that is not received stays pending for good. The truncating receive is
// the last resort: Open MPI 4.1's self transport crashes on a truncated
// message to oneself above about 1 KiB.
static inline void nasd_discard(MPI_Message *m, MPI_Status *st) {
	MPI_Count n = 0;
	void *buf = NULL;
	if (!nasd_fault(NASD_FAULT_GET_ELEMENTS) && MPI_Get_elements_x(st, MPI_BYTE, &n) == MPI_SUCCESS &&
	    n > 0 && n <= INT_MAX)
		buf = malloc((size_t)n);
	if (!buf) n = 0;
	(void)MPI_Mrecv(buf, (int)n, MPI_BYTE, m, MPI_STATUS_IGNORE);
	free(buf);
}
// nasd_improbe returns a malloc'd matched-message handle, or NULL when nothing
// matched or on error (see *rc). When a matched message's byte count cannot
// be read (or its handle cannot be stored), it is received and dropped
// (nasd_discard), *discarded is set and out holds its source and tag: neither
// the handle nor the message is left behind.
static inline void *nasd_improbe(int src, int tag, int *rc, nasd_status *out, int *discarded) {
	MPI_Message m = MPI_MESSAGE_NULL;
	MPI_Status st;
	int flag = 0;
	*discarded = 0;
	*rc = MPI_Improbe(nasd_src(src), nasd_tag(tag), MPI_COMM_WORLD, &flag, &m, &st);
	if (*rc != MPI_SUCCESS || !flag) return NULL;
	out->source = st.MPI_SOURCE;
	out->tag = st.MPI_TAG;
	out->count = 0;
	*rc = nasd_fault(NASD_FAULT_GET_COUNT) ? MPI_ERR_INTERN : MPI_Get_count(&st, MPI_BYTE, &out->count);
	MPI_Message *h = NULL;
	if (*rc == MPI_SUCCESS && !(h = (MPI_Message *)malloc(sizeof(MPI_Message)))) *rc = MPI_ERR_NO_MEM;
	if (*rc != MPI_SUCCESS) {
		nasd_discard(&m, &st);
		*discarded = 1;
		return NULL;
	}
	*h = m;
	nasd_live++;
	return h;
}
// nasd_mrecv receives a matched message and frees its handle storage.
static inline int nasd_mrecv(void *buf, int n, void *msg) {
	int rc = MPI_Mrecv(buf, n, MPI_BYTE, (MPI_Message *)msg, MPI_STATUS_IGNORE);
	free(msg);
	nasd_live--;
	return rc;
}

// Non-blocking collectives on COMM_WORLD. Buffers are C memory owned by the
// Go-side collective until its request completes.
static inline int nasd_ibarrier(void *req) {
	return MPI_Ibarrier(MPI_COMM_WORLD, (MPI_Request *)req);
}
static inline int nasd_ibcast(void *buf, int n, int t, int root, void *req) {
	return MPI_Ibcast(buf, n, nasd_type(t), root, MPI_COMM_WORLD, (MPI_Request *)req);
}
static inline int nasd_iallgather(const void *s, int n, int t, void *r, void *req) {
	return MPI_Iallgather(s, n, nasd_type(t), r, n, nasd_type(t), MPI_COMM_WORLD, (MPI_Request *)req);
}
static inline int nasd_iscatter(const void *s, int n, int t, void *r, int root, void *req) {
	return MPI_Iscatter(s, n, nasd_type(t), r, n, nasd_type(t), root, MPI_COMM_WORLD, (MPI_Request *)req);
}
static inline int nasd_iscatterv(const void *s, const int *counts, const int *displs, void *r, int n, int root, void *req) {
	return MPI_Iscatterv(s, counts, displs, MPI_BYTE, r, n, MPI_BYTE, root, MPI_COMM_WORLD, (MPI_Request *)req);
}
static inline int nasd_igatherv(const void *s, int n, void *r, const int *counts, const int *displs, int root, void *req) {
	return MPI_Igatherv(s, n, MPI_BYTE, r, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD, (MPI_Request *)req);
}
// In place: buf holds this rank's values and receives the sums.
static inline int nasd_iallreduce_sum(void *buf, int n, int t, void *req) {
	return MPI_Iallreduce(MPI_IN_PLACE, buf, n, nasd_type(t), MPI_SUM, MPI_COMM_WORLD, (MPI_Request *)req);
}

// In place, bitwise OR: exact in any order, so MPI's algorithm cannot change it.
static inline int nasd_iallreduce_bor(void *buf, int n, int t, void *req) {
	return MPI_Iallreduce(MPI_IN_PLACE, buf, n, nasd_type(t), MPI_BOR, MPI_COMM_WORLD, (MPI_Request *)req);
}
// Block j of s (n elements) goes to rank j; block i of r comes from rank i.
static inline int nasd_ialltoall(const void *s, int n, int t, void *r, void *req) {
	return MPI_Ialltoall(s, n, nasd_type(t), r, n, nasd_type(t), MPI_COMM_WORLD, (MPI_Request *)req);
}

#endif
