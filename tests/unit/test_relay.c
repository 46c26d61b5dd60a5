/* Unit tests of the outbound relay's pure parts: the relay file, the destinations' filters, Standard Webhooks
 * secrets and signatures, the email a kind = email destination sends, the backoff, Retry-After and the
 * circuit breaker. */
#include "relay.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define S(ns) ((int64_t)(ns) * 1000000000LL)

/*
 * The Standard Webhooks specification's example (also in its reference libraries' tests), checked
 * independently with Python:
 *   key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
 *   msg = b"msg_p5jXN8AQM9LWM0D4loKWxJek" + b"." + b"1614265330" + b"." + b'{"test": 2432232314}'
 *   "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
 */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_KEY_HEX "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS INT64_C(1614265330)
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* A second secret for the environment: the 32 bytes 1..32 (base64.b64encode(bytes(range(1, 33)))). */
#define ENV_SECRET "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

static char *dir;

static char *hex(const unsigned char *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) sprintf(s + 2 * i, "%02x", p[i]);
    s[2 * n] = '\0';
    return s;
}

/* A file in the test dir with the given text; the path for the caller to free. */
static char *write_file(const char *name, const char *text)
{
    char *path = ct_sprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* Write text as relay.ini and load it; err receives the message. */
static ct_status load(const char *text, relay_conf *c, char *err, size_t cap)
{
    char *path = write_file("relay.ini", text);
    err[0] = '\0';
    ct_status st = relay_conf_load(path, c, err, cap);
    free(path);
    return st;
}

/* ---- the relay file ---------------------------------------------------------------------------------------- */

static void conf_good(void)
{
    char *secret = write_file("ops.secret", "  " VEC_SECRET "  \n");
    setenv("RELAY_TEST_SECRET", ENV_SECRET, 1);
    char *text = ct_sprintf("; the relay's destinations\n"
                            "[destination ops-hook]\n"
                            "url = https://hooks.example.com/tower\n"
                            "kind = webhook\n"
                            "secret_file = %s\n"
                            "events = routeDispatched , orderHeld,exceptionReopened\n"
                            "warehouses = dc-1, dc-2\n"
                            "carriers = dhl\n"
                            "timeout = 500ms\n"
                            "max_attempts = 3\n"
                            "backoff_min = 2s\n"
                            "backoff_max = 2m\n"
                            "breaker_failures = 7\n"
                            "breaker_cooldown = 1m\n"
                            "\n"
                            "# the second, signed from the environment, with every default\r\n"
                            "  [destination Audit_2]\r\n"
                            "  url = http://127.0.0.1:9000/in\r\n"
                            "  secret_env = RELAY_TEST_SECRET\r\n"
                            "  events = *\r\n"
                            "[destination chat]\n"
                            "kind = slack\n"
                            "events = deliveryAttempted ; an inline comment\n"
                            "url = https://hooks.slack.example/services/T0/B0/xyz\n"
                            "[destination mail]\n"
                            "from = tower@example.com\n" /* before kind: the keys do not depend on the order */
                            "kind = email\n"
                            "url = smtp://127.0.0.1:2525\n"
                            "to = ops@example.com , Other.Person+tower@mail.example.co.uk\n"
                            "subject_prefix = [dc-1 tower]\n"
                            "username_env = RELAY_TEST_USER\n"
                            "password_env = RELAY_TEST_PASSWORD\n"
                            "events = deliveryCompleted\n"
                            "warehouses = dc-1\n"
                            "max_attempts = 4\n"
                            "[destination mail2]\n"
                            "kind = email\n"
                            "url = smtps://mail.example.com\n"
                            "from = t@localhost\n"
                            "to = a@localhost\n"
                            "events = *\n",
                            secret);
    setenv("RELAY_TEST_USER", "tower-relay", 1);
    setenv("RELAY_TEST_PASSWORD", "pa ss=w0rd", 1);
    relay_conf c;
    char err[512];
    T_EQ_INT(load(text, &c, err, sizeof err), CT_OK);
    T_EQ_STR(err, "");
    T_EQ_INT(c.n, 5);
    if (c.n == 5) {
        relay_dest *d = &c.v[0];
        T_EQ_STR(d->name, "ops-hook");
        T_EQ_STR(d->url, "https://hooks.example.com/tower");
        T_EQ_INT(d->kind, RELAY_WEBHOOK);
        char *h = d->secret ? hex(d->secret, d->secret_len) : NULL;
        T_EQ_STR(h, VEC_KEY_HEX);
        free(h);
        T_EQ_INT(d->n_events, 3);
        if (d->n_events == 3) {
            T_EQ_STR(d->events[0], "routeDispatched");
            T_EQ_STR(d->events[1], "orderHeld");
            T_EQ_STR(d->events[2], "exceptionReopened");
        }
        T_EQ_INT(d->n_warehouses, 2);
        if (d->n_warehouses == 2) {
            T_EQ_STR(d->warehouses[0], "dc-1");
            T_EQ_STR(d->warehouses[1], "dc-2");
        }
        T_EQ_INT(d->n_carriers, 1);
        if (d->n_carriers == 1) T_EQ_STR(d->carriers[0], "dhl");
        T_EQ_INT(d->timeout_ns, 500000000);
        T_EQ_INT(d->max_attempts, 3);
        T_EQ_INT(d->backoff_min_ns, S(2));
        T_EQ_INT(d->backoff_max_ns, S(120));
        T_EQ_INT(d->breaker_failures, 7);
        T_EQ_INT(d->breaker_cooldown_ns, S(60));

        /* The defaults of relay.h, and a secret from the environment. */
        d = &c.v[1];
        T_EQ_STR(d->name, "Audit_2");
        T_EQ_STR(d->url, "http://127.0.0.1:9000/in");
        T_EQ_INT(d->kind, RELAY_WEBHOOK);
        T_EQ_INT(d->secret_len, 32);
        T_ASSERT(d->secret && d->secret[0] == 1 && d->secret[31] == 32);
        T_EQ_INT(d->n_events, 1);
        if (d->n_events == 1) T_EQ_STR(d->events[0], "*");
        T_EQ_INT(d->n_warehouses, 0);
        T_EQ_INT(d->n_carriers, 0);
        T_EQ_INT(d->timeout_ns, S(5));
        T_EQ_INT(d->max_attempts, 8);
        T_EQ_INT(d->backoff_min_ns, S(1));
        T_EQ_INT(d->backoff_max_ns, S(300));
        T_EQ_INT(d->breaker_failures, 5);
        T_EQ_INT(d->breaker_cooldown_ns, S(30));

        d = &c.v[2];
        T_EQ_STR(d->name, "chat");
        T_EQ_INT(d->kind, RELAY_SLACK);
        T_ASSERT(d->secret == NULL);
        T_EQ_INT(d->secret_len, 0);
        T_EQ_INT(d->n_events, 1);
        if (d->n_events == 1) T_EQ_STR(d->events[0], "deliveryAttempted");
        /* Not email: none of its fields. */
        for (int i = 0; i < 3; i++)
            T_ASSERT(!c.v[i].mail_from && !c.v[i].mail_to && !c.v[i].n_mail_to && !c.v[i].subject_prefix &&
                     !c.v[i].smtp_user && !c.v[i].smtp_password);

        d = &c.v[3];
        T_EQ_STR(d->name, "mail");
        T_EQ_INT(d->kind, RELAY_EMAIL);
        T_EQ_STR(d->url, "smtp://127.0.0.1:2525");
        T_EQ_STR(d->mail_from, "tower@example.com");
        T_EQ_INT(d->n_mail_to, 2);
        if (d->n_mail_to == 2) {
            T_EQ_STR(d->mail_to[0], "ops@example.com");
            T_EQ_STR(d->mail_to[1], "Other.Person+tower@mail.example.co.uk");
        }
        T_EQ_STR(d->subject_prefix, "[dc-1 tower]");
        T_EQ_STR(d->smtp_user, "tower-relay");
        T_EQ_STR(d->smtp_password, "pa ss=w0rd");
        T_ASSERT(d->secret == NULL);
        T_EQ_INT(d->n_warehouses, 1);
        T_EQ_INT(d->max_attempts, 4);
        T_EQ_INT(d->timeout_ns, S(5));

        d = &c.v[4];
        T_EQ_STR(d->name, "mail2");
        T_EQ_INT(d->kind, RELAY_EMAIL);
        T_EQ_STR(d->url, "smtps://mail.example.com");
        T_EQ_STR(d->mail_from, "t@localhost");
        T_EQ_INT(d->n_mail_to, 1);
        T_EQ_STR(d->subject_prefix, "[tower]"); /* the default */
        T_ASSERT(d->smtp_user == NULL && d->smtp_password == NULL);
    }
    relay_conf_free(&c);
    T_EQ_INT(c.n, 0);
    relay_conf_free(&c); /* twice: a no-op */
    relay_conf_free(NULL);
    unsetenv("RELAY_TEST_SECRET");
    unsetenv("RELAY_TEST_USER");
    unsetenv("RELAY_TEST_PASSWORD");
    free(text);
    free(secret);
}

/* Every error names FILE:LINE and the problem, and leaves *out empty. */
static void conf_errors(void)
{
    setenv("RELAY_TEST_EMPTY", "", 1);
    unsetenv("RELAY_TEST_UNSET");
    setenv("RELAY_TEST_GOOD", ENV_SECRET, 1);
    setenv("RELAY_TEST_CTRL", "pass\r\nword", 1);
    static const struct {
        const char *text;
        int line;
        const char *problem;
    } cases[] = {
        {"[destination a]\nurl = http://x\nurll = http://y\n", 3, "unknown key \"urll\""},
        {"[destination a]\nurl = http://x\n[dest b]\nurl = http://y\n", 3, "unknown section [dest b]"},
        {"[relay]\n", 1, "unknown section [relay]"},
        {"url = http://x\n[destination a]\n", 1, "key \"url\" outside a [destination NAME] section"},
        {"[destination a]\nurl = ftp://x/in\n", 2, "url must start with http:// or https://"},
        {"[destination a]\nurl = hooks.example.com\n", 2, "url must start with http:// or https://"},
        {"[destination a]\nurl = https://\n", 2, "url has no host"},
        {"[destination a]\nurl = https://x/a b\n", 2, "url contains a blank"},
        {"[destination a]\nurl = http://x\ntimeout = 5x\n", 3, "timeout \"5x\" is not a positive duration"},
        {"[destination a]\nurl = http://x\nbackoff_max = 0s\n", 3, "backoff_max \"0s\" is not a positive duration"},
        {"[destination a]\nurl = http://x\nbreaker_cooldown = -1s\n", 3, "breaker_cooldown \"-1s\" is not"},
        {"[destination a]\nurl = http://x\nevents = routeDispatched, routeDispached\n", 3,
         "unknown event type \"routeDispached\""},
        {"[destination a]\nurl = http://x\nevents = route_dispatched\n", 3, "unknown event type \"route_dispatched\""},
        {"[destination a]\nurl = http://x\nevents = *, orderHeld\n", 3, "\"*\" (all) stands alone"},
        {"[destination a]\nurl = http://x\nevents = orderHeld,,orderReleased\n", 3, "events has an empty item"},
        {"[destination a]\nurl = http://x\nevents =\n", 3, "events has an empty item"},
        {"[destination a]\nurl = http://x\nwarehouses = dc/1\n", 3, "warehouse \"dc/1\" is not an id"},
        {"[destination a]\nurl = http://x\ncarriers = dhl, \n", 3, "carriers has an empty item"},
        {"[destination a]\nurl = http://x\n\n[destination a]\nurl = http://y\n", 4,
         "destination a is defined twice (first on line 1)"},
        {"[destination a]\nurl = http://x\nevents = *\n[destination b]\nkind = slack\n", 4, "destination b has no url"},
        {"[destination a]\nurl = http://x\nwarehouses = dc-1\n", 1,
         "destination a has no events (event types such as routeDispatched, or * for all)"},
        {"[destination a/b]\nurl = http://x\n", 1, "destination name \"a/b\" must be 1-64 characters"},
        {"[destination a b]\nurl = http://x\n", 1, "destination name \"a b\" must be"},
        {"[destination "
         "a12345678901234567890123456789012345678901234567890123456789012345]\nurl = http://x\n",
         1, "must be 1-64 characters"},
        {"[destination]\nurl = http://x\n", 1, "[destination] needs a name"},
        {"[destination a\nurl = http://x\n", 1, "section header without ']'"},
        {"[destination a]\nurl = http://x\nkind = teams\n", 3, "kind \"teams\" is not webhook, slack, email or route_planner"},
        {"[destination a]\nurl = http://x\nmax_attempts = 0\n", 3, "max_attempts \"0\" is not a positive integer"},
        {"[destination a]\nurl = http://x\nbreaker_failures = many\n", 3, "breaker_failures \"many\" is not"},
        {"[destination a]\nurl = http://x\nurl = http://y\n", 3, "key \"url\" given twice (first on line 2)"},
        {"[destination a]\nurl = http://x\nevents = *\nbackoff_min = 10s\nbackoff_max = 5s\n", 5,
         "backoff_min is longer than backoff_max"},
        {"[destination a]\nurl = http://x\nsecret_env = RELAY_TEST_UNSET\n", 3,
         "environment variable RELAY_TEST_UNSET is not set"},
        {"[destination a]\nurl = http://x\nsecret_env = RELAY_TEST_EMPTY\n", 3,
         "environment variable RELAY_TEST_EMPTY is not set"},
        {"[destination a]\nurl = http://x\nsecret_env = RELAY_TEST_UNSET\nsecret_file = /x\n", 3, "is not set"},
        {"[destination a]\nurl = http://x\nthis line has no equals sign\n", 3, "syntax error"},
        /* kind = email: its keys, and the keys it does not take (wherever kind is written). */
#define M "[destination m]\nkind = email\nurl = smtp://127.0.0.1:2525\nevents = *\n"
#define MFT "from = tower@example.com\nto = ops@example.com\n"
        {M MFT "secret_env = RELAY_TEST_GOOD\n", 7, "destination m: secret_env is not for kind = email"},
        {"[destination m]\nsecret_env = RELAY_TEST_GOOD\nurl = smtp://x\nevents = *\n" MFT "kind = email\n", 2,
         "destination m: secret_env is not for kind = email"},
        {"[destination a]\nurl = http://x\nevents = *\nfrom = tower@example.com\n", 4,
         "destination a: from is only for kind = email"},
        {"[destination a]\nurl = http://x\nkind = slack\nevents = *\nto = a@b.c\nsubject_prefix = [x]\n", 5,
         "destination a: to is only for kind = email"},
        {"[destination a]\nurl = http://x\nevents = *\npassword_env = RELAY_TEST_GOOD\n", 4,
         "destination a: password_env is only for kind = email"},
        {"[destination m]\nkind = email\nurl = https://mail.example.com/\nevents = *\n" MFT, 3,
         "destination m: a kind = email url starts with smtp:// or smtps://"},
        {"[destination a]\nurl = smtp://mail.example.com:25\nevents = *\n", 2,
         "destination a: url must start with http:// or https:// (smtp:// is for kind = email)"},
        {"[destination m]\nkind = email\nurl = smtp://u:hunter2@mail.example.com\n", 3,
         "url carries credentials: give them with username_env and password_env"},
        {"[destination m]\nurl = smtps://\n", 2, "url has no host"},
        {"[destination a]\nurl = imap://mail.example.com\n", 2,
         "url must start with http:// or https:// (smtp:// or smtps:// for kind = email)"},
        {M "from = tower@example.com\n", 1, "destination m: kind = email needs from and to"},
        {M "to = ops@example.com\n", 1, "destination m: kind = email needs from and to"},
        {M "from = tower at example.com\n", 5, "from \"tower at example.com\" is not an email address (local@domain)"},
        {M "from = tower@\n", 5, "from \"tower@\" is not an email address"},
        {M "from = @example.com\n", 5, "from \"@example.com\" is not an email address"},
        {M "from = tower@example..com\n", 5, "is not an email address"},
        {M "from = <tower@example.com>\n", 5, "is not an email address"},
        {M "from = a,b@example.com\n", 5, "is not an email address"},
        {M "to = ops@example.com, ops\n", 5, "to: \"ops\" is not an email address (local@domain)"},
        {M "to = ops@example.com,, b@example.com\n", 5, "to has an empty item"},
        {M "to = ops@exa_mple.com\n", 5, "to: \"ops@exa_mple.com\" is not an email address"},
        {M "to = a@x.y,b@x.y,c@x.y,d@x.y,e@x.y,f@x.y,g@x.y,h@x.y,i@x.y,j@x.y,k@x.y,l@x.y,m@x.y,n@x.y,o@x.y,"
           "p@x.y,q@x.y,r@x.y,s@x.y,t@x.y,u@x.y\n",
         5, "to has 21 addresses: at most 20"},
        {M "subject_prefix = [t\xc3\xb6wer]\n", 5, "subject_prefix must be 1-64 printable ASCII characters"},
        {M "subject_prefix = 12345678901234567890123456789012345678901234567890123456789012345\n", 5,
         "subject_prefix must be 1-64"},
        {M MFT "username_env = RELAY_TEST_UNSET\npassword_env = RELAY_TEST_GOOD\n", 7,
         "username_env: environment variable RELAY_TEST_UNSET is not set"},
        {M MFT "username_env = RELAY_TEST_GOOD\npassword_env = RELAY_TEST_EMPTY\n", 8,
         "password_env: environment variable RELAY_TEST_EMPTY is not set"},
        {M MFT "username_env =\n", 7, "username_env needs a value"},
        {M MFT "username_env = RELAY_TEST_GOOD\npassword_env = RELAY_TEST_CTRL\n", 8,
         "password_env: environment variable RELAY_TEST_CTRL holds a control character"},
        {M MFT "username_env = RELAY_TEST_GOOD\n", 7, "destination m: username_env and password_env go together"},
        {M MFT "password_env = RELAY_TEST_GOOD\n", 7, "destination m: username_env and password_env go together"},
        {M MFT "to = other@example.com\n", 7, "key \"to\" given twice (first on line 6)"},
        {M MFT "colour = blue\n", 7, "for kind = email from, to, subject_prefix, username_env, password_env"},
#undef M
#undef MFT
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        relay_conf c = {.n = 99};
        char err[512];
        ct_status st = load(cases[i].text, &c, err, sizeof err);
        char *want = ct_sprintf("%s/relay.ini:%d: ", dir, cases[i].line);
        test_checks++;
        if (st != CT_INVALID || strncmp(err, want, strlen(want)) != 0 || !strstr(err, cases[i].problem))
            T_FAIL("case %zu: status %d, err \"%s\"; wanted CT_INVALID, \"%s...%s\"", i, (int)st, err, want,
                   cases[i].problem);
        T_ASSERT(c.n == 0 && c.v == NULL);
        T_ASSERT(strstr(err, "hunter2") == NULL);
        free(want);
    }
    unsetenv("RELAY_TEST_EMPTY");
    unsetenv("RELAY_TEST_GOOD");
    unsetenv("RELAY_TEST_CTRL");
}

/* Errors that depend on two lines, the whole file, or other files. */
static void conf_errors_whole(void)
{
    relay_conf c;
    char err[512];
    /* Both secret sources: the second one is the mistake. */
    char *secret = write_file("s.secret", VEC_SECRET "\n");
    char *text = ct_sprintf("[destination a]\nurl = http://x\nsecret_file = %s\nsecret_env = HOME\n", secret);
    T_EQ_INT(load(text, &c, err, sizeof err), CT_INVALID);
    char *want = ct_sprintf("%s/relay.ini:4: secret_file and secret_env exclude each other", dir);
    T_ASSERT(strncmp(err, want, strlen(want)) == 0);
    free(want);
    free(text);

    /* A Slack incoming webhook is not signed: a secret there is a mistake. */
    text = ct_sprintf("[destination a]\nkind = slack\nsecret_file = %s\nurl = http://x\nevents = *\n", secret);
    T_EQ_INT(load(text, &c, err, sizeof err), CT_INVALID);
    want = ct_sprintf("%s/relay.ini:3: destination a: a slack destination is not signed", dir);
    T_ASSERT(strncmp(err, want, strlen(want)) == 0);
    free(want);
    free(text);
    free(secret);

    /* A route planner takes no events; batch is for webhooks only, 1..RELAY_BATCH_MAX. */
    static const struct {
        const char *text, *problem;
    } kinds[] = {
        {"[destination p]\nkind = route_planner\nurl = http://x\nevents = *\n", ":4: destination p: a route_planner gets route requests"},
        {"[destination p]\nkind = route_planner\nurl = http://x\nbatch = 10\n", ":4: destination p: batch is only for kind = webhook"},
        {"[destination s]\nkind = slack\nurl = http://x\nevents = *\nbatch = 2\n", ":5: destination s: batch is only for kind = webhook"},
        {"[destination w]\nurl = http://x\nevents = *\nbatch = 501\n", ":4: batch 501 is more than 500"},
        {"[destination w]\nurl = http://x\nevents = *\nbatch = 0\n", ":4: batch \"0\" is not a positive integer"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        T_EQ_INT(load(kinds[i].text, &c, err, sizeof err), CT_INVALID);
        if (!strstr(err, kinds[i].problem)) T_FAIL("case %zu: \"%s\" lacks \"%s\"", i, err, kinds[i].problem);
    }
    T_EQ_INT(load("[destination p]\nkind = route_planner\nurl = http://x\nwarehouses = dc-1\n"
                  "[destination w]\nurl = http://y\nevents = *\nbatch = 500\n", &c, err, sizeof err), CT_OK);
    T_EQ_INT(c.n, 2);
    if (c.n == 2) {
        T_EQ_INT(c.v[0].kind, RELAY_ROUTE_PLANNER);
        T_EQ_INT(c.v[0].batch, 1);
        T_EQ_INT(c.v[1].batch, 500);
    }
    relay_conf_free(&c);

    /* No destination at all: nothing to relay. */
    T_EQ_INT(load("; nothing here\n\n", &c, err, sizeof err), CT_INVALID);
    T_ASSERT(strstr(err, "relay.ini: no [destination NAME] section") != NULL);
    T_EQ_INT(load("", &c, err, sizeof err), CT_INVALID);
    T_ASSERT(strstr(err, "no [destination NAME] section") != NULL);

    /* The relay file itself missing. */
    char *missing = ct_sprintf("%s/nope.ini", dir);
    T_EQ_INT(relay_conf_load(missing, &c, err, sizeof err), CT_IO);
    want = ct_sprintf("cannot read relay file %s: ", missing);
    T_ASSERT(strncmp(err, want, strlen(want)) == 0);
    free(want);
    free(missing);

    /* A small err buffer holds the start of the message, terminated. */
    char small[16];
    T_EQ_INT(load("[relay]\n", &c, small, sizeof small), CT_INVALID);
    T_EQ_INT(strlen(small), sizeof small - 1);
}

/* An unreadable secret file is CT_IO with its path; a bad secret is CT_INVALID; no secret is ever quoted. */
static void conf_secret_errors(void)
{
    relay_conf c;
    char err[512];
    char *missing = ct_sprintf("%s/no-such.secret", dir);
    char *text = ct_sprintf("[destination a]\nurl = http://x\n\nsecret_file = %s\n", missing);
    T_EQ_INT(load(text, &c, err, sizeof err), CT_IO);
    char *want = ct_sprintf("%s/relay.ini:4: cannot read secret file %s: No such file or directory", dir, missing);
    T_EQ_STR(err, want);
    free(want);
    free(text);
    free(missing);

    /* A directory cannot be read as a secret either. */
    text = ct_sprintf("[destination a]\nurl = http://x\nsecret_file = %s\n", dir);
    T_EQ_INT(load(text, &c, err, sizeof err), CT_IO);
    T_ASSERT(strstr(err, "relay.ini:3: cannot read secret file") != NULL);
    free(text);

    /* Bad secrets, near misses of good ones: each refused without a trace of its text. */
    static const char *const bad[] = {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",    /* a digit short */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w",   /* not base64 */
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",         /* no whsec_ */
        "whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw",  /* a blank inside */
        "whsec_",                                   /* nothing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *file = write_file("bad.secret", bad[i]);
        text = ct_sprintf("[destination a]\nurl = http://x\nsecret_file = %s\n", file);
        T_EQ_INT(load(text, &c, err, sizeof err), CT_INVALID);
        want = ct_sprintf("%s/relay.ini:3: secret file %s does not hold a Standard Webhooks secret", dir, file);
        test_checks++;
        if (strncmp(err, want, strlen(want)) != 0) T_FAIL("bad secret %zu: err \"%s\"", i, err);
        T_ASSERT(strstr(err, "MfKQ9r8") == NULL && strstr(err, "TwjUPD8") == NULL);
        free(want);
        free(text);
        free(file);

        setenv("RELAY_TEST_SECRET", bad[i], 1);
        T_EQ_INT(load("[destination a]\nurl = http://x\nsecret_env = RELAY_TEST_SECRET\n", &c, err, sizeof err),
                 CT_INVALID);
        T_ASSERT(strstr(err, "relay.ini:3: environment variable RELAY_TEST_SECRET does not hold a Standard "
                             "Webhooks secret") != NULL);
        T_ASSERT(strstr(err, "MfKQ9r8") == NULL && strstr(err, "TwjUPD8") == NULL);
    }
    unsetenv("RELAY_TEST_SECRET");

    /* A good secret, then a mistake later: the message still does not carry it. */
    char *file = write_file("good.secret", VEC_SECRET);
    text = ct_sprintf("[destination a]\nurl = http://x\nsecret_file = %s\ntimeout = soon\n", file);
    T_EQ_INT(load(text, &c, err, sizeof err), CT_INVALID);
    T_ASSERT(strstr(err, "relay.ini:4: timeout \"soon\"") != NULL);
    T_ASSERT(strstr(err, "MfKQ9r8") == NULL);
    free(text);
    free(file);
}

/* ---- filters ---------------------------------------------------------------------------------------------- */

#define EV(id, rest) \
    "{\"eventId\":\"" id "\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"wms\"}," rest "}"

static evt_event *event(const char *json)
{
    evt_event *e = NULL;
    evt_error er;
    if (evt_from_json_text(&e, json, strlen(json), &er) != CT_OK) {
        fprintf(stderr, "bad test event %s: %s\n", json, er.message);
        exit(2);
    }
    return e;
}

static void dest_wants(void)
{
    /* Warehouse and carrier on the envelope; in the payload; in both (the payload's counts); in none. */
    evt_event *dispatched = event(EV("e1", "\"routeId\":\"R1\",\"warehouseId\":\"dc-1\",\"carrierId\":\"dhl\","
                                           "\"routeDispatched\":{}"));
    evt_event *approved = event(EV("e2", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}"));
    evt_event *both = event(EV("e3", "\"orderId\":\"O1\",\"warehouseId\":\"dc-1\","
                                     "\"orderReleased\":{\"warehouseId\":\"dc-2\"}"));
    evt_event *carried = event(EV("e5", "\"routeId\":\"R1\",\"carrierId\":\"dhl\","
                                        "\"routeDispatched\":{\"carrierId\":\"ups\"}"));
    evt_event *bare = event(EV("e4", "\"orderId\":\"O1\",\"orderApproved\":{}"));

    char *all[] = {"*"}, *some[] = {"orderApproved", "routeDispatched"}, *released[] = {"orderReleased"};
    char *dc1[] = {"dc-1"}, *dc2[] = {"dc-3", "dc-2"}, *dhl[] = {"dhl"};
    relay_dest any = {.events = all, .n_events = 1};
    T_EQ_INT(relay_dest_wants(&any, dispatched), 1);
    T_EQ_INT(relay_dest_wants(&any, approved), 1);
    T_EQ_INT(relay_dest_wants(&any, bare), 1);

    relay_dest types = {.events = some, .n_events = 2};
    T_EQ_INT(relay_dest_wants(&types, dispatched), 1);
    T_EQ_INT(relay_dest_wants(&types, approved), 1);
    T_EQ_INT(relay_dest_wants(&types, both), 0);
    relay_dest only_released = {.events = released, .n_events = 1};
    T_EQ_INT(relay_dest_wants(&only_released, both), 1);
    T_EQ_INT(relay_dest_wants(&only_released, approved), 0);

    relay_dest wh1 = {.events = all, .n_events = 1, .warehouses = dc1, .n_warehouses = 1};
    T_EQ_INT(relay_dest_wants(&wh1, dispatched), 1); /* the envelope's */
    T_EQ_INT(relay_dest_wants(&wh1, approved), 0);
    T_EQ_INT(relay_dest_wants(&wh1, both), 0);       /* the payload's dc-2 wins over the envelope's dc-1 */
    T_EQ_INT(relay_dest_wants(&wh1, bare), 0);       /* no warehouse: not one of these */
    relay_dest wh2 = {.events = all, .n_events = 1, .warehouses = dc2, .n_warehouses = 2};
    T_EQ_INT(relay_dest_wants(&wh2, approved), 1);
    T_EQ_INT(relay_dest_wants(&wh2, both), 1);
    T_EQ_INT(relay_dest_wants(&wh2, dispatched), 0);

    relay_dest ca = {.events = all, .n_events = 1, .carriers = dhl, .n_carriers = 1};
    T_EQ_INT(relay_dest_wants(&ca, dispatched), 1);
    T_EQ_INT(relay_dest_wants(&ca, approved), 0);
    T_EQ_INT(relay_dest_wants(&ca, carried), 0); /* the payload's ups wins over the envelope's dhl */
    char *ups[] = {"ups"};
    relay_dest ca_ups = {.events = all, .n_events = 1, .carriers = ups, .n_carriers = 1};
    T_EQ_INT(relay_dest_wants(&ca_ups, carried), 1);
    T_EQ_INT(relay_dest_wants(&ca_ups, dispatched), 0);

    /* Every filter at once: all must pass. */
    relay_dest all3 = {.events = some, .n_events = 2, .warehouses = dc1, .n_warehouses = 1, .carriers = dhl,
                       .n_carriers = 1};
    T_EQ_INT(relay_dest_wants(&all3, dispatched), 1);
    all3.events = released;
    all3.n_events = 1;
    T_EQ_INT(relay_dest_wants(&all3, dispatched), 0);

    evt_free(dispatched);
    evt_free(approved);
    evt_free(both);
    evt_free(carried);
    evt_free(bare);
}

/* ---- the email of kind = email -------------------------------------------------------------------------------- */

/* Decode quoted-printable (RFC 2045): "=XX", soft breaks "=\r\n"; hard breaks become "\n". */
static char *qp_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    while (*s) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') s += 3;
        else if (s[0] == '=' && s[1] && s[2]) {
            char h[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            s += 3;
        } else if (s[0] == '\r' && s[1] == '\n') {
            *o++ = '\n';
            s += 2;
        } else *o++ = *s++;
    }
    *o = 0;
    return out;
}

/* The value of header name in a message (unfolded: CRLF + blank joined with a blank), or NULL. */
static char *header(const char *msg, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = msg; p && *p && !(p[0] == '\r' && p[1] == '\n');
         p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncmp(p, name, n) != 0 || p[n] != ':') continue;
        ct_buf v = {0};
        const char *q = p + n + 1;
        while (*q == ' ') q++;
        for (;;) {
            const char *end = strstr(q, "\r\n");
            ct_buf_add(&v, q, (size_t)(end - q));
            if (end[2] != ' ' && end[2] != '\t') break;
            q = end + 2;
        }
        ct_buf_addc(&v, 0);
        return v.data;
    }
    return NULL;
}

static void email_message(void)
{
    char *to[] = {"ops@example.com", "other@example.com"};
    relay_dest d = {.name = "mail", .kind = RELAY_EMAIL, .mail_from = "tower@example.com", .mail_to = to,
                    .n_mail_to = 2, .subject_prefix = "[tower]"};
    /* A long reason with '=', non-ASCII and a trailing blank: quoted-printable keeps every byte. */
    char reason[600];
    ct_buf r = {0};
    while (r.len < 420) ct_buf_adds(&r, "Façade = closed; ");
    ct_buf_adds(&r, "end ");
    snprintf(reason, sizeof reason, "%s", r.data);
    ct_buf_free(&r);
    char *json = ct_sprintf("{\"eventId\":\"da-7\",\"occurredAt\":\"2026-11-27T08:00:00Z\","
                            "\"source\":{\"system\":\"carrier\"},\"orderId\":\"O-5\",\"shipmentId\":\"SH-5\","
                            "\"warehouseId\":\"dc-1\",\"carrierId\":\"dhl\","
                            "\"deliveryAttempted\":{\"reason\":\"%s\"}}",
                            reason);
    evt_event *e = event(json);
    free(json);
    ct_buf m = {0};
    relay_email_message(&d, e, 1234, INT64_C(1796000000), &m);
    ct_buf_addc(&m, 0);
    const char *msg = m.data;

    /* Headers: exactly these values; CRLF line ends only; no line over 78 characters. */
    char *h;
    T_EQ_STR((h = header(msg, "Date")), "Mon, 30 Nov 2026 00:53:20 +0000");
    free(h);
    T_EQ_STR((h = header(msg, "From")), "<tower@example.com>");
    free(h);
    T_EQ_STR((h = header(msg, "To")), "<ops@example.com>, <other@example.com>");
    free(h);
    T_EQ_STR((h = header(msg, "Subject")), "[tower] deliveryAttempted shipment SH-5");
    free(h);
    T_EQ_STR((h = header(msg, "Message-ID")), "<da-7.mail@tower>");
    free(h);
    T_EQ_STR((h = header(msg, "Content-Type")), "text/plain; charset=utf-8");
    free(h);
    T_EQ_STR((h = header(msg, "Content-Transfer-Encoding")), "quoted-printable");
    free(h);
    T_EQ_STR((h = header(msg, "MIME-Version")), "1.0");
    free(h);
    T_EQ_STR((h = header(msg, "X-Tower-Sequence")), "1234");
    free(h);
    T_ASSERT(strncmp(msg, "Date: ", 6) == 0);
    size_t longest = 0, bare_lf = 0, high = 0;
    for (const char *p = msg, *line = msg; *p; p++) {
        if ((unsigned char)*p >= 0x80) high++;
        if (*p != '\n') continue;
        if (p == msg || p[-1] != '\r') bare_lf++;
        if ((size_t)(p - line) > longest) longest = (size_t)(p - line);
        line = p + 1;
    }
    T_EQ_INT(bare_lf, 0);
    T_EQ_INT(high, 0);
    test_checks++;
    if (longest > 77) T_FAIL("a line of %zu characters (with its CR)", longest);

    /* The body: the facts, then the canonical JSON, byte for byte after decoding. */
    const char *body = strstr(msg, "\r\n\r\n");
    T_ASSERT(body != NULL);
    char *text = qp_decode(body ? body + 4 : "");
    T_ASSERT(strncmp(text, "deliveryAttempted: shipment SH-5 at 2026-11-27T08:00:00Z\n", 57) == 0);
    T_ASSERT(strstr(text, "\nevent        da-7\n") != NULL);
    T_ASSERT(strstr(text, "\norder        O-5\n") != NULL);
    T_ASSERT(strstr(text, "\nwarehouse    dc-1\n") != NULL);
    T_ASSERT(strstr(text, "\ncarrier      dhl\n") != NULL);
    T_ASSERT(strstr(text, "\nsequence     1234\n") != NULL);
    T_ASSERT(strstr(text, "\ndestination  mail\n") != NULL);
    T_ASSERT(strstr(text, "\nroute") == NULL); /* no route: no line */
    json_t *j = evt_to_json(e);
    char *canon = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *want = ct_sprintf("\nThe event (canonical JSON):\n%s\n", canon);
    T_ASSERT(strstr(canon, "Façade = closed") != NULL);
    test_checks++;
    const char *at = strstr(text, want);
    if (!at || at[strlen(want)] != 0) T_FAIL("the JSON at the end of the body: %s", text);
    free(want);
    free(canon);
    free(text);
    ct_buf_free(&m);
    evt_free(e);

    /* The subject names the shipment, else the order, else the route, else the event; the prefix is the
     * destination's; Message-IDs are dot-atoms, the same for every attempt, different per destination. */
    static const struct {
        const char *ev, *subject, *msgid;
    } cases[] = {
        {EV("ord:1", "\"orderId\":\"O-9\",\"orderApproved\":{}"), "[dc-1] orderApproved order O-9",
         "<ord=1.m-2@tower>"},
        {EV(".r..1.", "\"routeId\":\"R1\",\"routeDispatched\":{}"), "[dc-1] routeDispatched route R1",
         "<~r.~1.~m-2@tower>"},
        {EV("pc-1", "\"orderId\":\"O-1\",\"shipmentId\":\"S-1\",\"packCompleted\":{}"),
         "[dc-1] packCompleted shipment S-1", "<pc-1.m-2@tower>"},
    };
    relay_dest d2 = d;
    d2.name = "m-2";
    d2.subject_prefix = "[dc-1]";
    d2.n_mail_to = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        e = event(cases[i].ev);
        ct_buf a = {0}, b = {0};
        relay_email_message(&d2, e, 7, INT64_C(951782400), &a);
        relay_email_message(&d2, e, 7, INT64_C(951782400), &b);
        ct_buf_addc(&a, 0);
        ct_buf_addc(&b, 0);
        T_EQ_STR(a.data, b.data);
        T_EQ_STR((h = header(a.data, "Subject")), cases[i].subject);
        free(h);
        T_EQ_STR((h = header(a.data, "Message-ID")), cases[i].msgid);
        free(h);
        T_EQ_STR((h = header(a.data, "To")), "<ops@example.com>");
        free(h);
        T_EQ_STR((h = header(a.data, "Date")), "Tue, 29 Feb 2000 00:00:00 +0000");
        free(h);
        ct_buf_free(&a);
        ct_buf_free(&b);
        evt_free(e);
    }
}

