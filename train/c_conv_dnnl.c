//go:build dnnl && cgo

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_conv_dnnl.h"

void omp_set_num_threads(int);

static dnnl_engine_t engine;
static dnnl_primitive_attr_t user_pad;      // primitives' scratchpads in nasd's scratch
static dnnl_primitive_attr_t user_pad_relu; // the same, and a ReLU post-op (conv + ReLU)
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void engine_init(void) {
	if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
	if (dnnl_primitive_attr_create(&user_pad) != dnnl_success ||
	    dnnl_primitive_attr_set_scratchpad_mode(user_pad, dnnl_scratchpad_mode_user) != dnnl_success)
		engine = NULL;
	dnnl_post_ops_t relu = NULL;
	if (dnnl_primitive_attr_create(&user_pad_relu) != dnnl_success ||
	    dnnl_primitive_attr_set_scratchpad_mode(user_pad_relu, dnnl_scratchpad_mode_user) != dnnl_success ||
	    dnnl_post_ops_create(&relu) != dnnl_success ||
	    dnnl_post_ops_append_eltwise(relu, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) != dnnl_success ||
	    dnnl_primitive_attr_set_post_ops(user_pad_relu, relu) != dnnl_success)
		engine = NULL;
	if (relu) dnnl_post_ops_destroy(relu); // the attribute keeps its own copy
}

// A tensor as nasd holds it (user) and as a primitive wants it (op); when the
// two differ, a reorder and a buffer of the op's layout stand between them.
typedef struct {
	dnnl_memory_t user, op;
	dnnl_primitive_t reorder; // user→op for inputs, op→user for outputs; NULL when the layouts agree
	size_t size;              // bytes of the op's layout, in the caller's scratch (0 when the layouts agree)
	int direct;               // the caller's tensor is in the op's layout (nasd_conv_link): no reorder
} port;

typedef struct {
	dnnl_primitive_t prim;
	dnnl_memory_t pad; // the primitive's scratchpad, in the caller's scratch; NULL when it needs none
	size_t pad_size;
	port p[3];
	int arg[3];
	int out; // index of the output port
	int nports;
} pass;

struct nasd_conv {
	dnnl_stream_t stream;
	pass fwd, bwd_w, bwd_x;
	dnnl_memory_t bias;
	int has_bias, has_dx;
};

static void port_free(port *p) {
	if (p->reorder) dnnl_primitive_destroy(p->reorder);
	if (p->user) dnnl_memory_destroy(p->user);
	if (p->op && p->op != p->user) dnnl_memory_destroy(p->op);
	memset(p, 0, sizeof *p);
}

static void pass_free(pass *ps) {
	if (ps->prim) dnnl_primitive_destroy(ps->prim);
	if (ps->pad) dnnl_memory_destroy(ps->pad);
	for (int i = 0; i < ps->nports; i++) port_free(&ps->p[i]);
	memset(ps, 0, sizeof *ps);
}

