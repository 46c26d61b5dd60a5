/* SLA rules: the defaults of docs/contract.md ("SLA rules"), changed and extended by an INI file (read with
 * inih), and lookup. */
#include "sla.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_config.h"

/* One [rule ...] section of the file, or a default rule. */
typedef struct entry {
    fold_sla_rule r;   /* what the fold sees; strings owned by the entry */
    int line;          /* the section's line (0 for a default) */
    int has_pair, has_within, has_severity, has_enabled;
    int from_line, to_line;
    char *from, *to;   /* as written, until resolved */
    int key_lines[8];  /* the line each key was given on, to refuse a key given twice */
} entry;

struct sla_rules {
    entry *v;
    size_t n;
    fold_sla_rule *flat;   /* the rules in fold form, built at the end */
    fold_sla_rules view;
};

static void entry_free(entry *e)
{
    free((char *)e->r.name);
    free((char *)e->r.severity);
    free((char *)e->r.warehouse);
    free((char *)e->r.carrier);
    free((char *)e->r.channel);
    free(e->from);
    free(e->to);
}

void sla_rules_destroy(sla_rules *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) entry_free(&r->v[i]);
    free(r->v);
    free(r->flat);
    free(r);
}

static entry *entry_add(sla_rules *r)
{
    r->v = ct_realloc(r->v, (r->n + 1) * sizeof *r->v);
    entry *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* ---- reading the file -------------------------------------------------------- */

typedef struct parse_ctx {
    sla_rules *r;
    const char *name;     /* the file's name for messages */
    ct_ini_lines lines;   /* the file, a whole line per read; lines.lineno is the line inih is on */
    char *err;            /* the first problem, without "FILE:LINE: " */
    int err_line;
    size_t first_file;    /* index of the first entry from the file */
} parse_ctx;

static void fail_at(parse_ctx *pc, int line, char *msg)
{
    if (pc->err) {
        free(msg);
        return;
    }
    pc->err = msg;
    pc->err_line = line;
}

/* fail_at the line being read. */
static void fail(parse_ctx *pc, char *msg) { fail_at(pc, pc->lines.lineno, msg); }

static int name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

static int rule_name_ok(const char *s)
{
    /* The event id charset without ':' (ids are "sla-<rule>-..."); no '-' either, to keep ids unambiguous. */
    if (!name_ok(s, SLA_RULE_NAME_MAX)) return 0;
    return strchr(s, ':') == NULL && strchr(s, '-') == NULL;
}

static const char *const channels[] = {"ECOMMERCE", "EDI", "SERVICE", NULL};

/* "[rule NAME k=v ...]": a new entry, or an error. Returns the entry's index, -1 on error. */
static long section_open(parse_ctx *pc, const char *text, size_t len)
{
    char *s = ct_strndup(text, len);
    char *save = NULL, *tok = strtok_r(s, " \t", &save);
    long idx = -1;
    if (!tok || strcmp(tok, "rule") != 0) {
        fail(pc, ct_sprintf("unknown section [%.*s]: sections are [rule NAME] or "
                            "[rule NAME warehouse=W carrier=C channel=CH]", (int)len, text));
        goto out;
    }
    tok = strtok_r(NULL, " \t", &save);
    if (!tok) {
        fail(pc, ct_strdup("[rule] needs a name: [rule NAME]"));
        goto out;
    }
    if (!rule_name_ok(tok)) {
        fail(pc, ct_sprintf("rule name \"%s\" must be 1-%d characters of [A-Za-z0-9_.]", tok,
                            SLA_RULE_NAME_MAX));
        goto out;
    }
    entry *e = entry_add(pc->r);
    e->r.name = ct_strdup(tok);
    e->line = pc->lines.lineno;
    idx = (long)(pc->r->n - 1);
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1]) {
            fail(pc, ct_sprintf("scope \"%s\" is not KEY=VALUE (warehouse=, carrier= or channel=)", tok));
            idx = -1;
            goto out;
        }
        *eq = '\0';
        const char *val = eq + 1;
        const char **slot = !strcmp(tok, "warehouse") ? &e->r.warehouse
                            : !strcmp(tok, "carrier") ? &e->r.carrier
                            : !strcmp(tok, "channel") ? &e->r.channel
                                                      : NULL;
        if (!slot) {
            fail(pc, ct_sprintf("unknown scope \"%s\": warehouse, carrier or channel", tok));
            idx = -1;
            goto out;
        }
        if (*slot) {
            fail(pc, ct_sprintf("scope %s given twice", tok));
            idx = -1;
            goto out;
        }
        if (slot == &e->r.channel) {
            int ok = 0;
            for (int i = 0; channels[i]; i++) ok |= !strcmp(channels[i], val);
            if (!ok) {
                fail(pc, ct_sprintf("channel \"%s\" is not ECOMMERCE, EDI or SERVICE", val));
                idx = -1;
                goto out;
            }
        } else if (!name_ok(val, EVT_MAX_ID)) {
            fail(pc, ct_sprintf("%s \"%s\" is not an id (1-%d characters of [A-Za-z0-9._:-])", tok, val,
                                EVT_MAX_ID));
            idx = -1;
            goto out;
        }
        *slot = ct_strdup(val);
    }
