/*
 * progress.c -- job bookkeeping and the progress display.
 *
 * Display modes: on a TTY one status line redrawn in place every 200 ms
 * ("\r" + erase), cleared before any job output so the two never mix; off
 * a TTY a plain line every progress_every_s (2 s) so logs stay readable;
 * or nothing (--quiet). Everything runs on the loop thread: the timer is a
 * uv_timer_t, unreferenced so it never keeps the loop alive on its own.
 *
 * Rate and ETA use the main phase only (the pilot ran sequentially, on
 * purpose slower): rate = jobs finished in the main phase / its seconds.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int wl__run_result_init(wl_run_result *r, wl_run_mode mode, size_t n, const char *what)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    r->executor = -1;
    r->njobs = n;
    r->jobs = calloc(n ? n : 1, sizeof(*r->jobs));
    r->what = strdup(what);
    if (!r->jobs || !r->what)
        return -ENOMEM;
    return 0;
}

void wl__run_job_end(wl_run_result *r, size_t i, wl_job_state st, int status, const char *err,
                  double start_s, double end_s)
{
    wl_job_result *j = &r->jobs[i];
    j->state = st;
    j->status = status;
    j->start_s = j->nattempts ? j->start_s : start_s;
    j->wall_s = end_s - j->start_s;
    free(j->error);
    j->error = err && *err ? strdup(err) : NULL;
    wl_job_attempt *a = realloc(j->attempts, (j->nattempts + 1) * sizeof(*a));
    if (!a)
        return;
    j->attempts = a;
    a += j->nattempts++;
    a->state = st;
    a->status = status;
    a->start_s = start_s;
    a->wall_s = end_s - start_s;
    a->error = err && *err ? strdup(err) : NULL;
}

int wl__run_should_retry(const wl_run_opts *o, wl_job_state st, size_t attempts)
{
    return (st == WL_JOB_FAILED || st == WL_JOB_TIMED_OUT) && o->retries > 0 &&
           attempts <= (size_t)o->retries;
}

void wl__run_result_count(wl_run_result *r)
{
    r->ok = r->failed = r->cancelled = r->not_run = r->timed_out = r->skipped = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        switch (r->jobs[i].state) {
        case WL_JOB_OK:
            r->ok++;
            break;
        case WL_JOB_FAILED:
            r->failed++;
            break;
        case WL_JOB_CANCELLED:
            r->cancelled++;
            break;
        case WL_JOB_TIMED_OUT:
            r->timed_out++;
            break;
        case WL_JOB_SKIPPED:
            r->skipped++;
            break;
        default:
            r->not_run++;
            break;
        }
    }
}

void wl_run_result_free(wl_run_result *r)
{
    for (size_t i = 0; r->jobs && i < r->njobs; i++) {
        free(r->jobs[i].error);
        free(r->jobs[i].node);
        free(r->jobs[i].command);
        for (size_t k = 0; k < r->jobs[i].nattempts; k++)
            free(r->jobs[i].attempts[k].error);
        free(r->jobs[i].attempts);
    }
    free(r->jobs);
    free(r->what);
    free(r->cluster);
    wl_profile_free(&r->profile);
    wl_verdict_free(&r->verdict);
    memset(r, 0, sizeof(*r));
}

/* ---- display ------------------------------------------------------------ */

void wl__run_progress_init(run_progress *p, const wl_run_opts *o, wl_run_result *r, double t0)
{
    memset(p, 0, sizeof(*p));
    p->r = r;
    p->mode = o->progress;
    p->f = o->progress_out ? o->progress_out : stderr;
    p->every_s = o->progress_every_s > 0 ? o->progress_every_s : 2.0;
    p->t0 = t0;
    p->main_t0 = t0;
    p->last_plain = t0;
}

static void format_line(run_progress *p, char *buf, size_t len)
{
    double now = wl__run_now();
    double main_s = now - p->main_t0;
    size_t main_done = p->done - p->main_done0;
    double rate = main_s > 0 ? (double)main_done / main_s : 0;
    size_t left = p->r->njobs - p->done;
    char eta[32] = "-";
    if (rate > 0)
        snprintf(eta, sizeof(eta), "%.0f s", (double)left / rate);
    snprintf(buf, len, "[wlprof run] %zu/%zu done, %zu running, %.1f jobs/s, ETA %s, %zu failed, "
                       "%.1f s",
             p->done, p->r->njobs, p->running, rate, eta, p->failed, now - p->t0);
}

static void draw(run_progress *p, int final)
{
    char line[256];
    if (p->mode == 0)
        return;
    format_line(p, line, sizeof(line));
    if (p->mode == 2) {
        fprintf(p->f, "\r\033[K%s%s", line, final ? "\n" : "");
        p->shown = !final;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
}

static void on_tick(uv_timer_t *t)
{
    run_progress *p = t->data;
    double now = wl__run_now();
    if (p->mode == 2) {
        draw(p, 0);
    } else if (now - p->last_plain >= p->every_s) {
        p->last_plain = now;
        draw(p, 0);
    }
}

void wl__run_progress_start(run_progress *p, uv_loop_t *uv)
{
    p->main_t0 = wl__run_now();
    p->main_done0 = p->done;
    p->last_plain = p->main_t0;
    if (p->mode == 0)
        return;
    uv_timer_init(uv, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_tick, 200, p->mode == 2 ? 200 : 250);
    uv_unref((uv_handle_t *)&p->timer);
}

void wl__run_progress_clear(run_progress *p)
{
    if (p->mode == 2 && p->shown) {
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->shown = 0;
    }
}

void wl__run_progress_job(run_progress *p, int ok)
{
    p->done++;
    if (!ok)
        p->failed++;
}

void wl__run_progress_stop(run_progress *p)
{
    if (p->mode == 0)
        return;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
    draw(p, 1);
}

void wl__run_progress_note(run_progress *p, const char *fmt, ...)
{
    va_list ap;
    if (p->mode == 0)
        return;
    wl__run_progress_clear(p);
    fputs("[wlprof run] ", p->f);
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fputc('\n', p->f);
    fflush(p->f);
}
