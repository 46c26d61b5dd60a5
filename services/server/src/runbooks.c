/* Runbooks (docs/runbooks/README.md): Markdown files under --runbooks DIR, one per view, reason, dead
 * letter code, rule or alert, served as text that the dashboard renders itself (never as HTML).
 *
 * GET /api/v1/runbooks                       viewer: {"runbooks":[{"id":"view/blocked","title":"..."},...]}
 * GET /api/v1/runbooks/{kind}/{name}         viewer: {"id","title","markdown"}; 404 when there is none
 * GET /api/v1/runbooks/match?view=&reason=&code=&rule=&alert=
 *                                            viewer: the most specific that exists (alert, rule, code,
 *                                            reason, then view), with "tried"; 404 listing what was tried
 *
 * A runbook id is KIND/NAME: KIND one of view, reason, code, rule, alert; NAME 1-64 of [A-Za-z0-9_.-], not
 * starting with '.'. So a path never leaves DIR/KIND, and the file is opened without following a link. */
#include "server_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNBOOK_MAX (256 * 1024) /* the largest file served */
#define RUNBOOK_LIST_MAX 2000    /* files listed at most */
#define NAME_MAX_LEN 64

static const char *const kinds[] = {"alert", "rule", "code", "reason", "view"}; /* most specific first */
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static const char *root(const http_server *s)
{
    return s->o.runbooks && *s->o.runbooks ? s->o.runbooks : "./docs/runbooks";
}

int server_runbook_kind_ok(const char *kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (!strcmp(kind, kinds[i])) return 1;
    return 0;
}

int server_runbook_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.') return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '.' || *p == '-'))
            return 0;
    return 1;
}

/* The file's text (caller frees) or NULL: errno ENOENT when there is none. */
static char *read_runbook(const http_server *s, const char *kind, const char *name, size_t *len)
{
    char *path = ct_sprintf("%s/%s/%s.md", root(s), kind, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    free(path);
    if (fd < 0) return NULL;
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= RUNBOOK_MAX) {
        text = ct_malloc((size_t)st.st_size + 1);
        ssize_t got = read(fd, text, (size_t)st.st_size);
        if (got < 0) {
            free(text);
            text = NULL;
        } else {
            text[got] = '\0';
            *len = (size_t)got;
        }
    } else {
        errno = ENOENT;
    }
    close(fd);
    return text;
}

/* The first "# " line's text, at most 200 bytes; the id when there is none. */
static json_t *title_of(const char *text, const char *id)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 2 && p[0] == '#' && p[1] == ' ') return json_stringn(p + 2, n - 2 > 200 ? 200 : n - 2);
        p = nl ? nl + 1 : NULL;
    }
    return json_string(id);
}

static json_t *runbook_json(const char *kind, const char *name, const char *text, size_t len)
{
    char id[96];
    snprintf(id, sizeof id, "%s/%s", kind, name);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "title", title_of(text, id));
    /* Not UTF-8: served as its bytes would be unsafe to guess; say so instead. */
    json_t *md = json_stringn(text, len);
    json_object_set_new(o, "markdown", md ? md : json_string("(this runbook is not valid UTF-8)"));
    return o;
}

static int list(struct mg_connection *c, http_server *s)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < N_KINDS && json_array_size(arr) < RUNBOOK_LIST_MAX; k++) {
        char *dir = ct_sprintf("%s/%s", root(s), kinds[k]);
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, alphasort);
        free(dir);
        for (int i = 0; i < n; i++) {
            char name[NAME_MAX_LEN + 4];
            size_t l = strlen(ents[i]->d_name);
            if (l > 3 && l - 3 <= NAME_MAX_LEN && !strcmp(ents[i]->d_name + l - 3, ".md") &&
                json_array_size(arr) < RUNBOOK_LIST_MAX) {
                snprintf(name, sizeof name, "%.*s", (int)(l - 3), ents[i]->d_name);
                size_t len = 0;
                char *text = server_runbook_name_ok(name) ? read_runbook(s, kinds[k], name, &len) : NULL;
                if (text) {
                    json_t *o = runbook_json(kinds[k], name, text, len);
                    json_object_del(o, "markdown");
                    json_array_append_new(arr, o);
                    free(text);
                }
            }
            free(ents[i]);
        }
        free(ents);
    }
    json_t *body = json_object();
    json_object_set_new(body, "runbooks", arr);
    json_object_set_new(body, "count", json_integer((json_int_t)json_array_size(arr)));
    return server__json(c, s, SERVER_ROUTE_RUNBOOKS, 200, body);
}

