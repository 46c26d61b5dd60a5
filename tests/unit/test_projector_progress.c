/* Unit tests of a rebuild's progress line: the total never below what is done, the ETA never absurd. */
#include "projector.h"
#include "test.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The figures of one line: done, total and ETA seconds. */
static void parse(const char *line, uint64_t *done, uint64_t *total, double *eta)
{
    const char *p = strstr(line, "%  ");
    T_ASSERT(p != NULL);
    T_EQ_INT(sscanf(p + 3, "%" SCNu64 "/%" SCNu64, done, total), 2);
    const char *e = strstr(line, "ETA ");
    T_ASSERT(e != NULL);
    T_EQ_INT(sscanf(e + 4, "%lf", eta), 1);
}

static void test_progress_midway(void)
{
    char line[160];
    uint64_t done, total;
    double eta;
    projector_progress_format(line, sizeof line, 500, 0, 1000, 10.0);
    T_ASSERT(strstr(line, " 50.0%") != NULL);
    parse(line, &done, &total, &eta);
    T_EQ_INT(done, 500);
    T_EQ_INT(total, 1000);
    T_EQ_INT((long long)eta, 10); /* 50 events/s, 500 left */
}

/* The stream grew past the target read at the start: the last batch brought sequences beyond it. */
static void test_progress_beyond_target(void)
{
    char line[160];
    uint64_t done, total;
    double eta;
    projector_progress_format(line, sizeof line, 10309, 0, 10306, 2.0);
    T_ASSERT(strstr(line, "100.0%") != NULL);
    parse(line, &done, &total, &eta);
    T_ASSERT(done <= total);
    T_EQ_INT(total, 10309);
    T_EQ_INT((long long)eta, 0);
}

/* Degenerate figures: nothing done yet, no time elapsed, a store that began beyond the target. */
static void test_progress_degenerate(void)
{
    char line[160];
    uint64_t done, total;
    double eta;
    projector_progress_format(line, sizeof line, 0, 0, 1000, 0.0);
    parse(line, &done, &total, &eta);
    T_EQ_INT(total, 1000);
    T_EQ_INT((long long)eta, 0);
    projector_progress_format(line, sizeof line, 40, 50, 30, 1.0);
    parse(line, &done, &total, &eta);
    T_ASSERT(done <= total);
    T_ASSERT(eta >= 0 && eta < 86400);
    projector_progress_format(line, sizeof line, 1000, 1000, 1000, 0.0);
    T_ASSERT(strstr(line, "100.0%") != NULL);
    parse(line, &done, &total, &eta);
    T_EQ_INT((long long)eta, 0);
}

int main(void)
{
    T_RUN(test_progress_midway);
    T_RUN(test_progress_beyond_target);
    T_RUN(test_progress_degenerate);
    return t_done();
}
