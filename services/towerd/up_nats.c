/* towerd up's own nats-server: a free loopback port, JetStream under DIR/nats, and credentials made at each
 * start for up's own clients. The secrets live only in 0600 files (never on a command line: /proc/PID/cmdline
 * is world-readable) and are never logged. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "up_nats.h"

char *up_nats_find_server(const char *flag)
{
    if (flag) return access(flag, X_OK) == 0 ? ct_strdup(flag) : NULL;
    const char *path = getenv("PATH");
    char *dirs = ct_sprintf("%s:/usr/sbin:/usr/bin", path ? path : "");
    char *save = NULL, *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        if (!*d) continue;
        char *cand = ct_sprintf("%s/nats-server", d);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
    }
    free(dirs);
    return found;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* 1 when our server (by its name) answers on its port with INFO, 0 not yet. */
static int nats_answers(const up_nats *n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
    if (fd < 0) return 0;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)n->port);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char buf[4096];
        size_t len = 0;
        while (len < sizeof buf - 1) {
            ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (r <= 0) break;
            len += (size_t)r;
            buf[len] = '\0';
            if (strstr(buf, "\r\n")) break;
        }
        buf[len] = '\0';
        char want[80];
        snprintf(want, sizeof want, "\"server_name\":\"%s\"", n->name);
        /* Another process may have taken the port between our probe and the server's bind: only ours counts. */
        ok = strncmp(buf, "INFO ", 5) == 0 && strstr(buf, want) != NULL;
    }
    close(fd);
    return ok;
}

void up_nats_log_tail(const up_nats *n)
{
    FILE *f = n->log_path ? fopen(n->log_path, "r") : NULL;
    if (!f) return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    fprintf(stderr, "--- the end of %s:\n%s\n", n->log_path, buf);
}

void up_nats_stop(up_nats *n, int sig, int timeout_s)
{
    if (n->pid <= 0) return;
    kill(n->pid, sig);
    for (int i = 0; i < timeout_s * 20; i++) {
        if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
            n->pid = 0;
            return;
        }
        usleep(50000);
    }
    ct_log(CT_LOG_WARN, "up", "nats-server did not stop within %d s: killing it", timeout_s);
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
}

int up_nats_exited(up_nats *n)
{
    if (n->pid <= 0 || waitpid(n->pid, NULL, WNOHANG) != n->pid) return 0;
    n->pid = 0;
    return 1;
}

/* ---- credentials ---- */

/* A fresh password: 32 random bytes in hex. */
static ct_status make_password(up_nats *n)
{
    unsigned char rnd[32];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t r = getrandom(rnd + got, sizeof rnd - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fprintf(stderr, "towerd up: no randomness for the NATS credentials: %s\n", strerror(errno));
            return CT_IO;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(n->password + 2 * i, 3, "%02x", rnd[i]);
    explicit_bzero(rnd, sizeof rnd);
    return CT_OK;
}

/* Write text to path, readable by its owner only (also when the file was there with wider permissions). */
static ct_status write_private(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        fprintf(stderr, "towerd up: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return CT_IO;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (close(fd) != 0 || done < len) {
        fprintf(stderr, "towerd up: cannot write %s: %s\n", path, strerror(errno));
        return CT_IO;
    }
    return CT_OK;
}

/* nats-server's configuration: generated at each start (the ports and the password change, the store stays).
   Clients on loopback only, with the password; the monitoring port (read-only: /jsz, /connz) on loopback too.
   JetStream is capped (by default it takes up to 75 % of RAM and disk). */
static ct_status write_server_conf(const up_nats *n, const char *conf, const char *jsdir, uint64_t max_mem,
                                   uint64_t max_file)
{
    char *text = ct_sprintf("# Written by towerd up at each start; edits are lost.\n"
                            "server_name: \"%s\"\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"
                            "authorization {\n  user: \"%s\"\n  password: \"%s\"\n}\n"
                            "jetstream {\n  store_dir: \"%s\"\n  max_memory_store: %" PRIu64
                            "\n  max_file_store: %" PRIu64 "\n}\n",
                            n->name, n->port, n->mport, UP_NATS_USER, n->password, jsdir, max_mem, max_file);
    ct_status st = write_private(conf, text);
    explicit_bzero(text, strlen(text));
    free(text);
    return st;
}

/* DIR/nats/client.conf: the [nats] keys every towerd command reads with --config. */
static ct_status write_client_conf(const up_nats *n)
{
    char *text = ct_sprintf("# Written by towerd up at each start: how to reach its NATS. The password changes at\n"
                            "# every start. Use: towerd publish --config %s FILE.ndjson\n"
                            "[nats]\nurl = %s\nuser = %s\npassword = %s\n",
                            n->client_conf, n->url, UP_NATS_USER, n->password);
    ct_status st = write_private(n->client_conf, text);
    explicit_bzero(text, strlen(text));
    free(text);
    return st;
}

void up_nats_bus_opts(const up_nats *n, bus_opts *o, const char *url1[1])
{
    url1[0] = n->url;
    o->urls = url1;
    o->n_urls = 1;
    o->user = UP_NATS_USER;
    o->password = n->password;
    o->token = NULL;
    o->creds = NULL;
    o->tls_ca = NULL;
}

/* ---- the server ---- */

/* Fork and exec nats-server -c conf: its own process group, dead with us, output to logfd. */
static pid_t spawn(const char *bin, const char *conf, int logfd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: its own process group (Ctrl-C is for us: we stop it last), dead with us, default
           signal dispositions and mask, output to the log. Only async-signal-safe calls here. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) fprintf(stderr, "towerd up: cannot start nats-server: %s\n", strerror(errno));
    return pid;
}

