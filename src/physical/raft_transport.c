/*
 * raft_transport.c - the raft storage backend's cluster transport: raft's
 * own libuv TCP transport with TCP_NODELAY set on every connection.
 *
 * libraft's TCP transport leaves Nagle's algorithm on. A raft
 * AppendEntries and its small reply then wait for the peer's delayed ACK
 * (up to 40 ms on Linux), which was the bimodal write latency seen on a
 * loopback cluster. This wrapper delegates everything to the inner
 * transport and switches Nagle off on each stream it accepts or connects.
 * It is also the one place a TLS layer would go (docs/storage-raft.md:
 * not done yet). Loop thread only.
 */
#include "physical/raft_int.h"

#include <stdlib.h>
#include <string.h>

struct wrap {
	struct raft_uv_transport inner;
	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb close_cb;
};

struct wconnect {
	struct raft_uv_connect inner;
	struct raft_uv_connect *outer;
};

static void nodelay(struct uv_stream_s *stream)
{
	if (stream && stream->type == UV_TCP)
		uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static struct raft_uv_transport *outer_of(struct raft_uv_transport *inner)
{
	return inner->data;
}

static int w_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct wrap *w = t->impl;
	int rv = w->inner.init(&w->inner, id, address);
	if (rv)
		memcpy(t->errmsg, w->inner.errmsg, sizeof(t->errmsg));
	return rv;
}

static void w_accept(struct raft_uv_transport *inner, raft_id id, const char *address,
		     struct uv_stream_s *stream)
{
	struct raft_uv_transport *t = outer_of(inner);
	struct wrap *w = t->impl;
	nodelay(stream);
	w->accept_cb(t, id, address, stream);
}

static int w_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct wrap *w = t->impl;
	w->accept_cb = cb;
	int rv = w->inner.listen(&w->inner, w_accept);
	if (rv)
		memcpy(t->errmsg, w->inner.errmsg, sizeof(t->errmsg));
	return rv;
}

static void w_connect_cb(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
	struct wconnect *wc = req->data;
	struct raft_uv_connect *outer = wc->outer;
	free(wc);
	if (!status)
		nodelay(stream);
	outer->cb(outer, stream, status);
}

static int w_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
		     const char *address, raft_uv_connect_cb cb)
{
	struct wrap *w = t->impl;
	struct wconnect *wc = calloc(1, sizeof(*wc));
	if (!wc)
		return RAFT_NOMEM;
	req->cb = cb;
	wc->outer = req;
	wc->inner.data = wc;
	int rv = w->inner.connect(&w->inner, &wc->inner, id, address, w_connect_cb);
	if (rv) {
		memcpy(t->errmsg, w->inner.errmsg, sizeof(t->errmsg));
		free(wc);
	}
	return rv;
}

/* raft's callbacks read the OUTER transport's data: map back before calling */
static void w_close_cb(struct raft_uv_transport *inner)
{
	struct raft_uv_transport *t = outer_of(inner);
	struct wrap *w = t->impl;
	if (w->close_cb)
		w->close_cb(t);
}

static void w_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct wrap *w = t->impl;
	w->close_cb = cb;
	w->inner.close(&w->inner, w_close_cb);
}

int rstore__transport_init(struct raft_uv_transport *t, uv_loop_t *loop)
{
	memset(t, 0, sizeof(*t));
	struct wrap *w = calloc(1, sizeof(*w));
	if (!w)
		return RAFT_NOMEM;
	int rv = raft_uv_tcp_init(&w->inner, loop);
	if (rv) {
		free(w);
		return rv;
	}
	w->inner.data = t;
	t->impl = w;
	t->init = w_init;
	t->listen = w_listen;
	t->connect = w_connect;
	t->close = w_close;
	return 0;
}

void rstore__transport_fini(struct raft_uv_transport *t)
{
	struct wrap *w = t->impl;
	if (!w)
		return;
	raft_uv_tcp_close(&w->inner);
	free(w);
	t->impl = NULL;
}
