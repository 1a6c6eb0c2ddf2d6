/*
 * text.c -- the compact human summary printed after a profile.
 *
 * Absolute seconds and sample counts come first and shares second: shares
 * alone move with the sampling rate and hide how long things took.
 */
#include "wlprof/report.h"

#include <signal.h>
#include <string.h>

#define BAR_WIDTH 50
#define TOP_REASONS 5
#define TOP_THREADS 5

static const char *col(int color, const char *code)
{
    return color ? code : "";
}

static void print_bytes(FILE *f, const char *label, uint64_t b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    fprintf(f, "%s %.*f %s", label, u ? 1 : 0, v, units[u]);
}

static void print_bar(FILE *f, const wl_profile *p, int color)
{
    int user = (int)(p->user_frac * BAR_WIDTH + 0.5);
    int sys = (int)(p->sys_frac * BAR_WIDTH + 0.5);
    if (user + sys > BAR_WIDTH)
        sys = BAR_WIDTH - user;
    int wait = BAR_WIDTH - user - sys;
    fprintf(f, "            [%s", col(color, "\033[32m"));
    for (int i = 0; i < user; i++)
        fputc('#', f);
    fprintf(f, "%s", col(color, "\033[33m"));
    for (int i = 0; i < sys; i++)
        fputc('=', f);
    fprintf(f, "%s", col(color, "\033[34m"));
    for (int i = 0; i < wait; i++)
        fputc('.', f);
    fprintf(f, "%s]  # user  = system  . waiting\n", col(color, "\033[0m"));
}

static void print_reason(FILE *f, const wl_wait_stat *w, double total)
{
    fprintf(f, "    %5.1f%%  %8.3f s  %5llu  %-8s %-16s %s\n",
            total > 0 ? 100.0 * w->seconds / total : 0.0, w->seconds,
            (unsigned long long)w->samples, wl_wait_kind_name(w->kind),
            w->syscall[0] ? w->syscall : "-", w->wchan[0] ? w->wchan : "-");
}

void wl_report_print_text(FILE *f, const wl_profile *p, int color)
{
    const char *bold = col(color, "\033[1m"), *reset = col(color, "\033[0m");
    fprintf(f, "%swlprof:%s", bold, reset);
    for (int i = 0; i < p->argc && i < 8; i++)
        fprintf(f, " %s", p->argv[i]);
    if (p->argc > 8)
        fprintf(f, " ...");
    if (p->attached)
        fprintf(f, "  (attached to pid %d%s)\n", p->pid, p->nprocs > 1 ? " and others" : "");
    else if (p->term_signal)
        fprintf(f, "  (pid %d, killed by SIG%s%s)\n", p->pid,
                sigabbrev_np(p->term_signal) ? sigabbrev_np(p->term_signal) : "?",
                p->core_dumped ? ", core dumped" : "");
    else
        fprintf(f, "  (pid %d, exit %d)\n", p->pid, p->exit_code);

    fprintf(f, "  wall     %8.3f s   user %.3f s   system %.3f s   cores busy %.2f\n",
            p->wall_s, p->user_s, p->sys_s, p->cores_busy);
    if (p->sampled_s <= 0 && p->ticks >= 5 && p->proc_read_errors > 0) {
        fprintf(f, "  split    (no thread of it could be read in /proc -- hidden or not mounted? "
                   "exact totals only)\n");
    } else if (p->sampled_s <= 0) {
        fprintf(f, "  split    (ran too briefly to sample: %llu ticks)\n",
                (unsigned long long)p->ticks);
    } else {
        fprintf(f, "  split    %suser %5.1f%%%s   %ssystem %5.1f%%%s   %swaiting %5.1f%%%s"
                   "   (%.3f s computing, %.3f s waiting)\n",
                bold, 100 * p->user_frac, reset, bold, 100 * p->sys_frac, reset, bold,
                100 * p->wait_frac, reset, p->running_s, p->waiting_s);
        print_bar(f, p, color);
        if (p->runqueue_s > 0.01 * p->sampled_s)
            fprintf(f, "           + %.3f s runnable but waiting for a free CPU (other load on the "
                       "machine, or more busy threads than cores)\n",
                    p->runqueue_s);
    }
    fprintf(f, "  samples  %llu ticks at %.0f Hz: %llu running, %llu waiting; %llu thread samples"
               "; up to %u threads, %u runnable at once\n",
            (unsigned long long)p->ticks, p->hz, (unsigned long long)p->ticks_running,
            (unsigned long long)p->ticks_waiting, (unsigned long long)p->thread_samples,
            p->max_threads, p->max_running_threads);

    if (p->nwaits > 0) {
        fprintf(f, "  waiting on (%.3f s with nothing running):\n", p->waiting_s);
        fprintf(f, "    %6s  %10s  %5s  %-8s %-16s %s\n", "share", "seconds", "ticks", "kind",
                "syscall", "kernel wait channel");
        for (size_t i = 0; i < p->nwaits && i < TOP_REASONS; i++)
            print_reason(f, &p->waits[i], p->waiting_s);
        if (p->nwaits > TOP_REASONS)
            fprintf(f, "    ... %zu more reasons in the JSON report\n", p->nwaits - TOP_REASONS);
    }

    if (p->nthreads > 0) {
        fprintf(f, "  threads (busiest first, %zu seen):\n", p->nthreads);
        for (size_t i = 0; i < p->nthreads && i < TOP_THREADS; i++) {
            const wl_thread_stat *t = &p->threads[i];
            double seen = t->running_s + t->waiting_s;
            fprintf(f, "    %7d %-16s user %7.3f s  sys %7.3f s  running %5.1f%%", t->tid,
                    t->comm, t->user_s, t->sys_s, seen > 0 ? 100 * t->running_s / seen : 0.0);
            if (t->nwaits > 0)
                fprintf(f, "  mostly waits: %s (%s)", wl_wait_kind_name(t->waits[0].kind),
                        t->waits[0].syscall[0] ? t->waits[0].syscall : t->waits[0].wchan);
            fputc('\n', f);
        }
        if (p->nthreads > TOP_THREADS)
            fprintf(f, "    ... %zu more threads in the JSON report\n",
                    p->nthreads - TOP_THREADS);
    }
    if (p->nprocs > 1)
        fprintf(f, "  processes %zu in the tree\n", p->nprocs);

    fprintf(f, "  rusage   maxrss %.1f MiB, %ld voluntary / %ld involuntary context switches, "
               "%ld major faults\n",
            (double)p->maxrss_kb / 1024.0, p->nvcsw, p->nivcsw, p->majflt);
    if (p->io.valid) {
        fprintf(f, "  io      ");
        print_bytes(f, " read", p->io.read_bytes);
        print_bytes(f, ", written", p->io.write_bytes);
        fprintf(f, " (storage);");
        print_bytes(f, " rchar", p->io.rchar);
        print_bytes(f, ", wchar", p->io.wchar);
        fprintf(f, "; %llu read / %llu write calls\n", (unsigned long long)p->io.syscr,
                (unsigned long long)p->io.syscw);
    }
    double self = p->self_user_s + p->self_sys_s;
    fprintf(f, "  profiler %.3f s CPU (%.1f%% of wall), %llu late and %llu missed ticks\n", self,
            p->wall_s > 0 ? 100 * self / p->wall_s : 0.0, (unsigned long long)p->late_ticks,
            (unsigned long long)p->missed_ticks);
}
