/* libwebsockets peer for the wsserver benchmark.
 *
 *   lws_echo PORT [--broadcast] [--deflate] [--tls CERT KEY]
 *
 * Echo mode sends every message back to its sender with the same kind;
 * broadcast mode relays every message to every connected client.
 * --deflate adds lws's permessage-deflate extension
 * (lws_extension_callback_pm_deflate), its settings at their defaults but
 * one: its inflate buffer is 64 KiB (rx_buf_size 16, and the service
 * buffer, which caps it, 64 KiB) instead of 1 KiB. With 1 KiB, a message
 * that inflates past it is drained over several service passes, and as
 * soon as two connections send compressed messages at once Debian's lws
 * 4.1.6 fails them ("zlib error inflate -3: invalid distance too far back")
 * or returns wrong text: seen with this load generator and with Python
 * websockets' client alike, never with one connection. Messages
 * are reassembled from lws's receive chunks, then queued per connection and
 * written from the WRITEABLE callback, as lws wants. A queued message is
 * shared by all the queues that hold it (reference counted).
 * --tls CERT KEY: wss:// on lws's TLS (Debian builds it with OpenSSL),
 * the PEM files given, its TLS settings at their defaults.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msg {
	int refs;
	int binary;
	size_t len;
	unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

/* A connection's queue never holds more than this; beyond, it drops. */
#define QMAX 4096

struct pss {
	struct pss *prev, *next; /* every live connection, for broadcast */
	struct lws *wsi;
	struct msg **q; /* ring of queued messages, grown on demand */
	unsigned head, count, cap;
	unsigned char *rx; /* message being reassembled */
	size_t rx_len, rx_cap;
};

static struct pss *all_conns;
static int broadcast_mode;
static int deflate;
static volatile sig_atomic_t stopping;
static struct lws_context *context;

static void unref(struct msg *m)
{
	if (--m->refs == 0)
		free(m);
}

static void push(struct pss *p, struct msg *m)
{
	if (p->count == p->cap) {
		unsigned ncap = p->cap ? p->cap * 2 : 4, i;
		struct msg **nq;
		if (ncap > QMAX)
			return; /* too far behind: drop for this connection */
		nq = malloc(ncap * sizeof *nq);
		if (!nq)
			return;
		for (i = 0; i < p->count; i++)
			nq[i] = p->q[(p->head + i) % p->cap];
		free(p->q);
		p->q = nq;
		p->cap = ncap;
		p->head = 0;
	}
	p->q[(p->head + p->count) % p->cap] = m;
	p->count++;
	m->refs++;
	lws_callback_on_writable(p->wsi);
}

static int append_rx(struct pss *p, const void *in, size_t len)
{
	if (p->rx_len + len > p->rx_cap) {
		size_t ncap = p->rx_cap ? p->rx_cap : 256;
		unsigned char *n;
		while (ncap < p->rx_len + len)
			ncap *= 2;
		n = realloc(p->rx, ncap);
		if (!n)
			return -1;
		p->rx = n;
		p->rx_cap = ncap;
	}
	memcpy(p->rx + p->rx_len, in, len);
	p->rx_len += len;
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct pss *p = user;
	struct msg *m;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		if (deflate)
			lws_set_extension_option(wsi, "permessage-deflate", "rx_buf_size", "16");
		p->wsi = wsi;
		p->next = all_conns;
		if (all_conns)
			all_conns->prev = p;
		all_conns = p;
		break;

	case LWS_CALLBACK_CLOSED:
		if (p->prev)
			p->prev->next = p->next;
		else if (all_conns == p)
			all_conns = p->next;
		if (p->next)
			p->next->prev = p->prev;
		while (p->count) {
			unref(p->q[p->head]);
			p->head = (p->head + 1) % p->cap;
			p->count--;
		}
		free(p->q);
		free(p->rx);
		break;

	case LWS_CALLBACK_RECEIVE:
		if (append_rx(p, in, len))
			return -1;
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			break;
		m = malloc(sizeof *m + LWS_PRE + p->rx_len);
		if (!m)
			return -1;
		m->refs = 1; /* ours until the pushes are done */
		m->binary = lws_frame_is_binary(wsi);
		m->len = p->rx_len;
		memcpy(m->buf + LWS_PRE, p->rx, p->rx_len);
		p->rx_len = 0;
		if (broadcast_mode) {
			struct pss *c;
			for (c = all_conns; c; c = c->next)
				push(c, m);
		} else {
			push(p, m);
		}
		unref(m);
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE: {
		size_t n;
		int wrote;
		if (!p->count)
			break;
		m = p->q[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		n = m->len;
		wrote = lws_write(wsi, m->buf + LWS_PRE, n, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		unref(m);
		if (wrote < (int)n)
			return -1;
		if (p->count)
			lws_callback_on_writable(wsi);
		break;
	}

	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	/* First in the list: used when the client names no subprotocol. */
	{ "bench", callback, sizeof(struct pss), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_extension extensions[] = {
	{ "permessage-deflate", lws_extension_callback_pm_deflate,
	  "permessage-deflate; client_no_context_takeover; client_max_window_bits" },
	{ NULL, NULL, NULL }
};

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	if (context)
		lws_cancel_service(context);
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	const char *cert = NULL, *key = NULL;
	int port, i;

	if (argc < 2) {
		fprintf(stderr, "usage: lws_echo PORT [--broadcast] [--deflate] [--tls CERT KEY]\n");
		return 2;
	}
	port = atoi(argv[1]);
	for (i = 2; i < argc; i++) {
		broadcast_mode |= !strcmp(argv[i], "--broadcast");
		deflate |= !strcmp(argv[i], "--deflate");
		if (!strcmp(argv[i], "--tls") && i + 2 < argc) {
			cert = argv[++i];
			key = argv[++i];
		}
	}
	lws_set_log_level(LLL_ERR, NULL);

	memset(&info, 0, sizeof info);
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	if (deflate) {
		info.extensions = extensions;
		info.pt_serv_buf_size = 65536;
	}
	if (cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
	}
	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "lws_create_context failed\n");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("listening on %s://127.0.0.1:%d\n", cert ? "wss" : "ws", port);
	fflush(stdout);
	while (!stopping && lws_service(context, 0) >= 0)
		;
	lws_context_destroy(context);
	return 0;
}
