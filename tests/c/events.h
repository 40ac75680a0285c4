/*
 * Records every callback a test server receives, per connection id, and
 * checks the ordering rules of the header on the fly: on_open first,
 * on_close exactly once and last, ids never reused, callbacks on a
 * "wsserver-io" thread, one connection's callbacks always on the same
 * thread, never two callbacks at once (WS_OPT_THREADS 1).
 */
#ifndef WSTEST_EVENTS_H
#define WSTEST_EVENTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "wsserver.h"

#define EV_MAX_CONN 512
#define EV_MAX_LOG 64

typedef struct ev_conn {
    int opened;   /* on_open calls that accepted */
    int refused;  /* on_open calls that refused */
    int closed;   /* on_close calls */
    int late;     /* events after on_close, or before on_open */
    int messages; /* on_message calls */
    int errors;   /* on_error calls */
    int drains;   /* on_drain calls */
    int last_error;
    char error_message[256];
    int close_code;
    char close_reason[128];
    size_t close_reason_len;
    int close_reason_nul; /* reason[reason_len] == '\0' */
    pthread_t thread;     /* the thread of its first callback */
    int thread_set;
    int moved;            /* callbacks on another thread than the first */
} ev_conn;

typedef struct ev_log {
    ws_log_level level;
    char message[256];
} ev_log;

typedef struct events {
    ev_conn conn[EV_MAX_CONN];
    int bad_id;         /* ids 0 or >= EV_MAX_CONN */
    int reused;         /* on_open for an id seen before */
    int concurrent;     /* two callbacks at once */
    int wrong_thread;   /* a connection callback not on "wsserver-io" */
    int in_callback;
    int after_shutdown; /* callbacks after events_shutdown() */
    int shut;
    uint64_t max_id;
    uint64_t last_open; /* the newest accepted connection (see ev_wait_open) */
    ev_log logs[EV_MAX_LOG];
    int nlogs;
} events;

extern events EV;
extern pthread_mutex_t ev_mu; /* guards EV */

void events_reset(void);
/* Call at the start/end of each connection callback (not on_log). */
void ev_enter(uint64_t conn, int is_open);
void ev_leave(void);
/* Marks that no callback may run any more (after ws_server_close returned). */
void events_shutdown(void);

/* Copies of a connection's record, under the lock. */
ev_conn ev_get(uint64_t conn);
int ev_count_logs(ws_log_level max_level, const char *needle);

/* Records for the common callbacks (each takes the lock). */
void ev_on_close(void *ud, uint64_t conn, uint16_t code, const char *reason, size_t reason_len);
void ev_on_error(void *ud, uint64_t conn, ws_result error, const char *message);
void ev_on_drain(void *ud, uint64_t conn);
void ev_on_log(void *ud, ws_log_level level, const char *message);
void ev_record_open(uint64_t conn, int accepted);

/* A callback table with the recorder's on_close/on_error/on_drain/on_log
 * and the program's own on_open and on_message. */
ws_callbacks ev_callbacks(int (*on_open)(void *, uint64_t, const ws_request *),
                          void (*on_message)(void *, uint64_t, const uint8_t *, size_t, ws_kind));
/* Forgets the newest accepted connection; call before a client connects. */
void ev_forget_open(void);
/* Waits up to timeout_ms for a connection accepted since ev_forget_open;
 * returns its id, or 0. */
uint64_t ev_wait_open(int timeout_ms);
void ev_record_message(uint64_t conn);

/* Checks the global invariants (one CHECK each), labelled with `when`. */
void ev_check_invariants(const char *when);

/* Waits (bounded) until cond() is true; cond runs under the lock. */
int ev_wait(int (*cond)(void *), void *arg, int timeout_ms);
int ev_wait_closed(uint64_t conn, int timeout_ms);

/* Opens a client to 127.0.0.1:port at `target` (rcvbuf as wsc_open) and
 * waits for its on_open (the program's on_open must call ev_record_open).
 * Checks the 101 and the on_open; returns the connection id, or 0. */
struct wsc;
uint64_t ev_open_client(struct wsc *c, uint16_t port, const char *target, int rcvbuf);

/* Ends a test server: ws_server_close(grace_ms) must return WS_OK, then no
 * callback may run (events_shutdown), the invariants are checked with
 * `when`, and the server is freed. */
void ev_stop_server(ws_server *srv, uint32_t grace_ms, const char *when);

#endif
