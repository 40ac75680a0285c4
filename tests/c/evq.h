/*
 * Helpers for the event-queue tests (WS_OPT_EVENT_QUEUE): a tracker that
 * checks every polled event against the header's rules (data never NULL and
 * NUL-terminated, per connection the open first and the close exactly once
 * and last, request only on opens), a log store, a poll that waits for one
 * kind of event, and a client that opens on its own thread (the handshake
 * waits for the host's ws_conn_accept).
 */
#ifndef WSTEST_EVQ_H
#define WSTEST_EVQ_H

#include <pthread.h>
#include <stdint.h>

#include "client.h"
#include "wsserver.h"

#define EVQ_MAX_CONN 1024
#define EVQ_MAX_LOG 128

typedef struct evq_conn {
    int opened, closed, late, messages, errors, drains;
    int refused; /* answered with ws_conn_refuse (see evq_refuse): no close follows */
    int close_code;
    int error_code;
} evq_conn;

typedef struct evq_log {
    int level;
    char message[256];
} evq_log;

typedef struct evq {
    evq_conn conn[EVQ_MAX_CONN];
    int bad;          /* events breaking the per-event rules */
    int bad_id;       /* conn 0 on a connection event, or too big */
    int reopened;     /* a second open for one id */
    evq_log logs[EVQ_MAX_LOG];
    int nlogs;
    long events;
} evq;

extern evq EQ; /* only the polling thread touches it */

void evq_reset(void);
/* Checks and records one event (the tracker's rules). */
void evq_track(const ws_event *ev);
/* Polls once (timeout as ws_server_poll); tracks the event. Returns the
 * result; *out is the event on WS_OK (caller frees). */
int evq_poll(ws_server *srv, int timeout_ms, ws_event **out);
/* Polls until an event of `type` (and `conn`, unless 0) arrives, within
 * timeout_ms; other events are tracked and freed. Returns it, or NULL. */
ws_event *evq_wait(ws_server *srv, uint32_t type, uint64_t conn, int timeout_ms);
/* Takes events with timeout 0 until WS_ERR_TIMEOUT (or CLOSED); returns
 * how many were taken that were not WS_EVENT_LOG. */
int evq_drain(ws_server *srv);
int evq_count_logs(int max_level, const char *needle);
/* ws_conn_refuse, and on WS_OK marks the connection as refused. */
int evq_refuse(ws_server *srv, uint64_t conn, uint16_t status);
/* The per-connection rules over everything tracked (one CHECK each). */
void evq_check_invariants(const char *when);

/* A new event-mode server listening on 127.0.0.1:0. */
ws_server *evq_server(int auto_accept, uint16_t *port);

/* 1 if fd is readable within timeout_ms. */
int fd_readable(int fd, int timeout_ms);

/* A client whose handshake runs on its own thread. */
typedef struct opener {
    wsc c;
    uint16_t port;
    char target[256];
    char extra[512];
    int rcvbuf;   /* kept by opener_start: set before */
    int delay_ms; /* kept by opener_start: the thread waits this long before connecting */
    int status;
    pthread_t th;
} opener;

void opener_start(opener *o, uint16_t port, const char *target, const char *extra);
/* Joins; returns the HTTP status (or -1). */
int opener_join(opener *o);

#endif