/* ---- signing ---------------------------------------------------------------------------------------------- */

static void sign_vector(void)
{
    unsigned char *key = NULL;
    size_t len = 0;
    T_EQ_INT(relay_secret_decode(VEC_SECRET, &key, &len), 0);
    char *h = key ? hex(key, len) : NULL;
    T_EQ_STR(h, VEC_KEY_HEX);
    free(h);
    char sig[64];
    memset(sig, 'x', sizeof sig);
    relay_sign(key, len, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig);
    T_EQ_STR(sig, VEC_SIG);
    /* Any change to the signed content changes the signature. */
    relay_sign(key, len, VEC_ID, VEC_TS + 1, VEC_BODY, strlen(VEC_BODY), sig);
    T_ASSERT(strcmp(sig, VEC_SIG) != 0);
    relay_sign(key, len, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY) - 1, sig);
    T_ASSERT(strcmp(sig, VEC_SIG) != 0);
    free(key);

    /*
     * A 32-byte key and a body with a trailing newline whose length is given, computed with Python:
     *   key = bytes(range(1, 33))
     *   "v1," + base64.b64encode(hmac.new(key, b'evt-1.1700000000.{"a":1}\n', hashlib.sha256).digest()).decode()
     */
    T_EQ_INT(relay_secret_decode(ENV_SECRET, &key, &len), 0);
    T_EQ_INT(len, 32);
    const char body[] = "{\"a\":1}\n";
    relay_sign(key, len, "evt-1", INT64_C(1700000000), body, sizeof body - 1, sig);
    T_EQ_STR(sig, "v1,uoYznT6+e31FudmknoCjSJClagCTG//BdcmgGqmp+e4=");
    free(key);
}

