/*
 * workflows_server [host] [port] [page-dir]: seed 003's four communication
 * workflows between a web page and the server, with a login pseudonym and
 * the page on the same port.
 *
 * Plain HTTP: the page (index.html, workflows.js, workflows.css) from the
 * page directory: the third argument, else $WSSERVER_WEB/workflows, else
 * web/workflows beside the executable, else ../../examples-c/web/workflows
 * from it (the build tree). GET /healthz answers "ok".
 *
 * WebSocket (any path): every message is a text JSON object of strings
 * with a "type". First a login:
 *   {"type":"login","name":"bob"}  a pseudonym (1-32 bytes, no control
 *       characters, not taken) -> {"type":"welcome","name":"bob",
 *       "text":"Welcome bob","people":[..]}; everyone logged in gets
 *       {"type":"people","people":[..]} as people come and go.
 * Then the four workflows:
 *   echo     {"type":"echo","text":..} -> the sender gets {"type":"echo","text":..}
 *   routed   {"type":"routed","to":"alice","text":..} -> alice gets
 *            {"type":"routed","from":"bob","text":..}; bob {"type":"routed-sent","to":"alice","text":..}
 *   group    {"type":"join","group":"g"} / {"type":"leave","group":"g"}
 *            (-> {"type":"group-joined","group":"g","members":N} / "group-left"),
 *            {"type":"publish","group":"g","text":..} -> every member of g
 *            gets {"type":"group","group":"g","from":"bob","text":..}, the
 *            publisher {"type":"published","group":"g","receivers":N}
 *            (topic "group/g"; the publisher need not be a member);
 *   streamed {"type":"subscribe"} / {"type":"unsubscribe"} (-> "subscribed" /
 *            "unsubscribed") to the "ticks" topic, which a thread feeds every
 *            200 ms with {"type":"tick","n":N,"subscribers":S}.
 * Anything else gets {"type":"error","text":..}.
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

/* ---- people logged in -------------------------------------------------- */

#define NAME_MAX_BYTES 32
#define TEXT_MAX_BYTES 4000

typedef struct {
    uint64_t conn;
    char name[NAME_MAX_BYTES + 1];
} person;

/* Only the callbacks (one I/O thread) touch it; the lock keeps that true
 * should WS_OPT_THREADS be raised. */
static pthread_mutex_t people_lock = PTHREAD_MUTEX_INITIALIZER;
static person *people;
static size_t n_people, cap_people;

/* Caller holds people_lock. */
static person *find_conn(uint64_t conn) {
    for (size_t k = 0; k < n_people; k++)
        if (people[k].conn == conn) return &people[k];
    return NULL;
}

static person *find_name(const char *name) {
    for (size_t k = 0; k < n_people; k++)
        if (strcmp(people[k].name, name) == 0) return &people[k];
    return NULL;
}

/* ,"people":["a","b"]; caller holds people_lock. */
static void sb_people(strbuf *b) {
    sb_str(b, ",\"people\":[");
    for (size_t k = 0; k < n_people; k++) {
        if (k) sb_add(b, ",", 1);
        sb_json(b, people[k].name, strlen(people[k].name));
    }
    sb_add(b, "]", 1);
}

/* Pseudonyms and group names: 1-32 bytes, no control characters, no
 * space at either end. */
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

static size_t publish_buf(const char *topic, strbuf *b, uint64_t except) {
    size_t n = 0;
    if (!b->failed && b->p) ws_server_publish(server, topic, (const uint8_t *)b->p, b->len, WS_TEXT, except, &n);
    return n;
}

static void send_error(uint64_t conn, const char *text) {
    strbuf b = {0};
    sb_str(&b, "{\"type\":\"error\",\"text\":");
    sb_json(&b, text, strlen(text));
    sb_add(&b, "}", 1);
    send_buf(conn, &b);
    free(b.p);
}

/* {"type":TYPE,"KEY":"VALUE"} to conn. */
static void send_reply(uint64_t conn, const char *type, const char *key, const char *value, size_t n) {
    strbuf b = {0};
    sb_str(&b, "{\"type\":");
    sb_json(&b, type, strlen(type));
    if (key) {
        sb_add(&b, ",", 1);
        sb_json(&b, key, strlen(key));
        sb_add(&b, ":", 1);
        sb_json(&b, value, n);
    }
    sb_add(&b, "}", 1);
    send_buf(conn, &b);
    free(b.p);
}

/* Everyone logged in but `except` learns who is here. */
static void publish_people(uint64_t except) {
    strbuf b = {0};
    sb_str(&b, "{\"type\":\"people\"");
    pthread_mutex_lock(&people_lock);
    sb_people(&b);
    pthread_mutex_unlock(&people_lock);
    sb_add(&b, "}", 1);
    publish_buf("people", &b, except);
    free(b.p);
}

