/* A minimal test harness: CHECK records a failure and goes on; each test file
 * ends with CHECK_DONE(), which prints "N passed, N failed" and sets the exit code. */
#ifndef RA_CHECK_H
#define RA_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do { if (cond) check_passed++; else { check_failed++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { if (cond) check_passed++; else { check_failed++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_OK(expr) do { ra_status s_ = (expr); CHECK_MSG(s_ == RA_OK, "%s -> %s: %s", #expr, \
    ra_status_name(s_), ra_errmsg()); } while (0)
#define CHECK_STATUS(expr, want) do { ra_status s_ = (expr); CHECK_MSG(s_ == (want), "%s -> %s (%s), want %s", \
    #expr, ra_status_name(s_), ra_errmsg(), ra_status_name(want)); } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); CHECK_MSG(fabs(a_ - b_) <= (tol), \
    "%s = %.9g, %s = %.9g, tol %g", #a, a_, #b, b_, (double)(tol)); } while (0)
#define CHECK_DONE() do { printf("%s: %d passed, %d failed\n", __FILE__, check_passed, check_failed); \
    return check_failed ? 1 : 0; } while (0)

#endif