/* Wait until our server answers (CT_OK), exits, the deadline passes or *stop. */
static ct_status wait_up(up_nats *n, volatile sig_atomic_t *stop)
{
    int64_t deadline = ct_mono_ns() + 30000000000LL;
    while (!*stop && ct_mono_ns() < deadline) {
        if (up_nats_exited(n)) break;
        if (nats_answers(n)) return CT_OK;
        usleep(50000);
    }
    return CT_IO;
}

/* One attempt on fresh ports. */
static ct_status start_once(up_nats *n, const char *bin, const char *conf, const char *jsdir, uint64_t max_mem,
                            uint64_t max_file, volatile sig_atomic_t *stop)
{
    n->port = free_port();
    do n->mport = free_port();
    while (n->mport == n->port);
    snprintf(n->name, sizeof n->name, "tower-up-%08llx",
             (unsigned long long)(ct_hash64(&(int64_t){ct_wall_ns()}, 8) ^ (uint64_t)getpid()) & 0xffffffffULL);
    if (write_server_conf(n, conf, jsdir, max_mem, max_file) != CT_OK) return CT_USAGE; /* no retry */
    int logfd = open(n->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "towerd up: cannot open %s: %s\n", n->log_path, strerror(errno));
        return CT_USAGE;
    }
    pid_t pid = spawn(bin, conf, logfd);
    close(logfd);
    if (pid < 0) return CT_USAGE;
    n->pid = pid;
    if (wait_up(n, stop) == CT_OK) return CT_OK;
    if (n->pid) up_nats_stop(n, SIGKILL, 5);
    if (!*stop) ct_log(CT_LOG_WARN, "up", "nats-server did not come up on port %d", n->port);
    return CT_IO;
}

ct_status up_nats_start(up_nats *n, const char *bin, const char *dir, uint64_t max_mem, uint64_t max_file,
                        volatile sig_atomic_t *stop)
{
    char *ndir = ct_sprintf("%s/nats", dir), *conf = ct_sprintf("%s/nats.conf", ndir);
    char *jsdir = ct_sprintf("%s/jetstream", ndir);
    ct_status rc = CT_IO;
    n->log_path = ct_sprintf("%s/nats-server.log", ndir);
    n->client_conf = ct_sprintf("%s/client.conf", ndir);
    /* The directory keeps the credentials (and the stream): its owner's only. */
    if ((mkdir(ndir, 0700) != 0 && errno != EEXIST) || chmod(ndir, 0700) != 0) {
        fprintf(stderr, "towerd up: cannot create %s: %s\n", ndir, strerror(errno));
        goto out;
    }
    if (make_password(n) != CT_OK) goto out;
    /* CT_IO: it did not come up on these ports, try others; CT_USAGE: no use trying again (said why). */
    for (int attempt = 0; attempt < 5 && rc == CT_IO && !*stop; attempt++)
        rc = start_once(n, bin, conf, jsdir, max_mem, max_file, stop);
    snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    if (rc == CT_OK) {
        rc = write_client_conf(n);
    } else if (rc == CT_IO && !*stop) {
        fprintf(stderr, "towerd up: nats-server (%s) would not start\n", bin);
        up_nats_log_tail(n);
    }
    if (rc != CT_OK) rc = CT_IO;
out:
    free(ndir);
    free(conf);
    free(jsdir);
    return rc;
}

void up_nats_free(up_nats *n)
{
    free(n->log_path);
    free(n->client_conf);
    n->log_path = n->client_conf = NULL;
    explicit_bzero(n->password, sizeof n->password);
}