/* The login step: the pseudonym becomes the connection's key. */
static void do_login(uint64_t conn, const char *name, size_t n) {
    if (!valid_name(name, n)) {
        send_error(conn, "a pseudonym is 1 to 32 bytes, without control characters or spaces at either end");
        return;
    }
    strbuf b = {0};
    const char *refused = NULL;
    pthread_mutex_lock(&people_lock);
    if (find_conn(conn)) refused = "you are already logged in";
    else if (find_name(name)) refused = "that pseudonym is taken";
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
        char welcome[sizeof "Welcome " + NAME_MAX_BYTES];
        snprintf(welcome, sizeof welcome, "Welcome %s", p->name);
        sb_str(&b, "{\"type\":\"welcome\",\"name\":");
        sb_json(&b, name, n);
        sb_str(&b, ",\"text\":");
        sb_json(&b, welcome, strlen(welcome));
        sb_people(&b);
        sb_add(&b, "}", 1);
    }
    pthread_mutex_unlock(&people_lock);
    if (refused) {
        send_error(conn, refused);
        free(b.p);
        return;
    }
    send_buf(conn, &b);
    free(b.p);
    ws_conn_subscribe(server, conn, "people");
    publish_people(conn);
    fprintf(stderr, "#%llu logged in as %s\n", (unsigned long long)conn, name);
}

/* The connection's pseudonym, copied to out (NAME_MAX_BYTES + 1 bytes);
 * 0 when logged in. */
static int name_of(uint64_t conn, char *out) {
    pthread_mutex_lock(&people_lock);
    person *p = find_conn(conn);
    if (p) memcpy(out, p->name, sizeof p->name);
    pthread_mutex_unlock(&people_lock);
    return p ? 0 : -1;
}

/* Workflow 1, echo: back to the sender only. */
static void do_echo(uint64_t conn, const char *text, size_t n) { send_reply(conn, "echo", "text", text, n); }

/* Workflow 2, routed: to the client logged in as `to`. */
static void do_routed(uint64_t conn, const char *me, const char *to, const char *text, size_t n) {
    uint64_t dest = 0;
    pthread_mutex_lock(&people_lock);
    person *p = find_name(to);
    if (p) dest = p->conn;
    pthread_mutex_unlock(&people_lock);
    if (dest == 0) {
        strbuf e = {0};
        sb_str(&e, "nobody is logged in as ");
        sb_str(&e, to);
        send_error(conn, e.failed ? "nobody is logged in under that name" : e.p);
        free(e.p);
        return;
    }
    strbuf b = {0};
    sb_str(&b, "{\"type\":\"routed\",\"from\":");
    sb_json(&b, me, strlen(me));
    sb_str(&b, ",\"text\":");
    sb_json(&b, text, n);
    sb_add(&b, "}", 1);
    send_buf(dest, &b);
    b.len = 0;
    sb_str(&b, "{\"type\":\"routed-sent\",\"to\":");
    sb_json(&b, to, strlen(to));
    sb_str(&b, ",\"text\":");
    sb_json(&b, text, n);
    sb_add(&b, "}", 1);
    send_buf(conn, &b);
    free(b.p);
}

/* Workflow 3, group: a topic per group, "group/NAME". */
static int group_topic(uint64_t conn, const char *group, size_t n, char *topic, size_t size) {
    if (!valid_name(group, n)) {
        send_error(conn, "a group name is 1 to 32 bytes, without control characters or spaces at either end");
        return -1;
    }
    snprintf(topic, size, "group/%s", group);
    return 0;
}

static void do_group(uint64_t conn, const char *me, const char *type, const char *group, size_t n, const char *text,
                     size_t text_len) {
    char topic[sizeof "group/" + NAME_MAX_BYTES];
    if (group_topic(conn, group, n, topic, sizeof topic) != 0) return;
    strbuf b = {0};
    if (strcmp(type, "join") == 0 || strcmp(type, "leave") == 0) {
        int join = type[0] == 'j';
        if (join) ws_conn_subscribe(server, conn, topic);
        else ws_conn_unsubscribe(server, conn, topic);
        size_t members = 0;
        ws_server_subscribers(server, topic, &members);
        sb_str(&b, join ? "{\"type\":\"group-joined\",\"group\":" : "{\"type\":\"group-left\",\"group\":");
        sb_json(&b, group, n);
        sb_str(&b, ",\"members\":");
        sb_u64(&b, members);
        sb_add(&b, "}", 1);
        send_buf(conn, &b);
    } else { /* publish */
        sb_str(&b, "{\"type\":\"group\",\"group\":");
        sb_json(&b, group, n);
        sb_str(&b, ",\"from\":");
        sb_json(&b, me, strlen(me));
        sb_str(&b, ",\"text\":");
        sb_json(&b, text, text_len);
        sb_add(&b, "}", 1);
        size_t receivers = publish_buf(topic, &b, 0);
        b.len = 0;
        sb_str(&b, "{\"type\":\"published\",\"group\":");
        sb_json(&b, group, n);
        sb_str(&b, ",\"receivers\":");
        sb_u64(&b, receivers);
        sb_add(&b, "}", 1);
        send_buf(conn, &b);
    }
    free(b.p);
}

