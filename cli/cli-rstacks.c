/*
 * cli-rstacks.c -- remote stacks for `profile --pid` and `top`
 * (cli-rstacks.h), built only when wl_stacks has libunwind-ptrace; without
 * it cli-rstacks.h gives stubs instead.
 *
 * The reader stops one running thread at a time (ptrace) at the attach's
 * ticks; `top` asks it for the functions at each view, `profile --pid`
 * reads all it recorded at the end and writes it like `profile CMD` does.
 */
#include <errno.h>
#include <string.h>

#include "cli-rstacks.h"
#include "cli-stacks.h"

int wl__cli_rstacks_begin(cli_rstacks *r, const int *pids, int npids, int off, double hz,
                      wl_attach_opts *ao, char *notice, size_t nlen)
{
    memset(r, 0, sizeof(*r));
    notice[0] = '\0';
    if (off)
        return 0;
    int ok = 1;
    for (int i = 0; i < npids && ok; i++)
        ok = wl_rstacks_probe(pids[i], notice, nlen) == 0;
    if (ok)
        wl_rstacks_new(&r->rs, hz, notice, nlen);
    if (r->rs)
        wl_rstacks_hook(r->rs, ao);
    return 0;
}

void wl__cli_rstacks_poll(cli_rstacks *r, const wl_rstacks_func **funcs, size_t *n,
                      double *pause_mean_us, const char **refused)
{
    if (!r->rs)
        return;
    wl_rstacks_stats st;
    wl_rstacks_get_stats(r->rs, &st);
    if (st.refused)
        *refused = wl_rstacks_notice(r->rs);
    *pause_mean_us = st.stops ? 1e6 * st.pause_total_s / (double)st.stops : 0;
    if (wl_rstacks_functions(r->rs, funcs, n) != 0)
        *n = 0;
}

json_t *wl__cli_rstacks_finish(cli_rstacks *r, int ran, wl_profile *prof)
{
    json_t *sections = NULL;
    if (!r->rs)
        return NULL;
    wl_rstacks_get_stats(r->rs, &r->stats);
    if (r->stats.refused && wl_rstacks_notice(r->rs)[0])
        fprintf(stderr, "wlprof: %s\n", wl_rstacks_notice(r->rs));
    int rc = ran ? wl_rstacks_finish(r->rs, &r->stacks) : -ECANCELED;
    wl_rstacks_free(r->rs);
    r->rs = NULL;
    if (ran && rc < 0)
        wl__cli_error("profile", "cannot read the stacks: %s", strerror(-rc));
    if (rc == 0 && !r->stats.refused)
        sections = wl_stacks_to_json(&r->stacks, 200, 200);
    r->have = sections != NULL;
    prof->stack_pauses = r->stats.stops;
    prof->pause_total_s = r->stats.pause_total_s;
    prof->pause_max_s = r->stats.pause_max_s;
    return sections;
}

int wl__cli_rstacks_save(cli_rstacks *r, wl_atomic_file *folded, wl_atomic_file *speedscope,
                     const char *name)
{
    int status = 0;
    if (wl__cli_stacks_save("profile", folded, &r->stacks, CLI_STACKS_FOLDED, name) < 0)
        status = WL_EXIT_FAILURE;
    if (wl__cli_stacks_save("profile", speedscope, &r->stacks, CLI_STACKS_SPEEDSCOPE, name) < 0)
        status = WL_EXIT_FAILURE;
    return status;
}

void wl__cli_rstacks_print(const cli_rstacks *r, FILE *f)
{
    if (r->have)
        wl_stacks_print_table(&r->stacks, f, 10);
    if (r->stats.stops > 0)
        fprintf(f,
                "  stacks   %llu stops of one thread at a time: pause %.1f us mean, %.1f us "
                "max; %llu blocked stacks read without a stop\n",
                (unsigned long long)r->stats.stops,
                1e6 * r->stats.pause_total_s / (double)r->stats.stops, 1e6 * r->stats.pause_max_s,
                (unsigned long long)r->stats.blocked_reads);
}

void wl__cli_rstacks_free(cli_rstacks *r)
{
    wl_rstacks_free(r->rs);
    r->rs = NULL;
    wl_stacks_free(&r->stacks);
    r->have = 0;
}