static void secret_decode(void)
{
    static const struct {
        const char *text;
        const char *hex; /* NULL: refused */
    } cases[] = {
        {"whsec_AAEC", "000102"},
        {"whsec_AAE=", "0001"},
        {"whsec_AA==", "00"},
        {"whsec_+/+/", "fbffbf"},
        {"whsec_", NULL},
        {"whsec_AAE", NULL},       /* not whole groups */
        {"whsec_AAEC=", NULL},
        {"whsec_A===", NULL},      /* three pads */
        {"whsec_====", NULL},
        {"whsec_AA==AAEC", NULL},  /* padding inside */
        {"whsec_AA=C", NULL},
        {"whsec_AA-_", NULL},      /* the URL-safe alphabet is not the standard one */
        {"whsec_ AAEC", NULL},
        {"whsec_AAEC\n", NULL},    /* trimming is the caller's */
        {"WHSEC_AAEC", NULL},
        {"AAEC", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *key = NULL;
        size_t len = 0;
        int rc = relay_secret_decode(cases[i].text, &key, &len);
        test_checks++;
        if (!cases[i].hex) {
            if (rc != -1 || key) T_FAIL("\"%s\" decoded", cases[i].text);
            continue;
        }
        char *h = rc == 0 ? hex(key, len) : NULL;
        if (!h || strcmp(h, cases[i].hex) != 0) T_FAIL("\"%s\": %s, wanted %s", cases[i].text, h ? h : "refused",
                                                       cases[i].hex);
        free(h);
        free(key);
    }
}

/* ---- retries ---------------------------------------------------------------------------------------------- */

static void backoff(void)
{
    const int64_t min = S(1), max = S(300);
    uint64_t rng = 42;
    /* The first retry's bound is min itself. */
    for (int i = 0; i < 100; i++) T_EQ_INT(relay_backoff_ns(1, min, max, &rng), min);
    T_EQ_INT(relay_backoff_ns(0, min, max, &rng), min);
    T_EQ_INT(relay_backoff_ns(-3, min, max, &rng), min);

    /* Each later bound doubles up to max; draws cover [min, bound] evenly. */
    for (int attempt = 2; attempt <= 40; attempt++) {
        int64_t bound = attempt < 11 ? min << (attempt - 1) : max; /* 2^9 s > 300 s */
        if (bound > max) bound = max;
        int64_t lo = INT64_MAX, hi = 0;
        double sum = 0;
        const int draws = 20000;
        int out = 0;
        for (int i = 0; i < draws; i++) {
            int64_t d = relay_backoff_ns(attempt, min, max, &rng);
            out += d < min || d > bound;
            if (d < lo) lo = d;
            if (d > hi) hi = d;
            sum += (double)d;
        }
        double span = (double)(bound - min), mean = sum / draws;
        test_checks++;
        if (out || lo > min + span * 0.01 || hi < bound - span * 0.01 ||
            mean < min + span * 0.48 || mean > min + span * 0.52)
            T_FAIL("attempt %d: %d out of [%lld, %lld], lo %lld, hi %lld, mean %.0f", attempt, out, (long long)min,
                   (long long)bound, (long long)lo, (long long)hi, mean);
    }
    /* Huge attempts and bounds do not overflow. */
    for (int i = 0; i < 1000; i++) {
        int64_t d = relay_backoff_ns(1000000, min, INT64_MAX, &rng);
        test_checks++;
        if (d < min) T_FAIL("draw %lld below min", (long long)d);
    }
    /* Small spans: every value of [min, bound] comes up, both ends included. */
    for (int attempt = 1; attempt <= 4; attempt++) {
        int64_t bound = INT64_C(3) << (attempt - 1);
        int seen[25] = {0}, missing = 0, out = 0;
        for (int i = 0; i < 5000; i++) {
            int64_t d = relay_backoff_ns(attempt, 3, 1000, &rng);
            if (d < 3 || d > bound) out++;
            else seen[d]++;
        }
        for (int64_t v = 3; v <= bound; v++) missing += !seen[v];
        test_checks++;
        if (out || missing) T_FAIL("attempt %d over [3, %lld]: %d out, %d values missing", attempt, (long long)bound,
                                   out, missing);
    }
    /* max below min: min. */
    T_EQ_INT(relay_backoff_ns(5, S(10), S(1), &rng), S(10));

    /* The same state draws the same delays; another state others; each draw moves the state. */
    uint64_t a = 7, b = 7, c = 8;
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t da = relay_backoff_ns(6, min, max, &a), db = relay_backoff_ns(6, min, max, &b);
        int64_t dc = relay_backoff_ns(6, min, max, &c);
        same &= da == db;
        differ += da != dc;
    }
    T_ASSERT(same);
    T_ASSERT(a == b);
    T_ASSERT(differ > 990);
    uint64_t before = a;
    relay_backoff_ns(6, min, max, &a);
    T_ASSERT(a != before);
}

