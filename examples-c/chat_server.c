/*
 * chat_server [host] [port] [page-dir]: a chat room with its own web page,
 * both on one port.
 *
 * Plain HTTP: the page (index.html, chat.js, chat.css) from the page
 * directory: the third argument, else $WSSERVER_WEB/chat, else web/chat
 * beside the executable, else ../../examples-c/web/chat from it (the build
 * tree). Without one the server still chats (a note goes to stderr).
 * GET /healthz answers "ok".
 *
 * WebSocket (any path): each new client gets a welcome message and is
 * subscribed to the "chat" topic. A text message that is a JSON object
 * (its first byte after JSON white space is '{') is one of the page's
 * commands, a flat object of strings:
 *   {"type":"join","name":"alice"}   takes a name (1-32 bytes, no control
 *       characters, not taken): the client gets {"type":"joined","name":..,
 *       "people":[..]} and a first {"type":"stats",..}, and is subscribed to
 *       "stats"; every other client gets {"type":"presence","event":"join",
 *       "name":..,"people":[..]};
 *   {"type":"say","text":"hi"}       (after join) every client, the sender
 *       too, gets {"type":"chat","from":"alice","text":"hi"};
 * any other object is answered with {"type":"error","text":..}. A named
 * client's close publishes {"type":"presence","event":"leave",..}. Every
 * other text message is relayed as it is to every client, the sender too
 * (so what reaches a client and starts with '{' comes from the server);
 * binary messages are not relayed. Once a second a thread publishes the
 * server's statistics (ws_server_stats) to the "stats" topic:
 *   {"type":"stats","connections":..,"messages_in":..,"messages_out":..,..}
 * Clients are pinged every 5 s and dropped after 15 s of silence.
 *
 * Prints "listening on ws://HOST:PORT", then "page: http://HOST:PORT/" when
 * it serves the page; exits 0 on SIGINT/SIGTERM.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "example_common.h"
#include "example_web.h"

static ws_server *server;

/* ---- people present ---------------------------------------------------- */

#define NAME_MAX_BYTES 32
#define TEXT_MAX_BYTES 4000

typedef struct {
    uint64_t conn;
    char name[NAME_MAX_BYTES + 1];
} person;

/* Touched by the callbacks (one I/O thread) and counted by the stats thread. */
static pthread_mutex_t people_lock = PTHREAD_MUTEX_INITIALIZER;
static person *people;
static size_t n_people, cap_people;

/* Caller holds people_lock. */
static person *find_conn(uint64_t conn) {
    for (size_t k = 0; k < n_people; k++)
        if (people[k].conn == conn) return &people[k];
    return NULL;
}

static int name_taken(const char *name) {
    for (size_t k = 0; k < n_people; k++)
        if (strcmp(people[k].name, name) == 0) return 1;
    return 0;
}

/* ,"people":["a","b"] — caller holds people_lock. */
static void sb_people(strbuf *b) {
    sb_str(b, ",\"people\":[");
    for (size_t k = 0; k < n_people; k++) {
        if (k) sb_add(b, ",", 1);
        sb_json(b, people[k].name, strlen(people[k].name));
    }
    sb_add(b, "]", 1);
}

static int valid_name(const char *name, size_t n) {
    if (n == 0 || n > NAME_MAX_BYTES) return 0;
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)name[k] < 0x20 || name[k] == 0x7F) return 0;
    return name[0] != ' ' && name[n - 1] != ' ';
}

/* ---- messages ---------------------------------------------------------- */

static void send_buf(uint64_t conn, strbuf *b) {
    if (!b->failed && b->p) ws_server_send(server, conn, (const uint8_t *)b->p, b->len, WS_TEXT);
}

static void publish_buf(const char *topic, strbuf *b, uint64_t except) {
    if (!b->failed && b->p) ws_server_publish(server, topic, (const uint8_t *)b->p, b->len, WS_TEXT, except, NULL);
}

static void send_error(uint64_t conn, const char *text) {
    strbuf b = {0};
    sb_str(&b, "{\"type\":\"error\",\"text\":");
    sb_json(&b, text, strlen(text));
    sb_add(&b, "}", 1);
    send_buf(conn, &b);
    free(b.p);
}