// port_init makes the memories of a tensor with user layout user_md and the
// primitive's layout op_md; output ports reorder op→user, input ports user→op.
static int port_init(port *p, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *op_md, int output) {
	if (dnnl_memory_create(&p->user, user_md, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
	if (dnnl_memory_desc_equal(user_md, op_md)) {
		p->op = p->user;
		return 0;
	}
	p->size = (dnnl_memory_desc_get_size(op_md) + 63) / 64 * 64;
	if (dnnl_memory_create(&p->op, op_md, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
	dnnl_primitive_desc_t rpd;
	dnnl_status_t st = output ? dnnl_reorder_primitive_desc_create(&rpd, op_md, engine, user_md, engine, NULL)
	                          : dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, op_md, engine, NULL);
	if (st != dnnl_success) return -1;
	st = dnnl_primitive_create(&p->reorder, rpd);
	dnnl_primitive_desc_destroy(rpd);
	return st == dnnl_success ? 0 : -1;
}

static int reorder(dnnl_stream_t s, port *p, int output) {
	if (!p->reorder) return 0;
	dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, output ? p->op : p->user}, {DNNL_ARG_TO, output ? p->user : p->op}};
	return dnnl_primitive_execute(p->reorder, s, 2, a) == dnnl_success ? 0 : -1;
}

enum { scratch_align = 64 };

// pass_scratch is the scratch a pass needs: slack to align its start
// (pass_run), the primitive's scratchpad and its ports' blocked copies.
static size_t pass_scratch(const pass *ps) {
	size_t n = scratch_align + ps->pad_size;
	for (int i = 0; i < ps->nports; i++) n += ps->p[i].size;
	return n;
}

// pass_run binds the user pointers and the scratch, reorders the inputs in,
// runs the primitive, reorders the output out, and unbinds (C keeps no Go
// pointer).
static int pass_run(nasd_conv *cv, pass *ps, void *const ptr[3], dnnl_memory_t bias, const float *b, char *scratch) {
	omp_set_num_threads(1);
	// Blocked copies start on a cache line: oneDNN's kernels round
	// differently by the alignment of their buffers, and the caller's
	// scratch has none it can promise (results would depend on addresses).
	scratch = (char *)(((uintptr_t)scratch + scratch_align - 1) & ~(uintptr_t)(scratch_align - 1));
	int rc = 0;
	for (int i = 0; i < ps->nports; i++) {
		dnnl_memory_set_data_handle(ps->p[i].user, ptr[i]);
		if (ps->p[i].reorder) {
			dnnl_memory_set_data_handle(ps->p[i].op, ps->p[i].direct ? ptr[i] : (void *)scratch);
			scratch += ps->p[i].size;
		}
	}
	if (ps->pad) dnnl_memory_set_data_handle(ps->pad, scratch);
	for (int i = 0; i < ps->nports && rc == 0; i++)
		if (i != ps->out && !ps->p[i].direct) rc = reorder(cv->stream, &ps->p[i], 0);
	if (rc == 0) {
		dnnl_exec_arg_t a[5];
		int n = 0;
		for (int i = 0; i < ps->nports; i++) a[n++] = (dnnl_exec_arg_t){ps->arg[i], ps->p[i].op};
		if (ps->pad) a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, ps->pad};
		if (bias) {
			dnnl_memory_set_data_handle(bias, (void *)b);
			a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bias};
		}
		rc = dnnl_primitive_execute(ps->prim, cv->stream, n, a) == dnnl_success ? 0 : -1;
	}
	if (rc == 0 && !ps->p[ps->out].direct) rc = reorder(cv->stream, &ps->p[ps->out], 1);
	if (rc == 0) rc = dnnl_stream_wait(cv->stream) == dnnl_success ? 0 : -1;
	for (int i = 0; i < ps->nports; i++) {
		dnnl_memory_set_data_handle(ps->p[i].user, NULL);
		if (ps->p[i].reorder) dnnl_memory_set_data_handle(ps->p[i].op, NULL);
	}
	if (bias) dnnl_memory_set_data_handle(bias, NULL);
	if (ps->pad) dnnl_memory_set_data_handle(ps->pad, NULL);
	return rc;
}

// make_prim creates the primitive of pd when it is one of oneDNN's JIT
// direct convolutions. Shapes that get its im2col + GEMM or reference
// implementations (kernels larger than the image) stay on nasd's own path,
// which is as fast there; and oneDNN 2.6's GEMM-based backward-weights
// convolution crashed on such shapes.
static int make_prim(pass *ps, dnnl_primitive_desc_t pd) {
	const char *name = NULL;
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name ||
	    strncmp(name, "jit", 3) != 0)
		return -1;
	return dnnl_primitive_create(&ps->prim, pd) == dnnl_success ? 0 : -1;
}