static void retry_after(void)
{
    const int64_t now = INT64_C(784111777); /* Sun, 06 Nov 1994 08:49:37 GMT: calendar.timegm((1994,11,6,8,49,37)) */
    int64_t d = -7;
    T_EQ_INT(relay_retry_after("120", now, &d), 0);
    T_EQ_INT(d, S(120));
    T_EQ_INT(relay_retry_after("0", now, &d), 0);
    T_EQ_INT(d, 0);
    T_EQ_INT(relay_retry_after(" 5\t", now, &d), 0);
    T_EQ_INT(d, S(5));
    T_EQ_INT(relay_retry_after("99999999999999999999999", now, &d), 0);
    T_EQ_INT(d, INT64_MAX);

    T_EQ_INT(relay_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now, &d), 0);
    T_EQ_INT(d, S(60));
    T_EQ_INT(relay_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now - 3600, &d), 0);
    T_EQ_INT(d, S(3600));
    d = -7;
    T_EQ_INT(relay_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, &d), 0);
    T_EQ_INT(d, 0);
    d = -7;
    T_EQ_INT(relay_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now, &d), 0); /* in the past: now */
    T_EQ_INT(d, 0);
    /* A leap day: calendar.timegm((2024,2,29,0,0,0)) = 1709164800. */
    T_EQ_INT(relay_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", INT64_C(1709164800) - 90, &d), 0);
    T_EQ_INT(d, S(90));
    T_EQ_INT(relay_retry_after("Fri, 01 Mar 2024 00:00:00 GMT", INT64_C(1709164800), &d), 0);
    T_EQ_INT(d, S(86400));

    /* A leap second, as IMF-fixdate allows: 23:59:60 is the next day's 00:00:00 (calendar.timegm((2017,1,1,0,0,0))). */
    T_EQ_INT(relay_retry_after("Sat, 31 Dec 2016 23:59:60 GMT", INT64_C(1483228800) - 10, &d), 0);
    T_EQ_INT(d, S(10));

    static const char *const garbage[] = {
        "", " ", "soon", "-5", "+5", "1.5", "12a", "0x10", "5 s",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
        "Sun Nov  6 08:49:37 1994",       /* asctime */
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Thu, 29 Feb 2023 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Foo, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "sun, 06 nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun, 06 Nov 19x4 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        test_checks++;
        if (relay_retry_after(garbage[i], now, &d) != -1) T_FAIL("\"%s\" accepted", garbage[i]);
    }
    T_EQ_INT(relay_retry_after(NULL, now, &d), -1);
}

