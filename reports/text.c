/*
 * text.c -- the compact human summary printed after a profile.
 *
 * Absolute seconds and sample counts come first and shares second: shares
 * alone move with the sampling rate and hide how long things took.
 */
#include "wlprof/report.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

#define BAR_WIDTH 40
#define TOP_REASONS 5
#define TOP_THREADS 5

static const char *col(int color, const char *code)
{
    return color ? code : "";
}

static void print_bar(FILE *f, const wl_profile *p, int color)
{
    int user = (int)(p->user_frac * BAR_WIDTH + 0.5);
    int sys = (int)(p->sys_frac * BAR_WIDTH + 0.5);
    if (user + sys > BAR_WIDTH)
        sys = BAR_WIDTH - user;
    int wait = BAR_WIDTH - user - sys;
    fprintf(f, "           [%s", col(color, "\033[32m"));
    for (int i = 0; i < user; i++)
        fputc('#', f);
    fprintf(f, "%s", col(color, "\033[33m"));
    for (int i = 0; i < sys; i++)
        fputc('=', f);
    fprintf(f, "%s", col(color, "\033[34m"));
    for (int i = 0; i < wait; i++)
        fputc('.', f);
    fprintf(f, "%s]  #user =system .waiting\n", col(color, "\033[0m"));
}

/* Prints one line cut to width columns (a '~' marks the cut). */
static void put_line(FILE *f, int width, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_line(FILE *f, int width, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n >= width && width > 1 && (size_t)width < sizeof(buf)) {
        buf[width - 2] = '~';
        buf[width - 1] = '\0';
    }
    fprintf(f, "%s\n", buf);
}

static void print_reason(FILE *f, int width, const wl_wait_stat *w, double total)
{
    put_line(f, width, "    %5.1f%% %8.3f s %6llu  %-8s %-16s %s",
             total > 0 ? 100.0 * w->seconds / total : 0.0, w->seconds,
             (unsigned long long)w->samples, wl_wait_kind_name(w->kind),
             w->syscall[0] ? w->syscall : "-", w->wchan[0] ? w->wchan : "-");
}

static void bytes(char *buf, size_t len, uint64_t b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.*f %s", u ? 1 : 0, v, units[u]);
}