// pass_init sets up a pass of three ports, the last its output: arg, the
// tensors' user layouts and the queries of pd's layouts for them, in order.
static int pass_init(pass *ps, dnnl_primitive_desc_t pd, const int arg[3], const dnnl_memory_desc_t *const user[3],
                     const dnnl_query_t query[3]) {
	ps->nports = 3, ps->out = 2;
	for (int i = 0; i < 3; i++) {
		ps->arg[i] = arg[i];
		if (port_init(&ps->p[i], user[i], dnnl_primitive_desc_query_md(pd, query[i], 0), i == 2)) return -1;
	}
	const dnnl_memory_desc_t *pad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	ps->pad_size = pad ? (dnnl_memory_desc_get_size(pad) + 63) / 64 * 64 : 0;
	if (ps->pad_size && dnnl_memory_create(&ps->pad, pad, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
	return make_prim(ps, pd);
}

nasd_conv *nasd_conv_new(int mb, int c, int h, int w, int o, int kh, int kw, int stride, int ph, int pw, int bias,
                         int need_dx, int relu, char *impl, int impl_len) {
	// oneDNN fits a primitive's blocking and reduction split to the thread
	// count at creation: the same count as at run time (pass_run), whatever
	// OS thread this call lands on, or results depend on which made it.
	omp_set_num_threads(1);
	pthread_once(&engine_once, engine_init);
	if (!engine) {
		snprintf(impl, impl_len, "no CPU engine");
		return NULL;
	}
	int ho = (h + 2 * ph - kh) / stride + 1, wo = (w + 2 * pw - kw) / stride + 1;
	dnnl_dims_t xd = {mb, c, h, w}, wd = {o, c, kh, kw}, yd = {mb, o, ho, wo}, bd = {o};
	dnnl_dims_t st = {stride, stride}, pl = {ph, pw};
	// Right padding: what makes the output exactly ho×wo (nasd pads (K−1)/2 on each side).
	dnnl_dims_t pr = {(ho - 1) * stride + kh - h - ph, (wo - 1) * stride + kw - w - pw};
	dnnl_memory_desc_t x_user, w_user, y_user, b_md, x_any, w_any, y_any;
	dnnl_memory_desc_init_by_tag(&x_user, 4, xd, dnnl_f32, dnnl_nchw);
	dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_oihw);
	dnnl_memory_desc_init_by_tag(&y_user, 4, yd, dnnl_f32, dnnl_nchw);
	dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x);
	dnnl_memory_desc_init_by_tag(&x_any, 4, xd, dnnl_f32, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&y_any, 4, yd, dnnl_f32, dnnl_format_tag_any);

	nasd_conv *cv = calloc(1, sizeof *cv);
	if (!cv) return NULL;
	cv->has_bias = bias;
	cv->has_dx = need_dx;
	const char *fail = NULL;
	dnnl_primitive_desc_t fpd = NULL, wpd = NULL, xpd = NULL;
	dnnl_convolution_desc_t d;
	if (dnnl_stream_create(&cv->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
		fail = "stream";
		goto out;
	}
	if (dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct, &x_any, &w_any,
	                                       bias ? &b_md : NULL, &y_any, st, pl, pr) != dnnl_success ||
	    dnnl_primitive_desc_create(&fpd, &d, relu ? user_pad_relu : user_pad, engine, NULL) != dnnl_success) {
		fail = "forward descriptor";
		goto out;
	}
	{
		const int arg[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
		const dnnl_memory_desc_t *const user[3] = {&x_user, &w_user, &y_user};
		const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
		if (pass_init(&cv->fwd, fpd, arg, user, q)) {
			fail = "forward primitive";
			goto out;
		}
		if (bias && dnnl_memory_create(&cv->bias, &b_md, engine, DNNL_MEMORY_NONE) != dnnl_success) {
			fail = "bias memory";
			goto out;
		}
	}
	if (dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &x_any, &w_any, NULL, &y_any, st, pl,
	                                                pr) != dnnl_success ||
	    dnnl_primitive_desc_create(&wpd, &d, user_pad, engine, fpd) != dnnl_success) {
		fail = "backward-weights descriptor";
		goto out;
	}
	{
		const int arg[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
		const dnnl_memory_desc_t *const user[3] = {&x_user, &y_user, &w_user};
		const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md};
		if (pass_init(&cv->bwd_w, wpd, arg, user, q)) {
			fail = "backward-weights primitive";
			goto out;
		}
	}
	if (need_dx) {
		if (dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &x_any, &w_any, &y_any, st, pl, pr) !=
		        dnnl_success ||
		    dnnl_primitive_desc_create(&xpd, &d, user_pad, engine, fpd) != dnnl_success) {
			fail = "backward-data descriptor";
			goto out;
		}
		const int arg[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
		const dnnl_memory_desc_t *const user[3] = {&y_user, &w_user, &x_user};
		const dnnl_query_t q[3] = {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md};
		if (pass_init(&cv->bwd_x, xpd, arg, user, q)) {
			fail = "backward-data primitive";
			goto out;
		}
	}
	{
		const char *name = NULL;
		dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &name);
		snprintf(impl, impl_len, "%s", name ? name : "?");
	}