static void breaker(void)
{
    relay_breaker b = {.threshold = 3, .cooldown_ns = S(10)};
    int64_t t = S(1000), wait = -1;
    T_EQ_STR(relay_breaker_name(b.state), "closed");

    /* Closed: attempts go; failures below the threshold keep it closed, a success forgets them. */
    T_EQ_INT(relay_breaker_allow(&b, t, &wait), 1);
    T_EQ_INT(wait, 0);
    relay_breaker_result(&b, 0, t);
    relay_breaker_result(&b, 0, t);
    T_EQ_INT(b.state, RELAY_BREAKER_CLOSED);
    T_EQ_INT(b.failures, 2);
    relay_breaker_result(&b, 1, t);
    T_EQ_INT(b.failures, 0);
    relay_breaker_result(&b, 0, t);
    relay_breaker_result(&b, 0, t);
    T_EQ_INT(b.state, RELAY_BREAKER_CLOSED);

    /* The threshold-th consecutive failure opens it. */
    relay_breaker_result(&b, 0, t + S(1));
    T_EQ_INT(b.state, RELAY_BREAKER_OPEN);
    T_EQ_STR(relay_breaker_name(b.state), "open");
    T_EQ_INT(b.opened_ns, t + S(1));

    /* Open: nothing goes until the cooldown has passed, and it says how long. */
    T_EQ_INT(relay_breaker_allow(&b, t + S(1), &wait), 0);
    T_EQ_INT(wait, S(10));
    T_EQ_INT(relay_breaker_allow(&b, t + S(8), &wait), 0);
    T_EQ_INT(wait, S(3));
    T_EQ_INT(relay_breaker_allow(&b, t + S(11) - 1, &wait), 0);
    T_EQ_INT(wait, 1);
    T_EQ_INT(b.state, RELAY_BREAKER_OPEN);

    /* Then one probe, half-open; its failure opens it again for a whole cooldown. */
    T_EQ_INT(relay_breaker_allow(&b, t + S(11), &wait), 1);
    T_EQ_INT(wait, 0);
    T_EQ_INT(b.state, RELAY_BREAKER_HALF_OPEN);
    T_EQ_STR(relay_breaker_name(b.state), "half-open");
    relay_breaker_result(&b, 0, t + S(12));
    T_EQ_INT(b.state, RELAY_BREAKER_OPEN);
    T_EQ_INT(b.opened_ns, t + S(12));
    T_EQ_INT(relay_breaker_allow(&b, t + S(13), &wait), 0);
    T_EQ_INT(wait, S(9));

    /* A successful probe closes it, and the count starts again from nothing. */
    T_EQ_INT(relay_breaker_allow(&b, t + S(22), &wait), 1);
    T_EQ_INT(b.state, RELAY_BREAKER_HALF_OPEN);
    relay_breaker_result(&b, 1, t + S(22));
    T_EQ_INT(b.state, RELAY_BREAKER_CLOSED);
    T_EQ_INT(b.failures, 0);
    T_EQ_INT(relay_breaker_allow(&b, t + S(22), &wait), 1);
    relay_breaker_result(&b, 0, t + S(23));
    relay_breaker_result(&b, 0, t + S(23));
    T_EQ_INT(b.state, RELAY_BREAKER_CLOSED);
    relay_breaker_result(&b, 0, t + S(23));
    T_EQ_INT(b.state, RELAY_BREAKER_OPEN);
}