out:
    free(s);
    return idx;
}

static long open_section(void *ctx, const char *text, size_t len) { return section_open(ctx, text, len); }

/* inih's reader: ct_config's, sections as "[<entry index>]" (ct_ini_read_sectioned). */
static char *read_line(char *str, int num, void *stream)
{
    parse_ctx *pc = stream;
    char *problem;
    char *got = ct_ini_read_sectioned(&pc->lines, str, num, &problem, open_section, pc);
    if (problem) fail(pc, problem);
    return got;
}

enum { K_FROM, K_TO, K_WITHIN, K_SEVERITY, K_ENABLED, K_COUNT };
static const char *const keys[K_COUNT] = {"from", "to", "within", "severity", "enabled"};

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *pc = user;
    if (!*section) {
        fail(pc, ct_sprintf("key \"%s\" outside a [rule NAME] section", name));
        return 0;
    }
    if (!strcmp(section, "-")) return 1; /* the bad header was reported */
    entry *e = &pc->r->v[strtol(section, NULL, 10)];
    int k = 0;
    while (k < K_COUNT && strcmp(keys[k], name) != 0) k++;
    if (k == K_COUNT) {
        fail(pc, ct_sprintf("unknown key \"%s\" (from, to, within, severity, enabled; scopes go in "
                            "the section name)", name));
        return 0;
    }
    if (e->key_lines[k]) {
        fail(pc, ct_sprintf("key \"%s\" given twice (first on line %d)", name, e->key_lines[k]));
        return 0;
    }
    e->key_lines[k] = pc->lines.lineno;
    switch (k) {
    case K_FROM:
    case K_TO:
        if (!*value) {
            fail(pc, ct_sprintf("%s needs a milestone (an event type such as orderApproved)", name));
            return 0;
        }
        if (k == K_FROM) e->from = ct_strdup(value), e->from_line = pc->lines.lineno;
        else e->to = ct_strdup(value), e->to_line = pc->lines.lineno;
        break;
    case K_WITHIN: {
        int64_t ns;
        if (ct_parse_duration_ns(value, &ns) != 0 || ns <= 0) {
            fail(pc, ct_sprintf("within \"%s\" is not a positive duration (e.g. 15m, 4h, 1h30m)", value));
            return 0;
        }
        e->r.within_ns = ns;
        e->has_within = 1;
        break;
    }
    case K_SEVERITY:
        if (!name_ok(value, 32) || strchr(value, '.') || strchr(value, ':')) {
            fail(pc, ct_sprintf("severity \"%s\" must be 1-32 characters of [A-Za-z0-9_-]", value));
            return 0;
        }
        e->r.severity = ct_strdup(value);
        e->has_severity = 1;
        break;
    case K_ENABLED: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
        int v = -1;
        for (int i = 0; i < 4; i++) {
            if (!strcasecmp(value, yes[i])) v = 1;
            if (!strcasecmp(value, no[i])) v = 0;
        }
        if (v < 0) {
            fail(pc, ct_sprintf("enabled \"%s\" is not true or false", value));
            return 0;
        }
        e->r.disabled = !v;
        e->has_enabled = 1;
        break;
    }
    }
    return 1;
}

/* ---- resolving the entries ------------------------------------------------------- */

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int scoped(const entry *e) { return e->r.warehouse || e->r.carrier || e->r.channel; }

/* The unscoped entry of a name, the file's (last) before the defaults; NULL if none. */
static entry *base_of(sla_rules *r, const char *name)
{
    for (size_t i = r->n; i-- > 0;)
        if (!scoped(&r->v[i]) && !strcmp(r->v[i].r.name, name)) return &r->v[i];
    return NULL;
}

