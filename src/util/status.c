#include "ra/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char msg[1024];

ra_status ra_fail(ra_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return s;
}

ra_status ra_wrap(ra_status s, const char *fmt, ...)
{
    char old[sizeof msg], prefix[512];
    memcpy(old, msg, sizeof msg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t n = strlen(prefix);
    if (n > sizeof msg - 3) n = sizeof msg - 3;
    memcpy(msg, prefix, n);
    memcpy(msg + n, ": ", 2);
    size_t room = sizeof msg - n - 3, m = strlen(old);
    if (m > room) m = room;
    memcpy(msg + n + 2, old, m);
    msg[n + 2 + m] = 0;
    return s;
}

const char *ra_errmsg(void) { return msg; }
void ra_clear_error(void) { msg[0] = 0; }

const char *ra_status_name(ra_status s)
{
    switch (s) {
    case RA_OK: return "ok";
    case RA_ERR_IO: return "I/O error";
    case RA_ERR_FORMAT: return "malformed input";
    case RA_ERR_USAGE: return "usage error";
    case RA_ERR_NOMEM: return "out of memory";
    case RA_ERR_UNSUPPORTED: return "unsupported";
    case RA_ERR_NOTFOUND: return "not found";
    case RA_ERR_INTERNAL: return "internal error";
    case RA_ERR_DEVICE: return "GPU error";
    }
    return "unknown status";
}
