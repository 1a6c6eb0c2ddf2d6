/*
 * cli-rstacks.h -- native stacks of running processes read from outside
 * (wlprof/rstacks.h: libunwind-ptrace) for `profile --pid` and `top`,
 * behind one interface whether or not this wlprof was built with them.
 *
 * Built with them (WL_HAVE_RSTACKS, set by the wl_stacks target when
 * libunwind-ptrace is there), these are declared here and defined in
 * cli-rstacks.c; without, they are the static inline stubs below:
 * wl__cli_rstacks_begin says -ENOTSUP and the rest do nothing. Callers need no
 * #ifdef.
 *
 * A cli_rstacks is caller-allocated; wl__cli_rstacks_begin sets it up (also
 * when it fails) and wl__cli_rstacks_free releases it.
 */
#ifndef WL_CLI_RSTACKS_H
#define WL_CLI_RSTACKS_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "wlprof/attach.h"

#ifdef WL_HAVE_RSTACKS
#include "wlprof/rstacks.h"
#include "wlprof/stacks.h"

typedef struct cli_rstacks {
    wl_rstacks *rs;         /* the reader, NULL when off or refused */
    wl_rstacks_stats stats; /* after wl__cli_rstacks_finish */
    wl_stacks stacks;       /* `profile --pid`: what was read, at the end */
    int have;               /* stacks are the run's: in the report and table */
} cli_rstacks;

/* Arms the reader at hz for the attach (hooks it into *ao) unless off:
 * each of pids (npids 0: a command `top` starts itself) is probed first.
 * notice gets one line when the targets cannot be read ("" else). Returns
 * 0, or -ENOTSUP when this wlprof was built without remote stacks (also
 * when off). */
int wl__cli_rstacks_begin(cli_rstacks *r, const int *pids, int npids, int off, double hz,
                      wl_attach_opts *ao, char *notice, size_t nlen);

/* `top`, at each view: the functions so far into *funcs and *n (left as they
 * were without a reader), the mean pause of a stop, and *refused the
 * reader's notice when it was refused (else left alone). */
void wl__cli_rstacks_poll(cli_rstacks *r, const wl_rstacks_func **funcs, size_t *n,
                      double *pause_mean_us, const char **refused);

/* `profile --pid`, after the attach (ran: it profiled): reads the stacks,
 * puts the pauses into prof, prints the notice of a refused reader and the
 * error of a failed read. Returns the report's "functions" and "stacks"
 * sections (a new reference), NULL when there are none. */
json_t *wl__cli_rstacks_finish(cli_rstacks *r, int ran, wl_profile *prof);

/* `profile --pid`: writes --folded and --speedscope (opened ones) from the
 * stacks read. Returns 0 or WL_EXIT_FAILURE. */
int wl__cli_rstacks_save(cli_rstacks *r, wl_atomic_file *folded, wl_atomic_file *speedscope,
                     const char *name);

/* `profile --pid`: the function table and what the stops cost, on f. */
void wl__cli_rstacks_print(const cli_rstacks *r, FILE *f);

void wl__cli_rstacks_free(cli_rstacks *r);

#else /* built without remote stacks */

typedef struct wl_rstacks_func {
    const char *name, *module;
    double cpu_s, wait_s;
} wl_rstacks_func;

typedef struct cli_rstacks {
    int unused;
} cli_rstacks;

static inline int wl__cli_rstacks_begin(cli_rstacks *r, const int *pids, int npids, int off,
                                    double hz, wl_attach_opts *ao, char *notice, size_t nlen)
{
    (void)pids, (void)npids, (void)off, (void)hz, (void)ao;
    memset(r, 0, sizeof(*r));
    if (nlen)
        notice[0] = '\0';
    return -ENOTSUP;
}

static inline void wl__cli_rstacks_poll(cli_rstacks *r, const wl_rstacks_func **funcs, size_t *n,
                                    double *pause_mean_us, const char **refused)
{
    (void)r, (void)funcs, (void)n, (void)pause_mean_us, (void)refused;
}

static inline json_t *wl__cli_rstacks_finish(cli_rstacks *r, int ran, wl_profile *prof)
{
    (void)r, (void)ran, (void)prof;
    return NULL;
}

static inline int wl__cli_rstacks_save(cli_rstacks *r, wl_atomic_file *folded,
                                   wl_atomic_file *speedscope, const char *name)
{
    (void)r, (void)name;
    wl_atomic_abort(folded);
    wl_atomic_abort(speedscope);
    return 0;
}

static inline void wl__cli_rstacks_print(const cli_rstacks *r, FILE *f)
{
    (void)r, (void)f;
}

static inline void wl__cli_rstacks_free(cli_rstacks *r)
{
    (void)r;
}

#endif /* WL_HAVE_RSTACKS */
#endif