static void stats_json(strbuf *b) {
    ws_stats st;
    memset(&st, 0, sizeof st);
    ws_server_stats(server, &st);
    pthread_mutex_lock(&people_lock);
    size_t named = n_people;
    pthread_mutex_unlock(&people_lock);
    sb_str(b, "{\"type\":\"stats\",\"connections\":");
    sb_u64(b, st.open_connections);
    sb_str(b, ",\"people\":");
    sb_u64(b, named);
    sb_str(b, ",\"messages_in\":");
    sb_u64(b, st.messages_in);
    sb_str(b, ",\"messages_out\":");
    sb_u64(b, st.messages_out);
    sb_str(b, ",\"bytes_in\":");
    sb_u64(b, st.bytes_in);
    sb_str(b, ",\"bytes_out\":");
    sb_u64(b, st.bytes_out);
    sb_str(b, ",\"handshakes_accepted\":");
    sb_u64(b, st.handshakes_accepted);
    sb_str(b, ",\"http_requests\":");
    sb_u64(b, st.http_requests);
    sb_str(b, ",\"topics\":");
    sb_u64(b, st.topics);
    sb_str(b, ",\"subscriptions\":");
    sb_u64(b, st.subscriptions);
    sb_add(b, "}", 1);
}

static void on_join(uint64_t conn, const char *name, size_t n) {
    if (!valid_name(name, n)) {
        send_error(conn, "a name is 1 to 32 bytes, without control characters or spaces at either end");
        return;
    }
    strbuf me = {0}, all = {0};
    pthread_mutex_lock(&people_lock);
    const char *refused = NULL;
    if (find_conn(conn)) refused = "you have already joined";
    else if (name_taken(name)) refused = "that name is taken";
    else if (n_people == cap_people) {
        size_t cap = cap_people ? cap_people * 2 : 16;
        person *p = realloc(people, cap * sizeof *p);
        if (p == NULL) refused = "out of memory";
        else people = p, cap_people = cap;
    }
    if (refused == NULL) {
        person *p = &people[n_people++];
        p->conn = conn;
        memcpy(p->name, name, n + 1);
        sb_str(&me, "{\"type\":\"joined\",\"name\":");
        sb_json(&me, name, n);
        sb_people(&me);
        sb_add(&me, "}", 1);
        sb_str(&all, "{\"type\":\"presence\",\"event\":\"join\",\"name\":");
        sb_json(&all, name, n);
        sb_people(&all);
        sb_add(&all, "}", 1);
    }
    pthread_mutex_unlock(&people_lock);
    if (refused) {
        send_error(conn, refused);
        return;
    }
    send_buf(conn, &me);
    publish_buf("chat", &all, conn);
    ws_conn_subscribe(server, conn, "stats");
    strbuf st = {0};
    stats_json(&st);
    send_buf(conn, &st);
    free(me.p);
    free(all.p);
    free(st.p);
    fprintf(stderr, "#%llu is %s\n", (unsigned long long)conn, name);
}

static void on_say(uint64_t conn, const char *text, size_t n) {
    if (n == 0) return;
    if (n > TEXT_MAX_BYTES) {
        send_error(conn, "messages are at most 4000 bytes");
        return;
    }
    strbuf b = {0};
    pthread_mutex_lock(&people_lock);
    person *p = find_conn(conn);
    if (p) {
        sb_str(&b, "{\"type\":\"chat\",\"from\":");
        sb_json(&b, p->name, strlen(p->name));
        sb_str(&b, ",\"text\":");
        sb_json(&b, text, n);
        sb_add(&b, "}", 1);
    }
    pthread_mutex_unlock(&people_lock);
    if (p) publish_buf("chat", &b, 0);
    else send_error(conn, "join with a name first");
    free(b.p);
}

static int on_open(void *user_data, uint64_t conn, const ws_request *request) {
    (void)user_data;
    static const char welcome[] = "Welcome to the wsserver chat!";
    ws_server_send(server, conn, (const uint8_t *)welcome, sizeof welcome - 1, WS_TEXT);
    ws_conn_subscribe(server, conn, "chat");
    fprintf(stderr, "#%llu joined from %s (%s)\n", (unsigned long long)conn, ws_request_peer(request),
            ws_request_path(request));
    return 0; /* accept */
}

