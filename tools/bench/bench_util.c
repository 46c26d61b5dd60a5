/* What the benchmarks share: loopback ports, a private nats-server, removing their scratch dirs. */
#include "bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ct.h"

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) exit(1);
    close(fd);
    return ntohs(a.sin_port);
}

int bench_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

pid_t bench_start_nats(const char *dir, int port)
{
    char *conf = ct_sprintf("%s/nats.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", conf);
        free(conf);
        return -1;
    }
    fprintf(f, "listen: 127.0.0.1:%d\njetstream { store_dir: \"%s/ns\", max_memory_store: 256MB, max_file_store: 8GB }\n",
            port, dir);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the benchmark, even if it crashes */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("nats-server", "nats-server", "-c", conf, (char *)NULL);
        _exit(127);
    }
    free(conf);
    for (int i = 0; i < 200 && !bench_port_open(port); i++) usleep(25000);
    if (!bench_port_open(port)) {
        fprintf(stderr, "nats-server did not start (is it installed? tools/setup.sh)\n");
        return -1;
    }
    return pid;
}

void bench_rm_rf(const char *dir)
{
    char *cmd = ct_sprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(cmd);
}
