/* Status codes and the thread-local error message.
 * Every fallible function returns ra_status; on failure it has called ra_fail()
 * with a message that says what went wrong and where (file, tensor, offset). */
#ifndef RA_STATUS_H
#define RA_STATUS_H

typedef enum {
    RA_OK = 0,
    RA_ERR_IO,          /* open/read/write/rename failed */
    RA_ERR_FORMAT,      /* malformed input file or data */
    RA_ERR_USAGE,       /* bad argument from the caller or the command line */
    RA_ERR_NOMEM,       /* allocation failed */
    RA_ERR_UNSUPPORTED, /* valid input we do not handle (a tensor type, an architecture) */
    RA_ERR_NOTFOUND,    /* a looked-up key or tensor is absent */
    RA_ERR_INTERNAL,    /* a bug: an invariant of our own did not hold */
    RA_ERR_DEVICE       /* the GPU, its driver or a CUDA library failed */
} ra_status;

/* Record a formatted message for the calling thread and return s unchanged,
 * so call sites read: return ra_fail(RA_ERR_FORMAT, "%s: bad magic", path); */
ra_status ra_fail(ra_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("loading model: " + old). */
ra_status ra_wrap(ra_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *ra_errmsg(void);     /* "" when no error was recorded */
const char *ra_status_name(ra_status s);
void ra_clear_error(void);

/* Propagate a failure: RA_TRY(f(x)); */
#define RA_TRY(expr) do { ra_status ra_try_s_ = (expr); if (ra_try_s_ != RA_OK) return ra_try_s_; } while (0)

#endif
