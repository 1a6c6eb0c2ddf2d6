/*
 * cli-stacks.h -- what the subcommands do with stack profiles (agent/,
 * wlprof/stacks.h), behind one interface whether or not this wlprof was
 * built with them.
 *
 * Built with the stack agent (WL_HAVE_STACKS, set by the wl_stacks
 * target), these are declared here and defined in cli-stacks.c. Built
 * without it (no libdw), they are the static inline stubs below: asking for
 * a stacks output is refused with one line, and everything else is a
 * no-op on an empty cli_stacks. Callers then need no #ifdef (perf's way
 * with its optional libraries).
 *
 * A cli_stacks is caller-allocated and zeroed with wl__cli_stacks_init();
 * wl__cli_stacks_free() releases what it holds and is safe on a zeroed value.
 */
#ifndef WL_CLI_STACKS_H
#define WL_CLI_STACKS_H

#include <stdio.h>

#include "builtin.h"
#include "wlprof/report.h"

/* What a stacks output is written as (wl__cli_stacks_export, wl__cli_stacks_save). */
enum {
    CLI_STACKS_FOLDED,       /* folded, lines from "process PID;thread TID;" */
    CLI_STACKS_FOLDED_PLAIN, /* folded, lines from the outermost frame */
    CLI_STACKS_SPEEDSCOPE,   /* a speedscope profile */
};

#ifdef WL_HAVE_STACKS
#include "wlprof/stacks.h"

typedef struct cli_stacks {
    wl_stacks_session sess; /* `profile`: the agent's run (zeroed: none) */
    wl_stacks st;           /* what was recorded or read back */
    int have;               /* st holds a stack table (from a run or a report) */
} cli_stacks;

void wl__cli_stacks_init(cli_stacks *s);
void wl__cli_stacks_free(cli_stacks *s);

/* `profile`: whether --folded/--speedscope (either may be NULL) can be
 * written at all by this build. 0, or -1 after printing one line. */
static inline int cli_stacks_outputs_possible(const char *folded, const char *speedscope)
{
    (void)folded;
    (void)speedscope;
    return 0;
}

/* `profile`: arms the agent for cmd at hz (0: 100) unless off; prints the
 * one-line notice when the target cannot take it. Returns -1 when a stacks
 * output (folded, speedscope: paths or NULL) was asked for and cannot be
 * produced (the notice is then the error). */
int wl__cli_stacks_begin(cli_stacks *s, int off, const char *folded, const char *speedscope,
                     const char *cmd, double hz);

/* `profile`, after the run: collects the stacks and writes --folded and
 * --speedscope into their temporaries (opened before the run; unopened
 * ones are skipped), committing or aborting each. Returns 0 or
 * WL_EXIT_FAILURE. */
int wl__cli_stacks_end(cli_stacks *s, wl_atomic_file *folded, wl_atomic_file *speedscope,
                   const char *name);

/* `profile`: the report's "functions" and "stacks" sections (a new json_t
 * reference), NULL when the run recorded none or out of memory. */
json_t *wl__cli_stacks_sections(const cli_stacks *s);

/* `profile`: the functions table on f, when the run recorded stacks. */
void wl__cli_stacks_print_functions(const cli_stacks *s, FILE *f, int sort_total, int width);

/* `report`: reads the report's stack table from root (borrowed) into s.
 * A report without one is fine unless needed (a stacks output was asked
 * for). Returns 0, or -1 after printing one line for report path. */
int wl__cli_stacks_from_report(cli_stacks *s, const json_t *root, const char *path, int needed);

/* `report`: the function table on f, when the report has stacks. */
void wl__cli_stacks_print_table(const cli_stacks *s, FILE *f);

/* Writes st in format (CLI_STACKS_*; speedscope's profile named name)
 * into af's open temporary and commits it; an af not open is left alone.
 * Returns 0, or -1 after one line for cmd (af then aborted). */
int wl__cli_stacks_save(const char *cmd, wl_atomic_file *af, const wl_stacks *st, int format,
                    const char *name);

/* wl__cli_stacks_save of what s holds (`report`: the report's stack table). */
int wl__cli_stacks_export(const cli_stacks *s, const char *cmd, wl_atomic_file *af, int format,
                      const char *name);

#else /* built without the stack agent */

#include <errno.h>
#include <string.h>

typedef struct cli_stacks {
    int unused;
} cli_stacks;

static inline void wl__cli_stacks_init(cli_stacks *s)
{
    memset(s, 0, sizeof(*s));
}

static inline void wl__cli_stacks_free(cli_stacks *s)
{
    (void)s;
}

static inline int cli_stacks_outputs_possible(const char *folded, const char *speedscope)
{
    if (!folded && !speedscope)
        return 0;
    wl__cli_error("profile", "this wlprof was built without stack sampling (libdw missing): "
                         "%s cannot be written", folded ? "--folded" : "--speedscope");
    return -1;
}

static inline int wl__cli_stacks_begin(cli_stacks *s, int off, const char *folded,
                                   const char *speedscope, const char *cmd, double hz)
{
    (void)s, (void)off, (void)folded, (void)speedscope, (void)cmd, (void)hz;
    return 0;
}

static inline int wl__cli_stacks_end(cli_stacks *s, wl_atomic_file *folded,
                                 wl_atomic_file *speedscope, const char *name)
{
    (void)s, (void)name;
    wl_atomic_abort(folded);
    wl_atomic_abort(speedscope);
    return 0;
}

static inline json_t *wl__cli_stacks_sections(const cli_stacks *s)
{
    (void)s;
    return NULL;
}

static inline void wl__cli_stacks_print_functions(const cli_stacks *s, FILE *f, int sort_total,
                                              int width)
{
    (void)s, (void)f, (void)sort_total, (void)width;
}

static inline int wl__cli_stacks_from_report(cli_stacks *s, const json_t *root, const char *path,
                                         int needed)
{
    (void)s, (void)root, (void)path;
    if (!needed)
        return 0;
    wl__cli_error("report", "this wlprof was built without stack support (libdw missing)");
    return -1;
}

static inline void wl__cli_stacks_print_table(const cli_stacks *s, FILE *f)
{
    (void)s, (void)f;
}

static inline int wl__cli_stacks_export(const cli_stacks *s, const char *cmd, wl_atomic_file *af,
                                    int format, const char *name)
{
    (void)s, (void)format, (void)name;
    if (!af->f)
        return 0;
    wl__cli_error(cmd, "cannot write %s: %s", af->path, strerror(ENOTSUP));
    wl_atomic_abort(af);
    return -1;
}

#endif /* WL_HAVE_STACKS */
#endif