void wl_report_print_summary(FILE *f, const wl_profile *p, int color, int width)
{
    const char *bold = col(color, "\033[1m"), *reset = col(color, "\033[0m");
    char cmd[512] = "";
    size_t used = 0;
    for (int i = 0; i < p->argc && used + 1 < sizeof(cmd); i++) {
        int k = snprintf(cmd + used, sizeof(cmd) - used, " %s", p->argv[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    char status[96];
    if (p->attached)
        snprintf(status, sizeof(status), "(attached to pid %d%s)", p->pid,
                 p->nprocs > 1 ? " and others" : "");
    else if (p->term_signal)
        snprintf(status, sizeof(status), "(pid %d, killed by SIG%s%s)", p->pid,
                 sigabbrev_np(p->term_signal) ? sigabbrev_np(p->term_signal) : "?",
                 p->core_dumped ? ", core dumped" : "");
    else
        snprintf(status, sizeof(status), "(pid %d, exit %d)", p->pid, p->exit_code);
    /* The command is cut to the width, the status always shown. */
    int room = width - 1 - 7 - 2 - (int)strlen(status);
    if (room < 10)
        room = 10;
    if ((int)strlen(cmd) > room) {
        cmd[room - 4 > 0 ? room - 4 : 0] = '\0';
        strcat(cmd, " ...");
    }
    fprintf(f, "%swlprof:%s%s  %s\n", bold, reset, cmd, status);
    put_line(f, width, "  wall %8.3f s   user %.3f s   system %.3f s   cores busy %.2f", p->wall_s,
             p->user_s, p->sys_s, p->cores_busy);
    if (p->sampled_s <= 0 && p->ticks >= 5 && p->proc_read_errors > 0) {
        fprintf(f, "  split    (no thread could be read in /proc: exact totals only)\n");
    } else if (p->sampled_s <= 0) {
        fprintf(f, "  split    (ran too briefly to sample: %llu ticks)\n",
                (unsigned long long)p->ticks);
    } else {
        fprintf(f, "  split    %suser %5.1f%%%s  %ssystem %5.1f%%%s  %swaiting %5.1f%%%s\n", bold,
                100 * p->user_frac, reset, bold, 100 * p->sys_frac, reset, bold,
                100 * p->wait_frac, reset);
        print_bar(f, p, color);
        put_line(f, width, "           %.3f s computing, %.3f s waiting with nothing running",
                 p->running_s, p->waiting_s);
        if (p->runqueue_s > 0.01 * p->sampled_s)
            put_line(f, width, "         + %.3f s runnable, waiting for a free CPU (other load)",
                     p->runqueue_s);
    }
}

void wl_report_print_details(FILE *f, const wl_profile *p, int color, int width)
{
    (void)color;
    if (p->nwaits > 0) {
        put_line(f, width, "  waiting on (%.3f s with nothing running):", p->waiting_s);
        put_line(f, width, "    %6s %10s %6s  %-8s %-16s %s", "share", "seconds", "ticks", "kind",
                 "syscall", "kernel wait channel");
        for (size_t i = 0; i < p->nwaits && i < TOP_REASONS; i++)
            print_reason(f, width, &p->waits[i], p->waiting_s);
        if (p->nwaits > TOP_REASONS)
            fprintf(f, "    ... %zu more reasons in the JSON report\n", p->nwaits - TOP_REASONS);
    }

    if (p->nthreads > 0) {
        put_line(f, width, "  threads (busiest first, %zu seen, up to %u at once):", p->nthreads,
                 p->max_threads);
        for (size_t i = 0; i < p->nthreads && i < TOP_THREADS; i++) {
            const wl_thread_stat *t = &p->threads[i];
            double seen = t->running_s + t->waiting_s;
            char waits[64] = "";
            if (t->nwaits > 0)
                snprintf(waits, sizeof(waits), "  %s %s", wl_wait_kind_name(t->waits[0].kind),
                         t->waits[0].syscall[0] ? t->waits[0].syscall : t->waits[0].wchan);
            put_line(f, width, "    %7d %-15.15s %7.3f s CPU  run %5.1f%%%s", t->tid, t->comm,
                     t->user_s + t->sys_s, seen > 0 ? 100 * t->running_s / seen : 0.0, waits);
        }
        if (p->nthreads > TOP_THREADS)
            fprintf(f, "    ... %zu more threads in the JSON report\n",
                    p->nthreads - TOP_THREADS);
    }
    if (p->nprocs > 1)
        fprintf(f, "  processes %zu in the tree\n", p->nprocs);
    put_line(f, width, "  samples  %llu ticks at %.0f Hz: %llu running, %llu waiting; %u runnable"
                       " at once",
             (unsigned long long)p->ticks, p->hz, (unsigned long long)p->ticks_running,
             (unsigned long long)p->ticks_waiting, p->max_running_threads);
    put_line(f, width, "  rusage   maxrss %.1f MiB, %ld voluntary / %ld involuntary switches",
             (double)p->maxrss_kb / 1024.0, p->nvcsw, p->nivcsw);
    if (p->io.valid) {
        char rb[32], wb[32], rc[32], wc[32];
        bytes(rb, sizeof(rb), p->io.read_bytes);
        bytes(wb, sizeof(wb), p->io.write_bytes);
        bytes(rc, sizeof(rc), p->io.rchar);
        bytes(wc, sizeof(wc), p->io.wchar);
        put_line(f, width, "  storage  read %s, written %s; %ld major faults", rb, wb, p->majflt);
        put_line(f, width, "  calls    %llu reads (%s), %llu writes (%s)",
                 (unsigned long long)p->io.syscr, rc, (unsigned long long)p->io.syscw, wc);
    }
    double self = p->self_user_s + p->self_sys_s;
    put_line(f, width, "  profiler %.3f s CPU (%.1f%% of wall), %llu late / %llu missed ticks", self,
             p->wall_s > 0 ? 100 * self / p->wall_s : 0.0, (unsigned long long)p->late_ticks,
             (unsigned long long)p->missed_ticks);
}

void wl_report_print_text(FILE *f, const wl_profile *p, int color)
{
    wl_report_print_summary(f, p, color, 80);
    wl_report_print_details(f, p, color, 80);
}
