#define _GNU_SOURCE
#include "check.h"

#include <errno.h>

int check_passed;
int check_failed;

static int verbose(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("WSTEST_VERBOSE");
        v = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
    }
    return v;
}

static void vreport(int ok, const char *file, int line, const char *fmt, va_list ap) {
    if (ok) {
        __atomic_add_fetch(&check_passed, 1, __ATOMIC_SEQ_CST);
        if (!verbose()) return;
    } else {
        __atomic_add_fetch(&check_failed, 1, __ATOMIC_SEQ_CST);
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    flockfile(stdout);
    printf("%s %s:%d: %s\n", ok ? "ok  " : "FAIL", file, line, msg);
    fflush(stdout);
    funlockfile(stdout);
}

void check_report(int ok, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(ok, file, line, fmt, ap);
    va_end(ap);
}

int check_bool(int ok, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(ok, file, line, fmt, ap);
    va_end(ap);
    return ok;
}

int check_res(int got, int expected, const char *what, const char *file, int line) {
    /* Read the message right away: any later wsserver call may replace it. */
    const char *err = ws_last_error();
    int ok = got == expected;
    if (ok && expected < 0 && (err == NULL || err[0] == '\0')) {
        check_report(0, file, line, "%s returned %s but ws_last_error() is empty", what,
                     ws_result_name(got));
        return 0;
    }
    if (ok) {
        check_report(1, file, line, "%s == %s%s%s", what, ws_result_name(expected), expected < 0 ? " / " : "",
                     expected < 0 ? err : "");
    } else {
        check_report(0, file, line, "%s returned %d (%s), expected %d (%s); last error: \"%s\"", what, got,
                     ws_result_name(got), expected, ws_result_name(expected), err ? err : "(NULL)");
    }
    return ok;
}

int check_int(long long got, long long expected, const char *what, const char *file, int line) {
    int ok = got == expected;
    check_report(ok, file, line, "%s == %lld (expected %lld)", what, got, expected);
    return ok;
}

int check_str(const char *got, const char *expected, const char *what, const char *file, int line) {
    int ok;
    if (got == NULL || expected == NULL) {
        ok = got == expected;
    } else {
        ok = strcmp(got, expected) == 0;
    }
    check_report(ok, file, line, "%s == \"%s\" (expected \"%s\")", what, got ? got : "(NULL)",
                 expected ? expected : "(NULL)");
    return ok;
}

int check_summary(const char *program) {
    int p = __atomic_load_n(&check_passed, __ATOMIC_SEQ_CST);
    int f = __atomic_load_n(&check_failed, __ATOMIC_SEQ_CST);
    printf("%s: %d passed, %d failed\n", program, p, f);
    fflush(stdout);
    return f == 0 && p > 0 ? 0 : 1;
}

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int scaled(int ms) {
    static int scale = 0;
    if (scale == 0) {
        const char *e = getenv("WSTEST_TIMEOUT_SCALE");
        int s = e ? atoi(e) : 1;
        scale = s > 0 ? s : 1;
    }
    return ms * scale;
}