/* Workflow 4, streamed: the subscription only; the ticks thread publishes. */
static void do_stream(uint64_t conn, int subscribe) {
    if (subscribe) ws_conn_subscribe(server, conn, "ticks");
    else ws_conn_unsubscribe(server, conn, "ticks");
    send_reply(conn, subscribe ? "subscribed" : "unsubscribed", "topic", "ticks", 5);
}

static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    json_obj o;
    const char *type;
    if (kind != WS_TEXT || json_parse(data, len, &o) != 0) {
        send_error(conn, "send a JSON object of strings with a \"type\", e.g. {\"type\":\"login\",\"name\":\"bob\"}");
        return;
    }
    size_t name_len = 0, text_len = 0, group_len = 0;
    const char *name = json_get(&o, "name", &name_len);
    const char *text = json_get(&o, "text", &text_len);
    const char *group = json_get(&o, "group", &group_len);
    const char *to = json_get(&o, "to", NULL);
    char me[NAME_MAX_BYTES + 1];
    if ((type = json_get(&o, "type", NULL)) == NULL) type = "";
    if (text && text_len > TEXT_MAX_BYTES) {
        send_error(conn, "a text is at most 4000 bytes");
    } else if (strcmp(type, "login") == 0) {
        if (name) do_login(conn, name, name_len);
        else send_error(conn, "login needs a \"name\"");
    } else if (name_of(conn, me) != 0) {
        send_error(conn, "log in first: {\"type\":\"login\",\"name\":..}");
    } else if (strcmp(type, "echo") == 0 && text) {
        do_echo(conn, text, text_len);
    } else if (strcmp(type, "routed") == 0 && to && text) {
        do_routed(conn, me, to, text, text_len);
    } else if ((strcmp(type, "join") == 0 || strcmp(type, "leave") == 0) && group) {
        do_group(conn, me, type, group, group_len, NULL, 0);
    } else if (strcmp(type, "publish") == 0 && group && text) {
        do_group(conn, me, type, group, group_len, text, text_len);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        do_stream(conn, type[0] == 's');
    } else {
        send_error(conn, "unknown command (echo/text, routed/to/text, join|leave/group, publish/group/text, "
                         "subscribe, unsubscribe)");
    }
    json_free(&o);
}

static void on_close(void *user_data, uint64_t conn, uint16_t code, const char *reason, size_t reason_len) {
    (void)user_data;
    (void)code;
    (void)reason;
    (void)reason_len;
    pthread_mutex_lock(&people_lock);
    person *p = find_conn(conn);
    if (p) {
        fprintf(stderr, "#%llu (%s) left\n", (unsigned long long)conn, p->name);
        *p = people[--n_people];
    }
    pthread_mutex_unlock(&people_lock);
    if (p) publish_people(conn);
}

/* ---- the ticks thread ---------------------------------------------------- */

static atomic_int stopping;

static void *ticks_thread(void *arg) {
    (void)arg;
    uint64_t n = 0;
    while (!atomic_load(&stopping)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (atomic_load(&stopping)) break;
        size_t subscribers = 0;
        ws_server_subscribers(server, "ticks", &subscribers);
        if (subscribers == 0) continue;
        strbuf b = {0};
        sb_str(&b, "{\"type\":\"tick\",\"n\":");
        sb_u64(&b, ++n);
        sb_str(&b, ",\"subscribers\":");
        sb_u64(&b, subscribers);
        sb_add(&b, "}", 1);
        publish_buf("ticks", &b, 0);
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
    callbacks.on_message = on_message;
    callbacks.on_close = on_close;
    callbacks.on_log = example_log;
    server = ws_server_new(&callbacks, NULL);
    ws_server_set_option(server, WS_OPT_MAX_MESSAGE_SIZE, 64 * 1024);
    ws_server_set_health_path(server, "/healthz");
    const char *page = find_page_dir(server, argc, argv, "workflows");
    if (page == NULL)
        fprintf(stderr, "workflows_server: no page directory (%s): serving WebSocket only; pass one as the third "
                        "argument or set WSSERVER_WEB to examples-c/web\n", argc > 3 ? ws_last_error() : "not found");

    if (ws_server_listen(server, host, port) != WS_OK) {
        fprintf(stderr, "workflows_server: %s\n", ws_last_error());
        ws_server_free(server);
        return 1;
    }
    example_print_listening(server, "ws", host);
    if (page) example_print_page(server, host);
    pthread_t ticks;
    int have_thread = pthread_create(&ticks, NULL, ticks_thread, NULL) == 0;
    example_wait_for_signal(&signals);
    atomic_store(&stopping, 1);
    if (have_thread) pthread_join(ticks, NULL);
    ws_server_close(server, 1000);
    ws_server_free(server);
    free(people);
    return 0;
}