/* ---- readiness orchestration (relay_ready.c) ---- */

static evt_event *ev_json(const char *json)
{
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_json_text(&e, json, strlen(json), &err) != CT_OK) T_FAIL("bad test event %s", json);
    return e;
}

/* Fold the events (JSON, NULL-terminated) into one shipment's state. */
static relay_ship fold_ship(const char *sid, const char *const *evs)
{
    relay_ship s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; evs[i]; i++) {
        evt_event *e = ev_json(evs[i]);
        const char *ids[8];
        size_t n = e ? relay_ready_ids(e, ids, 8) : 0;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(ids[k], sid)) relay_ready_apply(&s, e);
        evt_free(e);
    }
    return s;
}

#define RV(id, sec, rest) "{\"eventId\":\"" id "\",\"occurredAt\":\"2026-11-27T10:00:" sec "Z\",\"source\":{\"system\":\"wms\"}," rest "}"
#define READY(id, sec) RV(id, sec, "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"shipmentReady\":{\"warehouseId\":\"dc-1\"}")
#define BLOCK(id, sec, why) RV(id, sec, "\"shipmentId\":\"S1\",\"shipmentBlocked\":{\"reason\":\"" why "\"}")
#define UNBLOCK(id, sec) RV(id, sec, "\"shipmentId\":\"S1\",\"shipmentUnblocked\":{}")

static void ready_fold(void)
{
    /* Ready, nothing else: due, once (queued or requested is not due again). */
    relay_ship s = fold_ship("S1", (const char *const[]){READY("r", "01"), NULL});
    T_ASSERT(relay_ready_due(&s, 0));
    T_EQ_STR(s.order_id, "O1");
    T_EQ_STR(s.warehouse_id, "dc-1");
    T_ASSERT(!relay_ready_due(&s, 1)); /* its order cancelled */
    s.queued = 1;
    T_ASSERT(!relay_ready_due(&s, 0));
    /* Blocked for dock capacity or carrier: not due; for inventory (not a routing block): due. */
    s = fold_ship("S1", (const char *const[]){BLOCK("b", "00", "DOCK_CAPACITY"), READY("r", "01"), NULL});
    T_ASSERT(!relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), BLOCK("b", "02", "CARRIER"), NULL});
    T_ASSERT(!relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), BLOCK("b", "02", "INVENTORY"), NULL});
    T_ASSERT(relay_ready_due(&s, 0));
    /* The latest of block and unblock by occurredAt, whatever the arrival order. */
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), BLOCK("b", "02", "CARRIER"), UNBLOCK("u", "03"), NULL});
    T_ASSERT(relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), UNBLOCK("u", "03"), BLOCK("b", "02", "CARRIER"), NULL});
    T_ASSERT(relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), BLOCK("b", "04", "CARRIER"), UNBLOCK("u", "03"), NULL});
    T_ASSERT(!relay_ready_due(&s, 0));
    /* Routed (a routePlanned stop, confirmed, delivered) or requested by anyone: not due. */
    s = fold_ship("S1", (const char *const[]){READY("r", "01"),
                                              RV("p", "02", "\"routeId\":\"R1\",\"routePlanned\":{\"stops\":[{\"shipmentId\":\"S0\"},{\"shipmentId\":\"S1\"}]}"), NULL});
    T_ASSERT(s.routed && !relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){RV("q", "00", "\"routeRequested\":{\"shipmentIds\":[\"S2\",\"S1\"]}"), READY("r", "01"), NULL});
    T_ASSERT(s.requested && !relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), RV("c", "02", "\"shipmentId\":\"S1\",\"shipmentConfirmed\":{}"), NULL});
    T_ASSERT(!relay_ready_due(&s, 0));
    /* A routeFailed does not ask again (once per set); not ready: not due. */
    s = fold_ship("S1", (const char *const[]){READY("r", "01"), RV("f", "02", "\"routeFailed\":{\"shipmentIds\":[\"S1\"],\"reason\":\"x\"}"), NULL});
    T_ASSERT(relay_ready_due(&s, 0));
    s = fold_ship("S1", (const char *const[]){BLOCK("b", "02", "OTHER"), NULL});
    T_ASSERT(!relay_ready_due(&s, 0));
}

static void ready_ids_bounded(void)
{
    /* A routePlanned with more stops than the caller's room, and a repeated id: bounded, no duplicates. */
    ct_buf b = {0};
    ct_buf_adds(&b, "{\"eventId\":\"p\",\"occurredAt\":\"2026-11-27T10:00:01Z\",\"source\":{\"system\":\"tms\"},"
                    "\"routeId\":\"R1\",\"shipmentId\":\"S1\",\"routePlanned\":{\"stops\":[");
    ct_buf_adds(&b, "{\"shipmentId\":\"S0\"}");
    for (int i = 0; i < 40; i++) ct_buf_addf(&b, ",{\"shipmentId\":\"S%d\"}", i % 20);
    ct_buf_adds(&b, "]}}");
    evt_event *e = ev_json(b.data);
    const char *ids[8];
    T_EQ_INT(e ? relay_ready_ids(e, ids, 8) : 0, 8);
    T_EQ_STR(ids[0], "S1");
    T_EQ_STR(ids[1], "S0");
    T_EQ_STR(ids[2], "S2"); /* S0 and S1 not twice */
    evt_free(e);
    ct_buf_free(&b);
}

static void request_ids(void)
{
    char a[32], b[32], c[32];
    relay_request_id((const char *const[]){"S1", "S2"}, 2, a);
    relay_request_id((const char *const[]){"S2", "S1"}, 2, b);
    relay_request_id((const char *const[]){"S1"}, 1, c);
    T_EQ_STR(a, b); /* the set, not its order */
    T_ASSERT(strcmp(a, c) != 0);
    T_EQ_INT(strlen(a), 27);
    T_ASSERT(!strncmp(a, "rr-", 3));
    /* The event: valid by the contract, its id from the set, source tms. */
    json_t *j = relay_request_event((const char *const[]){"S1"}, 1, "dc-1", S(1795860000), "tower-relay");
    evt_event *e = NULL;
    evt_error err;
    T_EQ_INT(evt_from_json(&e, j, &err), CT_OK);
    T_ASSERT(e && e->payload_case == TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED);
    if (e) {
        T_EQ_STR(e->event_id, c);
        T_EQ_STR(e->source->system, "tms");
        T_EQ_STR(e->route_requested->shipment_ids[0], "S1");
        T_EQ_STR(e->route_requested->warehouse_id, "dc-1");
    }
    evt_free(e);
    json_decref(j);
}

/* ---- exception changes (relay_exc_diff.c) ---------------------------------------------------------------- */

static json_t *item(const char *exid, const char *view, const char *wh, const char *ack, const char *due)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "exceptionId", exid, "view", view, "warehouseId", wh, "shipmentId", "S1");
    if (ack) json_object_set_new(o, "acknowledgedAt", json_string(ack));
    if (due) json_object_set_new(o, "slaDueAt", json_string(due));
    return o;
}

/* The changes as "change exid n" lines. */
static char *change_list(const json_t *changes)
{
    ct_buf b = {0};
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)changes, i, c)
        ct_buf_addf(&b, "%s %s %lld;", json_string_value(json_object_get(c, "change")),
                    json_string_value(json_object_get(c, "exceptionId")),
                    (long long)json_integer_value(json_object_get(c, "n")));
    ct_buf_addc(&b, '\0');
    return b.data;
}

/* Diff known against the items; known is replaced by the new knowledge; the changes as change_list. */
static char *step(json_t **known, json_t *items, int64_t at_ns)
{
    json_t *ch = json_array();
    json_t *next = relay_exc_diff(*known, items, at_ns, ch);
    json_decref(*known);
    json_decref(items);
    *known = next;
    char *txt = change_list(ch);
    json_decref(ch);
    return txt;
}

static void check_step(json_t **known, json_t *items, int64_t at_ns, const char *want)
{
    char *got = step(known, items, at_ns);
    T_EQ_STR(got, want);
    free(got);
}

