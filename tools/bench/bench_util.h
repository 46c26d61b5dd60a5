/* What the benchmarks share: loopback ports, a private nats-server, removing their scratch dirs. */
#ifndef TOWER_BENCH_UTIL_H
#define TOWER_BENCH_UTIL_H

#include <sys/types.h>

/** A loopback TCP port free at the time of the call (exits when there is none). */
int bench_free_port(void);

/** 1 if something accepts connections on the loopback port. */
int bench_port_open(int port);

/**
 * Starts `nats-server` with JetStream on 127.0.0.1:port, its config and store under dir, its output
 * discarded, dying with the benchmark; waits until it accepts connections.
 * \return its pid, or -1 (said on stderr) when it did not start.
 */
pid_t bench_start_nats(const char *dir, int port);

/** Removes a directory tree (says so on stderr when it could not). */
void bench_rm_rf(const char *dir);

#endif
