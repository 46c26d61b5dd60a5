/* A tiny test harness: assertion macros that print both values, and temp dirs. */
#ifndef TOWER_TEST_H
#define TOWER_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_failures;
static int test_checks;

#define T_FAIL(...)                                                            \
    do {                                                                       \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                  \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        test_failures++;                                                       \
    } while (0)

#define T_ASSERT(cond)                                                         \
    do {                                                                       \
        test_checks++;                                                         \
        if (!(cond)) T_FAIL("%s", #cond);                                      \
    } while (0)

#define T_EQ_INT(a, b)                                                         \
    do {                                                                       \
        long long va_ = (long long)(a), vb_ = (long long)(b);                  \
        test_checks++;                                                         \
        if (va_ != vb_) T_FAIL("%s == %s: %lld != %lld", #a, #b, va_, vb_);     \
    } while (0)

#define T_EQ_STR(a, b)                                                         \
    do {                                                                       \
        const char *sa_ = (a), *sb_ = (b);                                     \
        test_checks++;                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                             \
            T_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, sa_ ? sa_ : "(null)",  \
                   sb_ ? sb_ : "(null)");                                      \
    } while (0)

/* Run one test function by name, printing its outcome. */
#define T_RUN(fn)                                                              \
    do {                                                                       \
        int before_ = test_failures;                                           \
        fn();                                                                  \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

/* Close a test binary: the summary line and the exit code. */
static inline int t_done(void)
{
    fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}

/* A fresh temporary directory for the caller to remove with t_rmdir. */
static inline char *t_tmpdir(void)
{
    char tmpl[] = "/tmp/tower-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(2);
    }
    return strdup(d);
}

static inline void t_rmdir(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    free(dir);
}

#endif