/* Check every entry of the file and complete it from its base; merge unscoped sections into the defaults. */
static void resolve(parse_ctx *pc)
{
    sla_rules *r = pc->r;
    /* Two sections with the same name and scope are a mistake. */
    for (size_t i = pc->first_file; i < r->n && !pc->err; i++)
        for (size_t j = pc->first_file; j < i; j++)
            if (!strcmp(r->v[i].r.name, r->v[j].r.name) && same_str(r->v[i].r.warehouse, r->v[j].r.warehouse) &&
                same_str(r->v[i].r.carrier, r->v[j].r.carrier) && same_str(r->v[i].r.channel, r->v[j].r.channel)) {
                fail_at(pc, r->v[i].line, ct_sprintf("rule %s with this scope is defined twice (first on line %d)",
                                                     r->v[i].r.name, r->v[j].line));
                return;
            }
    /* The pairs first: every entry that names from/to. */
    for (size_t i = pc->first_file; i < r->n && !pc->err; i++) {
        entry *e = &r->v[i];
        if (!e->from && !e->to) continue;
        if (!e->from || !e->to) {
            fail_at(pc, e->from ? e->from_line : e->to_line,
                    ct_sprintf("rule %s: from and to go together", e->r.name));
            return;
        }
        fold_sla_pair p;
        if (fold_sla_pair_parse(e->from, e->to, &p) != 0) {
            ct_buf b = {0};
            for (int k = 0; k < FOLD_SLA_PAIR_COUNT; k++)
                ct_buf_addf(&b, "%s%s -> %s", k ? ", " : "", fold_sla_pair_from((fold_sla_pair)k),
                            fold_sla_pair_to((fold_sla_pair)k));
            fail_at(pc, e->from_line, ct_sprintf("rule %s: %s -> %s is not a supported pair (supported: %s)",
                                                 e->r.name, e->from, e->to, b.data));
            ct_buf_free(&b);
            return;
        }
        e->r.pair = p;
        e->has_pair = 1;
    }
    /* An unscoped section of a default rule changes the default; of a new rule, defines it. */
    for (size_t i = pc->first_file; i < r->n && !pc->err; i++) {
        entry *e = &r->v[i];
        if (scoped(e)) continue;
        entry *def = NULL;
        for (size_t j = 0; j < pc->first_file; j++)
            if (!strcmp(r->v[j].r.name, e->r.name)) def = &r->v[j];
        if (def) {
            if (e->has_pair && e->r.pair != def->r.pair) {
                fail_at(pc, e->from_line, ct_sprintf("rule %s measures %s -> %s: a default rule cannot be "
                                                     "changed to another pair (name a new rule)",
                                                     e->r.name, fold_sla_pair_from(def->r.pair),
                                                     fold_sla_pair_to(def->r.pair)));
                return;
            }
            if (e->has_within) def->r.within_ns = e->r.within_ns;
            if (e->has_severity) {
                free((char *)def->r.severity);
                def->r.severity = ct_strdup(e->r.severity);
            }
            if (e->has_enabled) def->r.disabled = e->r.disabled;
            def->line = e->line;
            entry_free(e);
            memmove(e, e + 1, (r->n - i - 1) * sizeof *e);
            r->n--;
            i--;
            continue;
        }
        if (!e->has_pair || !e->has_within) {
            fail_at(pc, e->line, ct_sprintf("rule %s is not a default rule: it needs from, to and within", e->r.name));
            return;
        }
    }
    /* Overrides take what they do not set from the unscoped rule of their name. */
    for (size_t i = pc->first_file; i < r->n && !pc->err; i++) {
        entry *e = &r->v[i];
        if (!scoped(e)) continue;
        entry *b = base_of(r, e->r.name);
        if (b) {
            if (e->has_pair && e->r.pair != b->r.pair) {
                fail_at(pc, e->from_line, ct_sprintf("rule %s measures %s -> %s: an override cannot change from/to",
                                                     e->r.name, fold_sla_pair_from(b->r.pair),
                                                     fold_sla_pair_to(b->r.pair)));
                return;
            }
            e->r.pair = b->r.pair;
            if (!e->has_within) e->r.within_ns = b->r.within_ns;
            if (!e->has_severity && b->r.severity) e->r.severity = ct_strdup(b->r.severity);
            if (!e->has_enabled) e->r.disabled = b->r.disabled;
        } else if (!e->has_pair || !e->has_within) {
            fail_at(pc, e->line, ct_sprintf("rule %s has no unscoped [rule %s] to take from: it needs from, to and within",
                                            e->r.name, e->r.name));
            return;
        }
    }
    for (size_t i = 0; i < r->n; i++)
        if (!r->v[i].r.severity) r->v[i].r.severity = ct_strdup("warning");
}

static void finish(sla_rules *r)
{
    r->flat = ct_calloc(r->n ? r->n : 1, sizeof *r->flat);
    for (size_t i = 0; i < r->n; i++) r->flat[i] = r->v[i].r;
    r->view.v = r->flat;
    r->view.n = r->n;
}

static sla_rules *with_defaults(void)
{
    sla_rules *r = ct_calloc(1, sizeof *r);
    const fold_sla_rules *d = fold_sla_defaults();
    for (size_t i = 0; i < d->n; i++) {
        entry *e = entry_add(r);
        e->r = d->v[i];
        e->r.name = ct_strdup(d->v[i].name);
        e->r.severity = ct_strdup(d->v[i].severity);
        e->r.warehouse = ct_strdup(d->v[i].warehouse);
        e->r.carrier = ct_strdup(d->v[i].carrier);
        e->r.channel = ct_strdup(d->v[i].channel);
        e->has_pair = e->has_within = 1;
    }
    return r;
}