out:
	if (fpd) dnnl_primitive_desc_destroy(fpd);
	if (wpd) dnnl_primitive_desc_destroy(wpd);
	if (xpd) dnnl_primitive_desc_destroy(xpd);
	if (fail) {
		snprintf(impl, impl_len, "%s", fail);
		nasd_conv_free(cv);
		return NULL;
	}
	return cv;
}

// op_md is the layout the primitive of port p works on.
static const dnnl_memory_desc_t *op_md(const port *p) {
	const dnnl_memory_desc_t *md = NULL;
	return dnnl_memory_get_memory_desc(p->op, &md) == dnnl_success ? md : NULL;
}

// side_ports lists the ports of cv's input (x; dX in backward; side 0) or
// output (y; dY in backward; side 1), n of them.
static int side_ports(nasd_conv *cv, int side, port *ports[3]) {
	int n = 0;
	if (side == 0) {
		ports[n++] = &cv->fwd.p[0];
		ports[n++] = &cv->bwd_w.p[0];
		if (cv->has_dx) ports[n++] = &cv->bwd_x.p[2];
	} else {
		ports[n++] = &cv->fwd.p[2];
		ports[n++] = &cv->bwd_w.p[1];
		if (cv->has_dx) ports[n++] = &cv->bwd_x.p[0];
	}
	return n;
}

int nasd_conv_blocked(nasd_conv *cv, int side) {
	port *ports[3];
	int n = side_ports(cv, side, ports);
	const dnnl_memory_desc_t *lay = op_md(ports[0]), *user = NULL;
	if (!lay || dnnl_memory_get_memory_desc(ports[0]->user, &user) != dnnl_success) return -1;
	for (int i = 0; i < n; i++) {
		const dnnl_memory_desc_t *md = op_md(ports[i]);
		if (!ports[i]->reorder || !md || !dnnl_memory_desc_equal(md, lay)) return -1;
	}
	if (dnnl_memory_desc_get_size(lay) != dnnl_memory_desc_get_size(user)) return -1; // padded channel blocks
	const int blks[2] = {16, 8};
	const dnnl_format_tag_t tags[2] = {dnnl_aBcd16b, dnnl_aBcd8b};
	for (int i = 0; i < 2; i++) {
		dnnl_memory_desc_t t;
		if (dnnl_memory_desc_init_by_tag(&t, 4, lay->dims, dnnl_f32, tags[i]) == dnnl_success &&
		    dnnl_memory_desc_equal(&t, lay))
			return blks[i];
	}
	return -1;
}

void nasd_conv_set_blocked(nasd_conv *cv, int side) {
	port *ports[3];
	int n = side_ports(cv, side, ports);
	for (int i = 0; i < n; i++) ports[i]->direct = 1;
}

size_t nasd_conv_scratch(const nasd_conv *cv) {
	size_t n = pass_scratch(&cv->fwd), w = pass_scratch(&cv->bwd_w), x = pass_scratch(&cv->bwd_x);
	if (w > n) n = w;
	if (x > n) n = x;
	return n;
}

int nasd_conv_fwd(nasd_conv *cv, const float *x, const float *wt, const float *b, float *y, void *scratch) {
	void *const p[3] = {(void *)x, (void *)wt, y};
	return pass_run(cv, &cv->fwd, p, cv->has_bias ? cv->bias : NULL, b, scratch);
}

int nasd_conv_bwd_w(nasd_conv *cv, const float *x, const float *dy, float *dw, void *scratch) {
	void *const p[3] = {(void *)x, (void *)dy, dw};
	return pass_run(cv, &cv->bwd_w, p, NULL, NULL, scratch);
}

int nasd_conv_bwd_x(nasd_conv *cv, const float *dy, const float *wt, float *dx, void *scratch) {
	if (!cv->has_dx) return -1;
	void *const p[3] = {(void *)dy, (void *)wt, dx};
	return pass_run(cv, &cv->bwd_x, p, NULL, NULL, scratch);
}

void nasd_conv_free(nasd_conv *cv) {
	if (!cv) return;
	pass_free(&cv->fwd);
	pass_free(&cv->bwd_w);
	pass_free(&cv->bwd_x);
	if (cv->bias) dnnl_memory_destroy(cv->bias);
	if (cv->stream) dnnl_stream_destroy(cv->stream);
	free(cv);
}