static void exc_diff(void)
{
    json_t *k = NULL;
    const int64_t t0 = S(1764237600); /* 2025-11-27T10:00:00Z */
    /* Nothing known, nothing open: nothing. Then one opens (with no due), one opens acknowledged already. */
    check_step(&k, json_array(), t0, "");
    check_step(&k, json_pack("[o, o]", item("s~S1~blocked~1", "blocked", "dc-1", NULL, NULL),
                             item("s~S1~pending_route~2", "pending_route", "dc-1", "2025-11-27T09:00:00Z",
                                  "2025-11-27T11:00:00Z")),
               t0, "opened s~S1~blocked~1 1;opened s~S1~pending_route~2 1;acknowledged s~S1~pending_route~2 1;");
    /* The same again: no change (an idempotent diff). The due passes: breached, once. */
    check_step(&k, json_pack("[o, o]", item("s~S1~blocked~1", "blocked", "dc-1", NULL, NULL),
                             item("s~S1~pending_route~2", "pending_route", "dc-1", "2025-11-27T09:00:00Z",
                                  "2025-11-27T11:00:00Z")),
               t0, "");
    check_step(&k, json_pack("[o, o]", item("s~S1~blocked~1", "blocked", "dc-1", "2025-11-27T12:00:00Z", NULL),
                             item("s~S1~pending_route~2", "pending_route", "dc-1", "2025-11-27T09:00:00Z",
                                  "2025-11-27T11:00:00Z")),
               t0 + S(7200), "acknowledged s~S1~blocked~1 1;breached s~S1~pending_route~2 1;");
    check_step(&k, json_pack("[o, o]", item("s~S1~blocked~1", "blocked", "dc-1", "2025-11-27T12:00:00Z", NULL),
                             item("s~S1~pending_route~2", "pending_route", "dc-1", "2025-11-27T09:00:00Z",
                                  "2025-11-27T11:00:00Z")),
               t0 + S(9000), "");
    /* One leaves: resolved, with its item as last known; a reopen is opening 2 (another webhook-id). */
    json_t *ch = json_array(), *one = json_pack("[o]", item("s~S1~pending_route~2", "pending_route", "dc-1",
                                                            "2025-11-27T09:00:00Z", "2025-11-27T11:00:00Z"));
    json_t *next = relay_exc_diff(k, one, t0, ch);
    json_decref(one);
    T_EQ_INT(json_array_size(ch), 1);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(json_array_get(ch, 0), "item"), "view")), "blocked");
    json_decref(ch);
    json_decref(next);
    check_step(&k, json_pack("[o]", item("s~S1~pending_route~2", "pending_route", "dc-1", "2025-11-27T09:00:00Z",
                                         "2025-11-27T11:00:00Z")),
               t0, "resolved s~S1~blocked~1 1;");
    check_step(&k, json_pack("[o, o]", item("s~S1~blocked~1", "blocked", "dc-1", NULL, NULL),
                             item("s~S1~pending_route~2", "pending_route", "dc-1", "2025-11-27T09:00:00Z",
                                  "2025-11-27T11:00:00Z")),
               t0, "opened s~S1~blocked~1 2;");
    /* Everything leaves; items without an exceptionId and duplicates are ignored; garbage knowledge is none. */
    check_step(&k, json_pack("[{s:s}, i]", "view", "blocked", 3), t0,
               "resolved s~S1~blocked~1 2;resolved s~S1~pending_route~2 1;");
    json_decref(k);
    k = json_pack("{s:[], s:s}", "open", "gone", "x");
    check_step(&k, json_pack("[o, o]", item("o~O1~posting_failed~9", "posting_failed", "dc-2", NULL, NULL),
                             item("o~O1~posting_failed~9", "posting_failed", "dc-2", NULL, NULL)),
               t0, "opened o~O1~posting_failed~9 1;");
    json_decref(k);
}

static void exc_gone_bounded(void)
{
    json_t *k = NULL;
    char id[64];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "s~S%d~blocked~1", i);
        free(step(&k, json_pack("[o]", item(id, "blocked", "dc-1", NULL, NULL)), 0));
    }
    free(step(&k, json_array(), 0));
    T_ASSERT(json_object_size(json_object_get(k, "gone")) <= 32);
    T_EQ_INT(json_object_size(json_object_get(k, "open")), 0);
    json_decref(k);
}

static void exc_filters_and_ids(void)
{
    relay_conf c = {0};
    char err[512];
    T_EQ_INT(load("[destination ops-chat]\nurl = http://127.0.0.1:9002/hook\nkind = slack\n"
                  "exceptions = opened, breached,resolved\nviews = blocked,pending_route\nwarehouses = dc-2\n"
                  "customers = C-1\n",
                  &c, err, sizeof err),
             CT_OK);
    T_EQ_STR(err, "");
    const relay_dest *d = &c.v[0];
    T_EQ_INT(d->exceptions, RELAY_EXC_OPENED | RELAY_EXC_BREACHED | RELAY_EXC_RESOLVED);
    json_t *ch = json_pack("{s:s, s:s, s:i, s:o}", "change", "opened", "exceptionId", "s~S1~blocked~1", "n", 1,
                           "item", item("s~S1~blocked~1", "blocked", "dc-2", NULL, NULL));
    T_EQ_INT(relay_exc_wants(d, ch, "C-1"), 1);
    T_EQ_INT(relay_exc_wants(d, ch, "C-2"), 0);
    T_EQ_INT(relay_exc_wants(d, ch, NULL), 0);
    char id[300];
    relay_exc_id(d, ch, id, sizeof id);
    T_EQ_STR(id, "s~S1~blocked~1.opened.ops-chat");
    json_object_set_new(ch, "n", json_integer(3));
    relay_exc_id(d, ch, id, sizeof id);
    T_EQ_STR(id, "s~S1~blocked~1.opened-3.ops-chat");
    json_object_set_new(ch, "change", json_string("acknowledged"));
    T_EQ_INT(relay_exc_wants(d, ch, "C-1"), 0);
    json_object_set_new(ch, "change", json_string("resolved"));
    json_object_set_new(json_object_get(ch, "item"), "warehouseId", json_string("dc-1"));
    T_EQ_INT(relay_exc_wants(d, ch, "C-1"), 0);
    json_object_set_new(json_object_get(ch, "item"), "warehouseId", json_string("dc-2"));
    json_object_set_new(json_object_get(ch, "item"), "view", json_string("missing_pod"));
    T_EQ_INT(relay_exc_wants(d, ch, "C-1"), 0);
    json_object_set_new(ch, "change", json_string("exploded"));
    T_EQ_INT(relay_exc_wants(d, ch, "C-1"), 0);
    json_decref(ch);
    /* An exception destination receives no events. */
    evt_event *e = NULL;
    evt_error ee;
    const char *txt = "{\"eventId\":\"e1\",\"occurredAt\":\"2026-11-27T10:00:00Z\",\"source\":{\"system\":\"wms\"},"
                      "\"shipmentId\":\"S1\",\"shipmentBlocked\":{\"reason\":\"DAMAGE\"}}";
    T_EQ_INT(evt_from_json_text(&e, txt, strlen(txt), &ee), CT_OK);
    T_EQ_INT(relay_dest_wants(d, e), 0);
    evt_free(e);
    relay_conf_free(&c);
    T_EQ_STR(relay_exc_change_name(RELAY_EXC_ACKNOWLEDGED), "acknowledged");
    T_ASSERT(relay_exc_change_name(3) == NULL);
    T_EQ_INT(relay_exc_change_bit("resolved"), RELAY_EXC_RESOLVED);
    T_EQ_INT(relay_exc_change_bit("cleared"), 0);
}