static ct_status parse_stream(sla_rules **out, FILE *f, const char *name, char **err)
{
    parse_ctx pc = {0};
    pc.r = with_defaults();
    pc.name = name;
    pc.lines.f = f;
    pc.first_file = pc.r->n;
    ct_status st = CT_OK;
    int rc = ini_parse_stream(read_line, &pc, on_pair, &pc);
    char *msg = NULL;
    if (pc.lines.read_errno) {
        msg = ct_sprintf("cannot read %s: %s", name, strerror(pc.lines.read_errno));
        st = CT_IO;
    } else if (pc.err && (rc <= 0 || pc.err_line <= rc)) {
        msg = ct_sprintf("%s:%d: %s", name, pc.err_line, pc.err);
    } else if (rc > 0) {
        msg = ct_sprintf("%s:%d: syntax error (expected KEY = VALUE or [rule NAME])", name, rc);
    } else if (rc < 0) {
        msg = ct_sprintf("cannot read %s: inih error %d", name, rc);
        st = CT_IO;
    } else {
        resolve(&pc);
        if (pc.err) msg = ct_sprintf("%s:%d: %s", name, pc.err_line, pc.err);
    }
    free(pc.lines.line);
    free(pc.err);
    if (msg) {
        if (st == CT_OK) st = CT_INVALID;
        if (err) *err = msg;
        else free(msg);
        sla_rules_destroy(pc.r);
        return st;
    }
    finish(pc.r);
    *out = pc.r;
    return CT_OK;
}

ct_status sla_rules_parse(sla_rules **out, const char *text, size_t len, const char *name, char **err)
{
    if (len == 0) {
        /* fmemopen refuses an empty buffer: an empty file is the defaults. */
        sla_rules *r = with_defaults();
        for (size_t i = 0; i < r->n; i++) r->v[i].line = 0;
        finish(r);
        *out = r;
        return CT_OK;
    }
    FILE *f = fmemopen((void *)text, len, "r");
    if (!f) {
        if (err) *err = ct_sprintf("cannot read %s: %s", name, strerror(errno));
        return CT_IO;
    }
    ct_status st = parse_stream(out, f, name, err);
    fclose(f);
    return st;
}

ct_status sla_rules_load(sla_rules **out, const char *path, char **err)
{
    if (!path) return sla_rules_parse(out, "", 0, "(defaults)", err);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (err) *err = ct_sprintf("cannot read SLA rules file %s: %s", path, strerror(errno));
        return CT_IO;
    }
    ct_status st = parse_stream(out, f, path, err);
    fclose(f);
    return st;
}

const fold_sla_rules *sla_rules_fold(const sla_rules *r) { return r ? &r->view : fold_sla_defaults(); }

const fold_sla_rule *sla_rules_lookup(const sla_rules *r, const char *rule, const char *warehouse,
                                      const char *carrier, const char *channel)
{
    return fold_sla_resolve(sla_rules_fold(r), rule, warehouse, carrier, channel);
}

int sla_rules_channel_scoped(const sla_rules *r, const char *rule)
{
    const fold_sla_rules *f = sla_rules_fold(r);
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].channel && rule && strcmp(f->v[i].name, rule) == 0) return 1;
    return 0;
}

static void duration(ct_buf *b, int64_t ns)
{
    int64_t s = ns / 1000000000LL;
    if (ns % 1000000000LL) ct_buf_addf(b, "%lldms", (long long)(ns / 1000000));
    else if (s % 3600 == 0) ct_buf_addf(b, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0) ct_buf_addf(b, "%lldm", (long long)(s / 60));
    else ct_buf_addf(b, "%llds", (long long)s);
}

void sla_rules_describe(const sla_rules *r, ct_buf *out)
{
    const fold_sla_rules *f = sla_rules_fold(r);
    for (size_t i = 0; i < f->n; i++) {
        const fold_sla_rule *x = &f->v[i];
        ct_buf_addf(out, "%s", x->name);
        if (x->warehouse) ct_buf_addf(out, " warehouse=%s", x->warehouse);
        if (x->carrier) ct_buf_addf(out, " carrier=%s", x->carrier);
        if (x->channel) ct_buf_addf(out, " channel=%s", x->channel);
        ct_buf_addf(out, ": %s -> %s within ", fold_sla_pair_from(x->pair), fold_sla_pair_to(x->pair));
        duration(out, x->within_ns);
        ct_buf_addf(out, ", severity %s%s\n", x->severity ? x->severity : "warning", x->disabled ? ", disabled" : "");
    }
}
