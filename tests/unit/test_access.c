/* Unit tests of who calls and what a caller may do (services/server/src/access.c): trusted proxy
 * networks, groups mapped to roles, tokens-file lines with policies, the ingest token bucket. */
#include "test.h"

#include "access.h"

static void test_cidrs(void)
{
    access_cidr v[4];
    char why[200];
    T_EQ_INT(access_cidrs_parse("127.0.0.1, 10.1.0.0/16 ,::1,fd00::/8", v, 4, why, sizeof why), 4);
    T_ASSERT(access_cidrs_match(v, 4, "127.0.0.1"));
    T_ASSERT(!access_cidrs_match(v, 4, "127.0.0.2"));
    T_ASSERT(access_cidrs_match(v, 4, "10.1.255.3"));
    T_ASSERT(!access_cidrs_match(v, 4, "10.2.0.1"));
    T_ASSERT(access_cidrs_match(v, 4, "::ffff:10.1.0.9")); /* IPv4 on an IPv6 socket */
    T_ASSERT(access_cidrs_match(v, 4, "::1"));
    T_ASSERT(access_cidrs_match(v, 4, "fd12::5"));
    T_ASSERT(!access_cidrs_match(v, 4, "fe80::1"));
    T_ASSERT(!access_cidrs_match(v, 4, "not an address"));
    T_ASSERT(!access_cidrs_match(v, 4, NULL));
    T_EQ_INT(access_cidrs_parse("0.0.0.0/0", v, 4, why, sizeof why), 1);
    T_ASSERT(access_cidrs_match(v, 1, "203.0.113.9"));
    T_ASSERT(!access_cidrs_match(v, 1, "2001:db8::1")); /* an IPv4 network holds no IPv6 address */
    T_EQ_INT(access_cidrs_parse("", v, 4, why, sizeof why), 0);
    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::1/129", "example.com", "1.2.3.4/-1",
                         "1,2,3,4,5", "999.1.1.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        T_EQ_INT(access_cidrs_parse(bad[i], v, 4, why, sizeof why), -1);
        T_ASSERT(why[0] != 0);
    }
    char huge[300];
    memset(huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    T_EQ_INT(access_cidrs_parse(huge, v, 4, why, sizeof why), -1);
}

static void test_groups(void)
{
    access_mapping m[4];
    char why[200];
    http_role r = HTTP_ROLE_INGEST;
    T_EQ_INT(access_mappings_parse("tower-ops=operator, tower-view = viewer,erp=ingest", m, 4, why, sizeof why), 3);
    T_EQ_STR(m[1].group, "tower-view");
    T_EQ_INT(access_groups_role(m, 3, "staff, tower-view", &r), 0);
    T_EQ_INT(r, HTTP_ROLE_VIEWER);
    T_EQ_INT(access_groups_role(m, 3, "tower-view,tower-ops", &r), 0);
    T_EQ_INT(r, HTTP_ROLE_OPERATOR); /* the highest wins, whatever the order */
    T_EQ_INT(access_groups_role(m, 3, "erp", &r), 0);
    T_EQ_INT(r, HTTP_ROLE_INGEST);
    T_EQ_INT(access_groups_role(m, 3, "tower-viewers", &r), -1); /* whole names only */
    T_EQ_INT(access_groups_role(m, 3, "", &r), -1);
    T_EQ_INT(access_groups_role(m, 3, NULL, &r), -1);
    T_EQ_INT(access_mappings_parse("*=viewer,admins=operator", m, 4, why, sizeof why), 2);
    T_EQ_INT(access_groups_role(m, 2, NULL, &r), 0);
    T_EQ_INT(r, HTTP_ROLE_VIEWER);
    T_EQ_INT(access_groups_role(m, 2, "admins", &r), 0);
    T_EQ_INT(r, HTTP_ROLE_OPERATOR);
    const char *bad[] = {"ops", "=viewer", "ops=admin", "ops=", "a=viewer,b=viewer,c=viewer,d=viewer,e=viewer"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) T_EQ_INT(access_mappings_parse(bad[i], m, 4, why, sizeof why), -1);
}