static int one(struct mg_connection *c, http_server *s, const char *kind, const char *name)
{
    if (!server_runbook_kind_ok(kind))
        return server__error(c, s, SERVER_ROUTE_RUNBOOKS, 404, "NOT_FOUND", NULL,
                             "no runbook kind \"%.64s\": alert, rule, code, reason or view", kind);
    if (!server_runbook_name_ok(name))
        return server__error(c, s, SERVER_ROUTE_RUNBOOKS, 400, "INVALID_PARAMETER", "name",
                             "a runbook name is 1-64 of A-Z a-z 0-9 _ . - and does not start with '.'");
    size_t len = 0;
    char *text = read_runbook(s, kind, name, &len);
    if (!text)
        return server__error(c, s, SERVER_ROUTE_RUNBOOKS, 404, "NOT_FOUND", NULL, "no runbook %s/%s in %s", kind,
                             name, root(s));
    json_t *body = runbook_json(kind, name, text, len);
    free(text);
    return server__json(c, s, SERVER_ROUTE_RUNBOOKS, 200, body);
}

static int match(struct mg_connection *c, http_server *s, const char *qs)
{
    json_t *tried = json_array();
    for (size_t k = 0; k < N_KINDS; k++) {
        char name[NAME_MAX_LEN + 2];
        int got = server_query_var(qs, kinds[k], name, sizeof name);
        if (got == 0 || !name[0]) continue;
        if (got < 0 || !server_runbook_name_ok(name)) {
            json_decref(tried);
            return server__error(c, s, SERVER_ROUTE_RUNBOOKS, 400, "INVALID_PARAMETER", kinds[k],
                                 "%s: a runbook name is 1-64 of A-Z a-z 0-9 _ . -", kinds[k]);
        }
        char id[96];
        snprintf(id, sizeof id, "%s/%s", kinds[k], name);
        json_array_append_new(tried, json_string(id));
        size_t len = 0;
        char *text = read_runbook(s, kinds[k], name, &len);
        if (text) {
            json_t *body = runbook_json(kinds[k], name, text, len);
            json_object_set_new(body, "tried", tried);
            free(text);
            return server__json(c, s, SERVER_ROUTE_RUNBOOKS, 200, body);
        }
    }
    char *what = json_dumps(tried, JSON_COMPACT);
    json_decref(tried);
    int rc = server__error(c, s, SERVER_ROUTE_RUNBOOKS, 404, "NOT_FOUND", NULL, "no runbook for %s in %s",
                           what && strcmp(what, "[]") ? what : "(nothing asked: give view=, reason=, code=, rule= or alert=)",
                           root(s));
    free(what);
    return rc;
}

int server__runbooks(struct mg_connection *c, http_server *s, const char *uri, const char *qs)
{
    const char *rest = uri + strlen("/api/v1/runbooks");
    if (!*rest) return list(c, s);
    rest++; /* the '/' */
    if (!strcmp(rest, "match")) return match(c, s, qs);
    const char *slash = strchr(rest, '/');
    if (!slash || strchr(slash + 1, '/') || slash - rest > 16)
        return server__error(c, s, SERVER_ROUTE_RUNBOOKS, 404, "NOT_FOUND", NULL,
                             "a runbook is /api/v1/runbooks/KIND/NAME, or /api/v1/runbooks/match?view=...");
    char kind[17];
    snprintf(kind, sizeof kind, "%.*s", (int)(slash - rest), rest);
    return one(c, s, kind, slash + 1);
}
