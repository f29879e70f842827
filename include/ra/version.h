/* The tool's version and git commit, set by the Makefile (-DRA_VERSION=...,
 * -DRA_GIT_COMMIT=...); they go into every manifest and report. */
#ifndef RA_VERSION_H
#define RA_VERSION_H

#ifndef RA_VERSION
#define RA_VERSION "dev"
#endif
#ifndef RA_GIT_COMMIT
#define RA_GIT_COMMIT "unknown"
#endif

#endif