static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    if (kind != WS_TEXT) return;
    if (json_space(data, len, 0) == len || data[json_space(data, len, 0)] != '{') {
        ws_server_publish(server, "chat", data, len, WS_TEXT, 0, NULL); /* plain text: relayed as it is */
        return;
    }
    json_obj o;
    const char *type;
    if (json_parse(data, len, &o) != 0) {
        send_error(conn, "a command is a JSON object of strings with a \"type\"");
        return;
    }
    if ((type = json_get(&o, "type", NULL)) == NULL) type = "";
    size_t n = 0;
    const char *arg;
    if (strcmp(type, "join") == 0 && (arg = json_get(&o, "name", &n)) != NULL) on_join(conn, arg, n);
    else if (strcmp(type, "say") == 0 && (arg = json_get(&o, "text", &n)) != NULL) on_say(conn, arg, n);
    else send_error(conn, "unknown command: {\"type\":\"join\",\"name\":..} or {\"type\":\"say\",\"text\":..}");
    json_free(&o);
}

static void on_close(void *user_data, uint64_t conn, uint16_t code, const char *reason, size_t reason_len) {
    (void)user_data;
    fprintf(stderr, "#%llu left (%u %.*s)\n", (unsigned long long)conn, (unsigned)code, (int)reason_len, reason);
    strbuf b = {0};
    pthread_mutex_lock(&people_lock);
    person *p = find_conn(conn);
    if (p) {
        sb_str(&b, "{\"type\":\"presence\",\"event\":\"leave\",\"name\":");
        sb_json(&b, p->name, strlen(p->name));
        *p = people[--n_people]; /* order does not matter */
        sb_people(&b);
        sb_add(&b, "}", 1);
    }
    pthread_mutex_unlock(&people_lock);
    if (p) publish_buf("chat", &b, conn);
    free(b.p);
}

/* ---- the statistics thread --------------------------------------------- */

static atomic_int stopping;

static void *stats_thread(void *arg) {
    (void)arg;
    while (!atomic_load(&stopping)) {
        for (int k = 0; k < 10 && !atomic_load(&stopping); k++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&stopping)) break;
        strbuf b = {0};
        stats_json(&b);
        publish_buf("stats", &b, 0);
        free(b.p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *host;
    uint16_t port;
    sigset_t signals;
    if (argc > 4) {
        fprintf(stderr, "usage: %s [host] [port] [page-dir]\n", argv[0]);
        return 2;
    }
    if (example_args(argc, argv, &host, &port) != 0) return 2;
    example_block_signals(&signals);

    ws_callbacks callbacks = {0};
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_close = on_close;
    callbacks.on_log = example_log;
    server = ws_server_new(&callbacks, NULL);
    ws_server_set_option(server, WS_OPT_PING_INTERVAL_MS, 5000);
    ws_server_set_option(server, WS_OPT_IDLE_TIMEOUT_MS, 15000);
    ws_server_set_option(server, WS_OPT_MAX_CONNECTIONS, 100000);
    ws_server_set_option(server, WS_OPT_DEFLATE, 1); /* JSON compresses well; browsers offer it */
    ws_server_set_health_path(server, "/healthz");
    const char *page = find_page_dir(server, argc, argv, "chat");
    if (page == NULL)
        fprintf(stderr, "chat_server: no page directory (%s): serving WebSocket only; pass one as the third "
                        "argument or set WSSERVER_WEB to examples-c/web\n", argc > 3 ? ws_last_error() : "not found");

    if (ws_server_listen(server, host, port) != WS_OK) {
        fprintf(stderr, "chat_server: %s\n", ws_last_error());
        ws_server_free(server);
        return 1;
    }
    example_print_listening(server, "ws", host);
    if (page) example_print_page(server, host);
    pthread_t stats;
    int have_thread = pthread_create(&stats, NULL, stats_thread, NULL) == 0;
    example_wait_for_signal(&signals);
    atomic_store(&stopping, 1);
    if (have_thread) pthread_join(stats, NULL);
    ws_server_close(server, 1000);
    ws_server_free(server);
    free(people);
    return 0;
}
