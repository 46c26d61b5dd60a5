/* Internals shared by the risk library's files. */
#ifndef RISK_INT_H
#define RISK_INT_H

#include <stddef.h>

/* Format an error message into err (len bytes; nothing when err is NULL or len 0) (risk_stats.c). */
void risk__set_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
