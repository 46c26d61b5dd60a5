/* Who calls and what a caller may do, as pure parsing and matching (access.c, unit-tested in
 * tests/unit/test_access.c): the addresses of trusted SSO proxies (CIDRs), the mapping of a proxy's
 * groups to roles, the lines of the tokens file and their per-token policy (an ingest rate as a
 * token bucket, the source systems an ingest token may publish for). auth.c and guard.c apply them
 * to requests. Nothing here allocates: every result is written into caller-owned structs. */
#ifndef SERVER_ACCESS_H
#define SERVER_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

#define ACCESS_MAX_CIDRS 32     /* trusted proxy networks */
#define ACCESS_MAX_MAPPINGS 32  /* group=role pairs */
#define ACCESS_MAX_GROUP 127    /* bytes of a group name */
#define ACCESS_MAX_SYSTEMS 6    /* source systems of a token (there are six) */
#define ACCESS_MAX_HEADER 63    /* bytes of a header name */
#define ACCESS_MAX_NAME 63      /* bytes of a token's name */

/* A network: an IPv4 one is kept as its IPv4-mapped IPv6 form (::ffff:a.b.c.d/96+bits). */
typedef struct access_cidr {
    unsigned char addr[16];
    int bits;
} access_cidr;

/* "10.0.0.0/8, 127.0.0.1, ::1/128": up to cap networks into out. The count, or -1 with why (which
 * has room for whycap bytes) naming the entry. */
int access_cidrs_parse(const char *list, access_cidr *out, size_t cap, char *why, size_t whycap);
/* Whether addr (an IPv4 or IPv6 address as text, e.g. civetweb's remote_addr) is in one of v. */
int access_cidrs_match(const access_cidr *v, size_t n, const char *addr);

typedef struct access_mapping {
    char group[ACCESS_MAX_GROUP + 1]; /* "*": any signed-in user */
    http_role role;
} access_mapping;

/* "tower-ops=operator, tower-users=viewer, *=viewer": the count, or -1 with why. */
int access_mappings_parse(const char *list, access_mapping *out, size_t cap, char *why, size_t whycap);
/* The role of a user in groups (a header value: names separated by commas; NULL or "": none): the
 * highest of the mapped ones (operator, then viewer, then ingest). 0 with *role, or -1: no role. */
int access_groups_role(const access_mapping *m, size_t n, const char *groups, http_role *role);

/* A token's policy (the options after its hash in the tokens file). */
typedef struct access_policy {
    double rate;  /* ingest requests per second (0: no limit) */
    double burst; /* the bucket: requests at once (rate given: at least 1) */
    char systems[ACCESS_MAX_SYSTEMS][16];
    size_t n_systems; /* 0: any source system */
} access_policy;

/* One line of the tokens file: "NAME ROLE SHA256HEX [rate=N/s|N/m|N/h] [burst=N] [systems=a,b]". */
typedef struct access_token_line {
    char name[ACCESS_MAX_NAME + 1];
    http_role role;
    unsigned char hash[32];
    access_policy policy;
} access_token_line;

/* Parse a line ('#' starts a comment). 1: a token in *out; 0: blank; -1: why names the fault. */
int access_token_line_parse(const char *line, access_token_line *out, char *why, size_t whycap);
/* Parse one option of a token ("rate=10/s", "burst=20", "systems=carrier,tms") into *p: 0, or -1. */
int access_policy_option(const char *opt, access_policy *p, char *why, size_t whycap);
/* Finish a policy after its options: the default burst. */
void access_policy_finish(access_policy *p);
/* Whether p lets its token publish events of this source system. */
int access_policy_system_ok(const access_policy *p, const char *system);

/* A token bucket: level requests available at last_ns (monotonic). Zero it to start full. */
typedef struct access_bucket {
    double level;
    int64_t last_ns;
    int started;
} access_bucket;

/* Take one request at now_ns: 0 when taken, else the whole seconds to wait before one is (>= 1). */
int64_t access_bucket_take(access_bucket *b, const access_policy *p, int64_t now_ns);

#endif
