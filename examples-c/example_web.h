/*
 * What the examples with a browser page share: the little JSON they speak
 * with it (a growing string, flat objects of strings) and finding the
 * page's directory. Copy it along with chat_server.c or workflows_server.c.
 */
#ifndef WSSERVER_EXAMPLE_WEB_H
#define WSSERVER_EXAMPLE_WEB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsserver.h"

/* ---- JSON, as little as the page needs -------------------------------- */

/* A growing string; `failed` is set (and further appends ignored) when
 * memory runs out. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_u64(strbuf *b, uint64_t v) {
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_str(b, tmp);
}

/* Appends `s` (n bytes of UTF-8) as a quoted JSON string. */
static void sb_json(strbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_add(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_add(b, esc, 6);
        } else {
            sb_add(b, s + i, 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* A flat JSON object whose values are all strings, e.g.
 * {"type":"say","text":"hi"}: keys and values decoded into `mem` as
 * NUL-terminated UTF-8 (\u0000 is refused, so none holds a NUL). */
#define JSON_MAX_FIELDS 8
typedef struct {
    int n;
    const char *key[JSON_MAX_FIELDS];
    const char *val[JSON_MAX_FIELDS];
    size_t val_len[JSON_MAX_FIELDS];
    char *mem;
} json_obj;

static size_t json_space(const uint8_t *s, size_t len, size_t i) {
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

static int json_hex4(const uint8_t *s, size_t len, size_t i, unsigned *out) {
    unsigned v = 0;
    if (i + 4 > len) return -1;
    for (size_t k = i; k < i + 4; k++) {
        unsigned c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

/* Decodes the string starting at s[*i] == '"' to *out (advanced past the
 * NUL written after it); *i ends past the closing quote. The input is valid
 * UTF-8 (the library checks text messages), so bytes are copied as they
 * are; escapes are decoded, raw control characters refused. */
static int json_string(const uint8_t *s, size_t len, size_t *i, char **out) {
    size_t k = *i;
    char *o = *out;
    if (k >= len || s[k] != '"') return -1;
    for (k++;; k++) {
        if (k >= len) return -1;
        unsigned char c = s[k];
        if (c == '"') break;
        if (c < 0x20) return -1;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (++k >= len) return -1;
        switch (s[k]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (json_hex4(s, len, k + 1, &cp) != 0) return -1;
            k += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {           /* needs its low half */
                if (k + 2 >= len || s[k + 1] != '\\' || s[k + 2] != 'u' || json_hex4(s, len, k + 3, &lo) != 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                k += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) return -1;
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return -1;
        }
    }
    *o++ = '\0';
    *out = o;
    *i = k + 1;
    return 0;
}

/* Parses the members after '{' up to and including '}'; 0 on success. */
static int json_members(const uint8_t *s, size_t len, size_t i, json_obj *o, char *out) {
    i = json_space(s, len, i);
    if (i < len && s[i] == '}') return json_space(s, len, i + 1) == len ? 0 : -1;
    for (;;) {
        if (o->n == JSON_MAX_FIELDS) return -1;
        const char *key = out;
        if (json_string(s, len, &i, &out) != 0) return -1;
        i = json_space(s, len, i);
        if (i >= len || s[i] != ':') return -1;
        i = json_space(s, len, i + 1);
        const char *val = out;
        if (json_string(s, len, &i, &out) != 0) return -1;
        o->key[o->n] = key;
        o->val[o->n] = val;
        o->val_len[o->n] = (size_t)(out - val) - 1;
        o->n++;
        i = json_space(s, len, i);
        if (i < len && s[i] == '}') return json_space(s, len, i + 1) == len ? 0 : -1;
        if (i >= len || s[i] != ',') return -1;
        i = json_space(s, len, i + 1);
    }
}

/* Parses s (len bytes) as a flat object of strings: 0 on success (then
 * free o->mem with json_free), -1 when it is not one (nothing to free). A
 * decoded string is never longer than its quoted form, so len + 1 bytes
 * hold them all. */
static int json_parse(const uint8_t *s, size_t len, json_obj *o) {
    memset(o, 0, sizeof *o);
    size_t i = json_space(s, len, 0);
    if (i >= len || s[i] != '{') return -1;
    o->mem = malloc(len + 1);
    if (o->mem == NULL) return -1;
    if (json_members(s, len, i + 1, o, o->mem) == 0) return 0;
    free(o->mem);
    memset(o, 0, sizeof *o);
    return -1;
}

static void json_free(json_obj *o) { free(o->mem); }

/* The value of `key` (NULL when absent); its length in *n. */
static const char *json_get(const json_obj *o, const char *key, size_t *n) {
    for (int k = 0; k < o->n; k++)
        if (strcmp(o->key[k], key) == 0) {
            if (n) *n = o->val_len[k];
            return o->val[k];
        }
    return NULL;
}

/* ---- finding the page -------------------------------------------------- */

/* Serves the first directory that works — argv[3], $WSSERVER_WEB/NAME,
 * web/NAME beside the executable, or the source tree's examples-c/web/NAME
 * from build/examples — and returns it (static storage), or NULL. */
static const char *find_page_dir(ws_server *server, int argc, char **argv, const char *name) {
    static char path[8192];
    if (argc > 3) return ws_server_set_static_dir(server, argv[3]) == WS_OK ? argv[3] : NULL;
    const char *env = getenv("WSSERVER_WEB");
    if (env && *env) {
        int w = snprintf(path, sizeof path, "%s/%s", env, name);
        return w > 0 && (size_t)w < sizeof path && ws_server_set_static_dir(server, path) == WS_OK ? path : NULL;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL) return NULL;
    *slash = '\0';
    static const char *const beside[] = {"web", "../../examples-c/web"};
    for (size_t k = 0; k < sizeof beside / sizeof beside[0]; k++) {
        int w = snprintf(path, sizeof path, "%s/%s/%s", exe, beside[k], name);
        if (w > 0 && (size_t)w < sizeof path && ws_server_set_static_dir(server, path) == WS_OK) return path;
    }
    return NULL;
}

/* Prints "page: http://HOST:PORT/" with the bound port, flushed (after the
 * "listening on" line). */
static void example_print_page(ws_server *srv, const char *host) {
    uint16_t bound = 0;
    ws_server_port(srv, &bound);
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    printf("page: http://%s%s%s:%u/\n", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)bound);
    fflush(stdout);
}

#endif
