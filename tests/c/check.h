/*
 * A tiny assertion kit for the C tests: every CHECK counts a pass or a
 * failure (printed with file:line), and check_summary() prints
 * "N passed, M failed" and gives the exit status.
 */
#ifndef WSTEST_CHECK_H
#define WSTEST_CHECK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsserver.h"

extern int check_passed;
extern int check_failed;

void check_report(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CHECK(cond, "what", ...): counts one check. Evaluates to cond. */
#define CHECK(cond, ...) check_bool(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
int check_bool(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CHECK_RES(call, expected): the call returns exactly `expected`; when that
 * is an error (< 0), ws_last_error() must also say something. */
#define CHECK_RES(call, expected) check_res((int)(call), (int)(expected), #call, __FILE__, __LINE__)
int check_res(int got, int expected, const char *what, const char *file, int line);

#define CHECK_INT(got, expected) \
    check_int((long long)(got), (long long)(expected), #got, __FILE__, __LINE__)
int check_int(long long got, long long expected, const char *what, const char *file, int line);

#define CHECK_STR(got, expected) check_str((got), (expected), #got, __FILE__, __LINE__)
int check_str(const char *got, const char *expected, const char *what, const char *file, int line);

/* Prints "N passed, M failed"; returns the process exit status. */
int check_summary(const char *program);

/* Monotonic milliseconds. */
int64_t now_ms(void);
void sleep_ms(int ms);

/* Timeouts are multiplied by $WSTEST_TIMEOUT_SCALE (e.g. under valgrind). */
int scaled(int ms);

#endif