static void exc_conf_errors(void)
{
    static const struct {
        const char *text;
        int line;
        const char *problem;
    } cases[] = {
        {"[destination a]\nurl = http://x\nexceptions = opened, closed\n", 3, "exceptions: unknown change \"closed\""},
        {"[destination a]\nurl = http://x\nexceptions = opened,,resolved\n", 3, "exceptions has an empty item"},
        {"[destination a]\nurl = http://x\nexceptions = opened\nviews = blocked, blokced\n", 4,
         "views: \"blokced\" is not a view"},
        {"[destination a]\nurl = http://x\nexceptions = opened\nviews = dead_letters\n", 4,
         "views: \"dead_letters\" is not a view of orders or shipments"},
        {"[destination a]\nurl = http://x\nexceptions = opened\ncustomers = C 1\n", 4, "customer \"C 1\" is not an id"},
        {"[destination a]\nurl = http://x\nexceptions = opened\nevents = *\n", 3,
         "exceptions and events exclude each other"},
        {"[destination a]\nurl = http://x\nkind = route_planner\nexceptions = opened\n", 4,
         "a route_planner gets no exception changes"},
        {"[destination a]\nurl = http://x\nexceptions = opened\nbatch = 5\n", 3, "batch is not for exception"},
        {"[destination a]\nurl = http://x\nevents = *\nviews = blocked\n", 4, "views and customers filter exception"},
        {"[destination a]\nurl = http://x\nevents = *\ncustomers = C-1\n", 4, "views and customers filter exception"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        relay_conf c = {0};
        char err[512], want[300];
        T_EQ_INT(load(cases[i].text, &c, err, sizeof err), CT_INVALID);
        snprintf(want, sizeof want, "relay.ini:%d: ", cases[i].line);
        if (!strstr(err, want) || !strstr(err, cases[i].problem)) T_FAIL("case %zu: %s", i, err);
        relay_conf_free(&c);
    }
}

/* ---- lanes (relay_lanes.c) ---------------------------------------------------------------------------- */

/* The lane of an event: same order, same first key; the order before its shipments; an event naming nothing is
 * keyed by its id; one naming more shipments than fit is a barrier (0 keys). */
static void lane_keys(void)
{
    evt_event *a = event(EV("a", "\"orderId\":\"O1\",\"orderApproved\":{}"));
    evt_event *b = event(EV("b", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"shipmentReady\":{}"));
    evt_event *c = event(EV("c", "\"shipmentId\":\"S1\",\"routeRequested\":{\"shipmentIds\":[\"S1\"]}"));
    evt_event *d = event(EV("d", "\"routeId\":\"R1\",\"routeDispatched\":{}"));
    uint64_t ka[RELAY_LANE_KEYS], kb[RELAY_LANE_KEYS], kc[RELAY_LANE_KEYS], kd[RELAY_LANE_KEYS];
    T_EQ_INT(relay_lane_keys(a, ka), 1);
    T_EQ_INT(relay_lane_keys(b, kb), 2);
    T_EQ_INT(relay_lane_keys(c, kc), 1); /* S1 once */
    T_EQ_INT(relay_lane_keys(d, kd), 1);
    T_ASSERT(ka[0] == kb[0]);  /* the order first */
    T_ASSERT(kb[1] == kc[0]);  /* the shipment's key is the same without the order */
    T_ASSERT(ka[0] != kc[0] && kc[0] != kd[0]);
    ct_buf big = {0};
    ct_buf_adds(&big, "{\"eventId\":\"p\",\"occurredAt\":\"2026-11-27T10:00:01Z\",\"source\":{\"system\":\"tms\"},"
                      "\"routeId\":\"R2\",\"routePlanned\":{\"stops\":[");
    for (int i = 0; i < 20; i++) ct_buf_addf(&big, "%s{\"shipmentId\":\"S%d\"}", i ? "," : "", i);
    ct_buf_adds(&big, "]}}");
    ct_buf_addc(&big, '\0');
    evt_event *p = event(big.data);
    uint64_t kp[RELAY_LANE_KEYS];
    T_EQ_INT(relay_lane_keys(p, kp), 0);
    ct_buf_free(&big);
    evt_free(a);
    evt_free(b);
    evt_free(c);
    evt_free(d);
    evt_free(p);
}

/* Conflicts: an event goes to the lane where its entities wait, waits when they wait on two lanes, and a lane
 * or the window that is full makes it wait. */
static void lane_pick(void)
{
    relay_window w;
    relay_window_init(&w, 8, 0);
    uint64_t o1s1[] = {101, 201}, s1[] = {201}, s2[] = {202}, s1s2[] = {201, 202}, o9[] = {109};
    int la = relay_window_pick(&w, o1s1, 2);
    T_EQ_INT(la, 101 % 8);
    size_t a = relay_window_add(&w, 1, o1s1, 2, (unsigned)la);
    T_EQ_INT(relay_window_pick(&w, s1, 1), la); /* not 201 % 8: where S1 waits */
    int lb = relay_window_pick(&w, s2, 1);
    T_EQ_INT(lb, 202 % 8);
    relay_window_add(&w, 2, s2, 1, (unsigned)lb);
    T_EQ_INT(relay_window_pick(&w, s1s2, 2), -1); /* S1 on one lane, S2 on another: after them */
    T_EQ_INT(relay_window_pick(&w, NULL, 0), -1); /* a barrier waits for two lanes too */
    relay_window_done(&w, a);
    T_EQ_INT(relay_window_pick(&w, s1s2, 2), lb); /* only S2 waits now */
    T_EQ_INT(relay_window_pick(&w, NULL, 0), lb);
    T_EQ_INT(relay_window_pick(&w, o9, 1), 109 % 8);
    for (uint64_t q = 3; q < 3 + RELAY_LANE_DEPTH; q++) relay_window_add(&w, q, o9, 1, 109 % 8);
    T_EQ_INT(relay_window_pick(&w, o9, 1), -1); /* its lane holds RELAY_LANE_DEPTH */
    relay_window_free(&w);
    relay_window_init(&w, 1, 0);
    for (uint64_t q = 1; q <= RELAY_LANE_DEPTH; q++) {
        uint64_t k[] = {q};
        relay_window_done(&w, relay_window_add(&w, q, k, 1, 0));
    }
    T_EQ_INT(relay_window_pick(&w, o9, 1), -1); /* the window is full until advanced */
    T_EQ_INT(relay_window_advance(&w), RELAY_LANE_DEPTH);
    T_EQ_INT(relay_window_pick(&w, o9, 1), 0);
    relay_window_free(&w);
}

/* The checkpoint: only over a prefix of done events, skipped sequences carried by the event before them. */
static void lane_checkpoint(void)
{
    relay_window w;
    relay_window_init(&w, 4, 10);
    relay_window_skip(&w, 11); /* nothing waits: done at once */
    T_EQ_INT(relay_window_advance(&w), 11);
    uint64_t k1[] = {1}, k2[] = {2}, k3[] = {3};
    size_t s12 = relay_window_add(&w, 12, k1, 1, 1);
    size_t s13 = relay_window_add(&w, 13, k2, 1, 2);
    relay_window_skip(&w, 14);
    relay_window_skip(&w, 15);
    size_t s16 = relay_window_add(&w, 16, k3, 1, 3);
    relay_window_done(&w, s13);
    relay_window_done(&w, s16);
    T_EQ_INT(relay_window_advance(&w), 11); /* 12 is in flight: a crash sends 12 (13, 16 again) */
    relay_window_done(&w, s12);
    T_EQ_INT(relay_window_advance(&w), 16);
    T_EQ_INT(w.n, 0);
    relay_window_skip(&w, 17);
    T_EQ_INT(relay_window_advance(&w), 17);
    relay_window_free(&w);
}

/* A simulation: 4000 events over 40 entities (an event names one or two), 8 lanes, each lane finishing its
 * head event at random; every entity sees its events in stream order, and the checkpoint is always the last
 * sequence before the first event not done. */
static void lane_order_sim(void)
{
    enum { N = 4000, E = 40, L = 8 };
    relay_window w;
    relay_window_init(&w, L, 0);
    size_t q[L][RELAY_LANE_DEPTH], qh[L] = {0}, qn[L] = {0};
    uint64_t last_seen[E + 1] = {0}, keys[N + 1][2], rng = 42;
    size_t nk[N + 1];
    unsigned char done[N + 1] = {0};
    int bad_order = 0, bad_cp = 0;
    uint64_t next = 1;
    while (next <= N || w.n) {
        for (; next <= N; next++) { /* place what may go, in stream order */
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            keys[next][0] = 1 + (rng >> 33) % E;
            keys[next][1] = 1 + (rng >> 45) % E;
            nk[next] = (rng >> 60) & 1 ? 2 : 1;
            int ln = relay_window_pick(&w, keys[next], nk[next]);
            if (ln < 0) break;
            q[ln][(qh[ln] + qn[ln]++) % RELAY_LANE_DEPTH] = relay_window_add(&w, next, keys[next], nk[next], (unsigned)ln);
        }
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned ln = (unsigned)(rng >> 40) % L;
        if (!qn[ln]) continue;
        size_t slot = q[ln][qh[ln]++ % RELAY_LANE_DEPTH];
        qn[ln]--;
        uint64_t seq = w.v[slot].seq;
        for (size_t k = 0; k < nk[seq]; k++) {
            if (last_seen[keys[seq][k]] > seq) bad_order++;
            last_seen[keys[seq][k]] = seq;
        }
        done[seq] = 1;
        relay_window_done(&w, slot);
        uint64_t cp = relay_window_advance(&w), want = 0;
        while (want < N && done[want + 1]) want++;
        if (cp != want) bad_cp++;
    }
    T_EQ_INT(bad_order, 0);
    T_EQ_INT(bad_cp, 0);
    T_EQ_INT(w.checkpoint, N);
    relay_window_free(&w);
}

/* lanes = N: the default where it applies, 1 elsewhere; hostile values refused naming the key. */
static void lane_conf(void)
{
    relay_conf c = {0};
    char err[512];
    T_EQ_INT(load("[destination a]\nurl = http://x\nevents = *\n[destination b]\nurl = http://x\nevents = *\nlanes = 1\n"
                  "[destination c]\nurl = http://x\nevents = *\nbatch = 50\n[destination d]\nkind = slack\nurl = http://x\n"
                  "events = *\nlanes = 64\n[destination m]\nkind = email\nurl = smtp://x\nevents = *\n"
                  "from = a@b.c\nto = d@e.f\n",
                  &c, err, sizeof err),
             CT_OK);
    T_EQ_INT(c.n, 5);
    if (c.n == 5) {
        T_EQ_INT(c.v[0].lanes, RELAY_LANES_DEFAULT);
        T_EQ_INT(c.v[1].lanes, 1);
        T_EQ_INT(c.v[2].lanes, 1);
        T_EQ_INT(c.v[3].lanes, 64);
        T_EQ_INT(c.v[4].lanes, 1);
    }
    relay_conf_free(&c);
    static const struct {
        const char *value, *problem;
    } bad[] = {{"0", "lanes \"0\" is not a positive integer"}, {"-1", "lanes \"-1\" is not a positive integer"},
               {"abc", "lanes \"abc\" is not a positive integer"}, {"8x", "lanes \"8x\" is not a positive integer"},
               {"", "lanes \"\" is not a positive integer"}, {"1e3", "lanes \"1e3\" is not a positive integer"},
               {"99999999999999999999", "lanes \"99999999999999999999\" is not a positive integer"},
               {"65", "lanes 65 is more than 64"}, {"2147483648", "is not a positive integer"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = ct_sprintf("[destination a]\nurl = http://x\nevents = *\nlanes = %s\n", bad[i].value);
        T_EQ_INT(load(text, &c, err, sizeof err), CT_INVALID);
        if (!strstr(err, bad[i].problem) || !strstr(err, ":4: ")) T_FAIL("lanes = %s: %s", bad[i].value, err);
        free(text);
        relay_conf_free(&c);
    }
    static const char *const whole[][2] = {
        {"[destination a]\nurl = http://x\nevents = *\nlanes = 4\nbatch = 10\n", "lanes and batch exclude each other"},
        {"[destination m]\nkind = email\nurl = smtp://x\nevents = *\nfrom = a@b.c\nto = d@e.f\nlanes = 2\n",
         "lanes is only for kind = webhook or slack event destinations"},
        {"[destination x]\nurl = http://x\nexceptions = opened\nlanes = 2\n", "lanes is only for kind = webhook"},
        {"[destination p]\nkind = route_planner\nurl = http://x\nlanes = 2\n", "lanes is only for kind = webhook"}};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        T_EQ_INT(load(whole[i][0], &c, err, sizeof err), CT_INVALID);
        if (!strstr(err, whole[i][1])) T_FAIL("%s: %s", whole[i][0], err);
        relay_conf_free(&c);
    }
}

int main(void)
{
    dir = t_tmpdir();
    T_RUN(conf_good);
    T_RUN(conf_errors);
    T_RUN(conf_errors_whole);
    T_RUN(conf_secret_errors);
    T_RUN(dest_wants);
    T_RUN(email_message);
    T_RUN(sign_vector);
    T_RUN(secret_decode);
    T_RUN(backoff);
    T_RUN(retry_after);
    T_RUN(breaker);
    T_RUN(ready_fold);
    T_RUN(ready_ids_bounded);
    T_RUN(request_ids);
    T_RUN(exc_diff);
    T_RUN(exc_gone_bounded);
    T_RUN(exc_filters_and_ids);
    T_RUN(exc_conf_errors);
    T_RUN(lane_keys);
    T_RUN(lane_pick);
    T_RUN(lane_checkpoint);
    T_RUN(lane_order_sim);
    T_RUN(lane_conf);
    t_rmdir(dir);
    return t_done();
}