#define HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static void test_token_lines(void)
{
    access_token_line t;
    char why[200];
    T_EQ_INT(access_token_line_parse("wall viewer " HEX "\n", &t, why, sizeof why), 1);
    T_EQ_STR(t.name, "wall");
    T_EQ_INT(t.role, HTTP_ROLE_VIEWER);
    T_EQ_INT(t.hash[0], 0x9f);
    T_ASSERT(t.policy.rate == 0 && t.policy.n_systems == 0);
    T_EQ_INT(access_token_line_parse("  # a comment\n", &t, why, sizeof why), 0);
    T_EQ_INT(access_token_line_parse("\n", &t, why, sizeof why), 0);
    T_EQ_INT(access_token_line_parse("dhl ingest sha256:" HEX " rate=120/m systems=carrier # DHL\n", &t, why, sizeof why), 1);
    T_ASSERT(t.policy.rate > 1.99 && t.policy.rate < 2.01);
    T_ASSERT(t.policy.burst == 2);
    T_EQ_INT(t.policy.n_systems, 1);
    T_ASSERT(access_policy_system_ok(&t.policy, "carrier"));
    T_ASSERT(!access_policy_system_ok(&t.policy, "erp"));
    T_ASSERT(!access_policy_system_ok(&t.policy, NULL));
    T_ASSERT(access_policy_system_ok(NULL, "erp"));
    T_EQ_INT(access_token_line_parse("erp ingest " HEX " rate=0.5/s burst=10 systems=erp,finance", &t, why, sizeof why), 1);
    T_ASSERT(t.policy.burst == 10);
    T_EQ_INT(t.policy.n_systems, 2);
    T_ASSERT(access_policy_system_ok(&t.policy, "finance"));
    const char *bad[] = {
        "wall viewer",                                  /* no hash */
        "wall admin " HEX,                              /* no such role */
        "wall viewer twr_0123",                         /* the token itself */
        "wall viewer " HEX " rate=10/s",                /* a policy on a non-ingest token */
        "erp ingest " HEX " rate=10",                   /* no unit */
        "erp ingest " HEX " rate=0/s",
        "erp ingest " HEX " rate=-1/s",
        "erp ingest " HEX " rate=nan/s",
        "erp ingest " HEX " burst=5",                   /* burst without rate */
        "erp ingest " HEX " rate=1/s burst=0",
        "erp ingest " HEX " systems=",
        "erp ingest " HEX " systems=erp,sap",           /* no such system */
        "erp ingest " HEX " systems=erp,erp,erp,erp,erp,erp,erp",
        "erp ingest " HEX " colour=blue",               /* no such option */
        "a-name-that-is-far-too-long-for-the-tokens-file-0123456789abcdefgh ingest " HEX,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        if (access_token_line_parse(bad[i], &t, why, sizeof why) != -1) T_FAIL("accepted: %s", bad[i]);
        T_ASSERT(why[0] != 0);
    }
    char longline[2000];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    T_EQ_INT(access_token_line_parse(longline, &t, why, sizeof why), -1);
}

static void test_bucket(void)
{
    access_policy p = {.rate = 2, .burst = 3};
    access_bucket b = {0};
    int64_t t0 = 1000000000000LL, s = 1000000000LL;
    for (int i = 0; i < 3; i++) T_EQ_INT(access_bucket_take(&b, &p, t0), 0); /* a full bucket: the burst */
    T_EQ_INT(access_bucket_take(&b, &p, t0), 1);                              /* empty: 0.5 s to one more, said 1 */
    T_EQ_INT(access_bucket_take(&b, &p, t0 + s / 2), 0);                      /* refilled by the rate */
    T_EQ_INT(access_bucket_take(&b, &p, t0 + s / 2), 1);
    T_EQ_INT(access_bucket_take(&b, &p, t0 + 100 * s), 0);                    /* never above the burst */
    T_EQ_INT(access_bucket_take(&b, &p, t0 + 100 * s), 0);
    T_EQ_INT(access_bucket_take(&b, &p, t0 + 100 * s), 0);
    T_EQ_INT(access_bucket_take(&b, &p, t0 + 100 * s), 1);
    access_policy slow = {.rate = 1.0 / 60, .burst = 1};
    access_bucket b2 = {0};
    T_EQ_INT(access_bucket_take(&b2, &slow, t0), 0);
    T_EQ_INT(access_bucket_take(&b2, &slow, t0), 60); /* Retry-After: a minute */
    T_EQ_INT(access_bucket_take(&b2, &slow, t0 - s), 60); /* a clock that went back refills nothing */
    access_policy none = {0};
    for (int i = 0; i < 100; i++) T_EQ_INT(access_bucket_take(&b2, &none, t0), 0);
}

int main(void)
{
    T_RUN(test_cidrs);
    T_RUN(test_groups);
    T_RUN(test_token_lines);
    T_RUN(test_bucket);
    return t_done();
}
