/*
 * builtin-top.c -- `wlprof top [--pid PID | -- CMD]`: a live view of a
 * running program, refreshed every second, in the manner of py-spy top.
 *
 * Data: an attach session (wlprof/attach.h) samples the program from /proc
 * and, when allowed, reads its stacks from outside (wlprof/rstacks.h);
 * every refresh takes a snapshot of the profile so far and shows it next
 * to the previous one: the split of the last interval and since the
 * start, the waits, the functions by self time (on-CPU and waiting) and
 * the busiest threads.
 *
 * Display: on a terminal, the alternate screen with the cursor hidden,
 * the terminal in non-canonical mode without echo (Ctrl-C still signals);
 * the layout fits 80x24 and gives extra rows and columns to the tables.
 * `q` quits, `s` cycles the function sort (on-CPU, waiting, total). The
 * terminal is put back on every way out: q, Ctrl-C, SIGTERM/SIGHUP, the
 * program exiting; Ctrl-Z leaves the screen and comes back on fg. The
 * last view is printed on the normal screen at the end. Without a
 * terminal (stdout or stdin not a TTY), a plain 80-column snapshot is
 * printed every interval.
 *
 * A command started by top (`-- CMD`) runs with its stdio on /dev/null
 * while the view holds the terminal; quitting sends it SIGTERM and waits.
 * top's exit status: the command's own when it ended by itself, else 0
 * (q, Ctrl-C), 128+N after SIGTERM/SIGHUP, 1 or 2 on errors.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "builtin.h"
#include "cli-rstacks.h"
#include "wlprof/attach.h"
#include "wlprof/profile.h"

#define MAX_LINES 512
#define LINE_MAX_COLS 512

enum { SORT_CPU, SORT_WAIT, SORT_TOTAL, SORT_COUNT };
static const char *const sort_names[SORT_COUNT] = {"on-CPU", "waiting", "total"};

static volatile sig_atomic_t ev_any, ev_quit, ev_winch, ev_tstp;

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        ev_winch = 1;
    else if (sig == SIGTSTP)
        ev_tstp = 1;
    else
        ev_quit = sig;
    ev_any = 1;
}

/* ---- what one refresh shows ---- */

struct func_row {
    const char *name, *module;
    double cpu_d, wait_d;     /* last interval */
    double cpu_t, wait_t;     /* since the start */
};

struct thread_prev {
    int tid;
    double cpu;
};

struct view {
    wl_profile prev;          /* the previous snapshot (cumulative) */
    bool have_prev;
    double *fcpu_prev, *fwait_prev;
    size_t nfprev;
    struct thread_prev *tprev;
    size_t ntprev;
    int sort;
    const char *stacks_note; /* why there are no functions, or NULL */
    double pause_mean_us;
    char lines[MAX_LINES][LINE_MAX_COLS];
    int nlines;
};

static void add_line(struct view *v, int width, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_line(struct view *v, int width, const char *fmt, ...)
{
    if (v->nlines >= MAX_LINES)
        return;
    char *l = v->lines[v->nlines++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l, LINE_MAX_COLS, fmt, ap);
    va_end(ap);
    if (width < LINE_MAX_COLS && (int)strlen(l) > width)
        l[width] = '\0'; /* never wider than the terminal */
}

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

static int cmp_rows_sort;
static int cmp_rows(const void *a, const void *b)
{
    const struct func_row *x = a, *y = b;
    double kx, ky;
    switch (cmp_rows_sort) {
    case SORT_WAIT: kx = x->wait_d; ky = y->wait_d; break;
    case SORT_TOTAL: kx = x->cpu_t + x->wait_t; ky = y->cpu_t + y->wait_t; break;
    default: kx = x->cpu_d; ky = y->cpu_d; break;
    }
    if (kx == ky) { /* then by the whole run, so quiet rows keep an order */
        kx = x->cpu_t + x->wait_t;
        ky = y->cpu_t + y->wait_t;
    }
    return (kx < ky) - (kx > ky);
}

static int cmp_thread_rows(const void *a, const void *b)
{
    const double *x = a, *y = b; /* {cpu_d, index} */
    return (x[0] < y[0]) - (x[0] > y[0]);
}

static double prev_thread_cpu(const struct view *v, int tid)
{
    for (size_t i = 0; i < v->ntprev; i++)
        if (v->tprev[i].tid == tid)
            return v->tprev[i].cpu;
    return 0;
}

/* One refresh's figures: the snapshot p, the one before (q, NULL at the
 * first), the interval between them, and how the rows are shared out. */
struct frame {
    const wl_profile *p, *q;
    double dt;              /* seconds since q */
    int width, height;      /* height 0: as many rows as needed */
    int nwait_rows, nfunc_rows, nthread_rows;
};

/* The title and the split of the last interval and since the start. */
static void build_split(struct view *v, const struct frame *fr, bool exited)
{
    const wl_profile *p = fr->p, *q = fr->q;
    int width = fr->width;
    double dt = fr->dt;
    double d_run = p->running_s - (q ? q->running_s : 0);
    double d_wait = p->waiting_s - (q ? q->waiting_s : 0);
    double d_rq = p->runqueue_s - (q ? q->runqueue_s : 0);
    double d_user = p->user_s - (q ? q->user_s : 0), d_sys = p->sys_s - (q ? q->sys_s : 0);
    double span = p->running_s + p->waiting_s + p->runqueue_s;
    double last_tick = 0;
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].last_seen_s > last_tick)
            last_tick = p->threads[i].last_seen_s;
    size_t nthreads_live = 0; /* seen at the last tick */
    for (size_t i = 0; i < p->nthreads; i++)
        nthreads_live += p->threads[i].last_seen_s >= last_tick - 1e-9;

    const char *comm = p->nprocs ? p->procs[0].comm : "?";
    add_line(v, width, "wlprof top - pid %d %s - %.1f s - %zu thread%s%s - q quit, s sort", p->pid,
             comm, p->wall_s, nthreads_live, nthreads_live == 1 ? "" : "s",
             exited ? " - EXITED" : "");
    double cpu_d = d_user + d_sys, cpu_all = p->user_s + p->sys_s;
    double user_d = cpu_d > 0 ? d_user / cpu_d : 1, user_all = cpu_all > 0 ? p->user_s / cpu_all : 1;
    add_line(v, width, "              last %4.1f s   since start", dt);
    add_line(v, width, " user CPU      %6.1f%%      %6.1f%%      cores busy %.2f last, %.2f all",
             pct(d_run, dt) * user_d, pct(p->running_s, span) * user_all,
             dt > 0 ? cpu_d / dt : 0.0, p->cores_busy);
    add_line(v, width, " system CPU    %6.1f%%      %6.1f%%", pct(d_run, dt) * (1 - user_d),
             pct(p->running_s, span) * (1 - user_all));
    add_line(v, width, " waiting       %6.1f%%      %6.1f%%", pct(d_wait, dt), pct(p->waiting_s, span));
    add_line(v, width, " run queue     %6.1f%%      %6.1f%%      (runnable, no CPU free)", pct(d_rq, dt),
             pct(p->runqueue_s, span));
}

/* Waits, by kind, most in the last interval first. */
static void build_waits(struct view *v, const struct frame *fr)
{
    const wl_profile *p = fr->p, *q = fr->q;
    struct { double d, t; int k; } kinds[WL_WAIT_KIND_COUNT];
    int nk = 0;
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++) {
        double t = p->wait_kind_s[k], d = t - (q ? q->wait_kind_s[k] : 0);
        if (t > 0.0005)
            kinds[nk++] = (typeof(kinds[0])){d, t, k};
    }
    for (int i = 1; i < nk; i++) /* insertion sort: at most a dozen */
        for (int j = i; j > 0 && (kinds[j].d > kinds[j - 1].d ||
                                  (kinds[j].d == kinds[j - 1].d && kinds[j].t > kinds[j - 1].t));
             j--) {
            typeof(kinds[0]) tmp = kinds[j];
            kinds[j] = kinds[j - 1];
            kinds[j - 1] = tmp;
        }
    add_line(v, fr->width, "WAITS (all threads blocked)  last     total  where");
    for (int i = 0; i < fr->nwait_rows; i++) {
        if (i >= nk) {
            if (i == 0)
                add_line(v, fr->width, " (none yet)");
            else if (fr->height)
                add_line(v, fr->width, "%s", ""); /* rows keep their place on a terminal */
            continue;
        }
        const char *call = "", *chan = "";
        for (size_t w = 0; w < p->nwaits; w++)
            if ((int)p->waits[w].kind == kinds[i].k) {
                call = p->waits[w].syscall;
                chan = p->waits[w].wchan;
                break;
            }
        add_line(v, fr->width, " %-18s %6.1f%%  %7.2f s  %s%s%s%s", wl_wait_kind_name(kinds[i].k),
                 pct(kinds[i].d, fr->dt), kinds[i].t, call, chan[0] ? " (" : "", chan,
                 chan[0] ? ")" : "");
    }
}

/* Functions by self time, in the view's sort. */
static void build_functions(struct view *v, const struct frame *fr, const wl_rstacks_func *funcs,
                            size_t nfuncs)
{
    int width = fr->width;
    int name_w = width - 52;
    if (name_w < 12)
        name_w = 12;
    char title[64];
    snprintf(title, sizeof(title), "FUNCTIONS self, by %s", sort_names[v->sort]);
    add_line(v, width, "%-*.*s %7s %7s %9s %9s  %s", name_w + 1, name_w + 1, title, "on-CPU",
             "waiting", "CPU all", "wait all", "module");
    if (!funcs || nfuncs == 0) {
        add_line(v, width, " %s", v->stacks_note ? v->stacks_note : "(no samples yet)");
        for (int i = 1; fr->height && i < fr->nfunc_rows; i++)
            add_line(v, width, "%s", "");
        return;
    }
    struct func_row *rows = calloc(nfuncs, sizeof(*rows));
    size_t nr = 0;
    for (size_t i = 0; rows && i < nfuncs; i++) {
        double pc = i < v->nfprev ? v->fcpu_prev[i] : 0;
        double pw = i < v->nfprev ? v->fwait_prev[i] : 0;
        rows[nr++] = (struct func_row){funcs[i].name, funcs[i].module, funcs[i].cpu_s - pc,
                                       funcs[i].wait_s - pw, funcs[i].cpu_s, funcs[i].wait_s};
    }
    cmp_rows_sort = v->sort;
    if (nr > 1)
        qsort(rows, nr, sizeof(*rows), cmp_rows);
    for (int i = 0; i < fr->nfunc_rows; i++) {
        if ((size_t)i >= nr) {
            if (fr->height)
                add_line(v, width, "%s", "");
            continue;
        }
        const struct func_row *r = &rows[i];
        /* many threads blocked in one function: thread-seconds per
         * second, above 100 %; keep the column 7 wide */
        double pw = pct(r->wait_d, fr->dt), pc = pct(r->cpu_d, fr->dt);
        add_line(v, width, " %-*.*s %6.*f%% %6.*f%% %7.2f s %7.2f s  %s", name_w, name_w,
                 r->name, pc >= 999.5 ? 0 : 1, pc, pw >= 999.5 ? 0 : 1, pw, r->cpu_t,
                 r->wait_t, r->module);
    }
    free(rows);
}

/* The busiest threads in the last interval. */
static void build_threads(struct view *v, const struct frame *fr)
{
    const wl_profile *p = fr->p;
    add_line(v, fr->width, "THREADS     tid comm               CPU   CPU all  mostly waits on");
    double (*order)[2] = calloc(p->nthreads ? p->nthreads : 1, sizeof(*order));
    for (size_t i = 0; order && i < p->nthreads; i++) {
        const wl_thread_stat *t = &p->threads[i];
        order[i][0] = t->user_s + t->sys_s - prev_thread_cpu(v, t->tid);
        order[i][1] = (double)i;
    }
    if (order && p->nthreads > 1)
        qsort(order, p->nthreads, sizeof(*order), cmp_thread_rows);
    for (int i = 0; i < fr->nthread_rows; i++) {
        if (!order || (size_t)i >= p->nthreads) {
            if (fr->height)
                add_line(v, fr->width, "%s", "");
            continue;
        }
        const wl_thread_stat *t = &p->threads[(size_t)order[i][1]];
        add_line(v, fr->width, " %11d %-16.16s %6.1f%% %7.2f s  %s%s%s", t->tid, t->comm,
                 pct(order[i][0], fr->dt), t->user_s + t->sys_s,
                 t->nwaits ? wl_wait_kind_name(t->waits[0].kind) : "-", t->nwaits ? " " : "",
                 t->nwaits ? (t->waits[0].syscall[0] ? t->waits[0].syscall : t->waits[0].wchan)
                           : "");
    }
    free(order);
}

/* Builds the lines of one refresh for a width x height screen (height 0:
 * as many as needed, for the plain snapshots). */
static void build_view(struct view *v, const wl_profile *p, const wl_rstacks_func *funcs,
                       size_t nfuncs, int width, int height, bool exited)
{
    v->nlines = 0;
    struct frame fr = {.p = p, .q = v->have_prev ? &v->prev : NULL, .width = width,
                       .height = height};
    fr.dt = p->wall_s - (fr.q ? fr.q->wall_s : 0);
    /* which rows go to which table */
    int extra = height > 24 ? height - 24 : 0;
    fr.nwait_rows = height ? 3 + extra / 6 : 5;
    fr.nthread_rows = height ? 3 + extra / 4 : 5;
    fr.nfunc_rows = height ? height - 6 - (1 + fr.nwait_rows) - 1 - (1 + fr.nthread_rows) - 1 : 10;
    if (fr.nfunc_rows < 1)
        fr.nfunc_rows = 1;
    build_split(v, &fr, exited);
    build_waits(v, &fr);
    build_functions(v, &fr, funcs, nfuncs);
    build_threads(v, &fr);
    if (v->pause_mean_us > 0)
        add_line(v, width, "stacks: one thread stopped at a time, %.0f us per stop on average",
                 v->pause_mean_us);
}

/* Keeps this snapshot's cumulative values for the next interval. */
static void remember(struct view *v, wl_profile *p, const wl_rstacks_func *funcs, size_t nfuncs)
{
    free(v->tprev);
    v->tprev = calloc(p->nthreads ? p->nthreads : 1, sizeof(*v->tprev));
    v->ntprev = 0;
    for (size_t i = 0; v->tprev && i < p->nthreads; i++)
        v->tprev[v->ntprev++] = (struct thread_prev){p->threads[i].tid,
                                                     p->threads[i].user_s + p->threads[i].sys_s};
    free(v->fcpu_prev);
    free(v->fwait_prev);
    v->fcpu_prev = calloc(nfuncs ? nfuncs : 1, sizeof(double));
    v->fwait_prev = calloc(nfuncs ? nfuncs : 1, sizeof(double));
    v->nfprev = v->fcpu_prev && v->fwait_prev ? nfuncs : 0;
    for (size_t i = 0; i < v->nfprev; i++) {
        v->fcpu_prev[i] = funcs[i].cpu_s;
        v->fwait_prev[i] = funcs[i].wait_s;
    }
    if (v->have_prev)
        wl_profile_free(&v->prev);
    v->prev = *p; /* takes it over */
    memset(p, 0, sizeof(*p));
    v->have_prev = true;
}

/* ---- the terminal ---- */

struct term {
    bool on;
    struct termios saved;
};

static void term_enter(struct term *t)
{
    if (tcgetattr(0, &t->saved) != 0)
        return;
    struct termios raw = t->saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(0, TCSANOW, &raw);
    fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
    fflush(stdout);
    t->on = true;
}

static void term_leave(struct term *t)
{
    if (!t->on)
        return;
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    tcsetattr(0, TCSANOW, &t->saved);
    t->on = false;
}

static void term_size(int *w, int *h)
{
    struct winsize ws;
    *w = 80;
    *h = 24;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *w = ws.ws_col < LINE_MAX_COLS - 1 ? ws.ws_col : LINE_MAX_COLS - 1;
        *h = ws.ws_row < MAX_LINES ? ws.ws_row : MAX_LINES;
    }
}

static void draw_tty(const struct view *v, int height)
{
    fputs("\033[H", stdout);
    for (int i = 0; i < v->nlines && i < height; i++) {
        fputs(v->lines[i], stdout);
        fputs("\033[K", stdout);
        if (i + 1 < height && i + 1 < v->nlines)
            fputs("\r\n", stdout); /* the last row gets no newline: no scroll */
    }
    fputs("\033[J", stdout);
    fflush(stdout);
}

static void draw_plain(const struct view *v, FILE *f)
{
    for (int i = 0; i < v->nlines; i++)
        if (v->lines[i][0]) /* blank rows only pad the terminal layout */
            fprintf(f, "%s\n", v->lines[i]);
    fputc('\n', f);
    fflush(f);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof top [OPTIONS] --pid PID\n"
            "       wlprof top [OPTIONS] [--] COMMAND [ARGS...]\n"
            "\n"
            "A live view of a running program, refreshed every interval: the split of\n"
            "wall time (computing, waiting, run queue) over the last interval and since\n"
            "the start, what it waits on, its functions by self time on-CPU and waiting,\n"
            "and its busiest threads. Keys: q quits, s cycles the sort of the functions\n"
            "(on-CPU, waiting, total). Without a terminal it prints a snapshot per interval.\n"
            "\n"
            "Options:\n"
            "  -p, --pid PID      attach to a running process (it is never signalled)\n"
            "  -d, --delay S      seconds between refreshes (default 1)\n"
            "  -n, --iterations N stop after N refreshes\n"
            "  -F, --hz N         sampling rate (default 100)\n"
            "      --no-stacks    no stacks (no ptrace), /proc sampling only\n"
            "  -h, --help         show this help\n"
            "\n"
            "A COMMAND started by top has its output discarded while the view is on a\n"
            "terminal; quitting top sends it SIGTERM. Exit status: COMMAND's own when it\n"
            "ended by itself, 0 after q or Ctrl-C, 128+N after SIGTERM/SIGHUP, 1 when the\n"
            "program cannot be profiled, 2 on bad usage.\n");
}

enum { OPT_NO_STACKS = 1000 };

/* ---- parse ---- */

/* The command line, parsed. */
struct top_args {
    double delay;      /* -d S */
    double hz;         /* -F N */
    double iterations; /* -n N, 0: until the end */
    int pid;           /* -p PID, 0: run cmd */
    int no_stacks;     /* --no-stacks */
    char **cmd;        /* COMMAND [ARGS...] when no --pid */
};

static int parse_pid(const char *v, int *pid)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n <= 0 || n > 0x7fffffff) {
        wl__cli_error("top", "--pid takes a process id, not '%s'", v);
        return CLI_PARSE_ERROR;
    }
    *pid = (int)n;
    return CLI_PARSE_OK;
}

/* One option c with value v into *ctx (a struct top_args). Returns a
 * CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    struct top_args *a = ctx;
    switch (c) {
    case 'p':
        return parse_pid(v, &a->pid);
    case 'd':
        if (wl__cli_parse_positive(v, 3600, &a->delay) == 0 && a->delay >= 0.05)
            return CLI_PARSE_OK;
        wl__cli_error("top", "--delay must be between 0.05 and 3600 seconds, not '%s'", v);
        return CLI_PARSE_ERROR;
    case 'n':
        if (wl__cli_parse_positive(v, 1e9, &a->iterations) == 0)
            return CLI_PARSE_OK;
        wl__cli_error("top", "--iterations must be a positive number, not '%s'", v);
        return CLI_PARSE_ERROR;
    case 'F':
        if (wl__cli_parse_positive(v, 10000, &a->hz) == 0)
            return CLI_PARSE_OK;
        wl__cli_error("top", "--hz must be a number above 0 and at most 10000, not '%s'", v);
        return CLI_PARSE_ERROR;
    case OPT_NO_STACKS:
        a->no_stacks = 1;
        return CLI_PARSE_OK;
    default:
        return wl__cli_option_rest("top", argv, c, usage);
    }
}

/* The options, then --pid or COMMAND. Returns a CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, struct top_args *a)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},       {"delay", required_argument, NULL, 'd'},
        {"iterations", required_argument, NULL, 'n'}, {"hz", required_argument, NULL, 'F'},
        {"no-stacks", no_argument, NULL, OPT_NO_STACKS}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct top_args){.delay = 1.0, .hz = 100.0};
    int rc = wl__cli_parse_options(argc, argv, "+:p:d:n:F:h", longopts, parse_option, a);
    if (rc != CLI_PARSE_OK)
        return rc;
    if (a->pid && optind < argc) {
        wl__cli_error("top", "give either --pid or a command, not both");
        return CLI_PARSE_ERROR;
    }
    if (!a->pid && optind >= argc) {
        wl__cli_error("top", "no program given (usage: wlprof top --pid PID | -- COMMAND)");
        return CLI_PARSE_ERROR;
    }
    a->cmd = argv + optind;
    return CLI_PARSE_OK;
}

/* ---- start ---- */

/* One `wlprof top` while it runs. */
struct top {
    const struct top_args *a;
    bool tty;                 /* stdin and stdout are a terminal: the live screen */
    wl_attach *sess;
    cli_rstacks rs;
    struct sigaction old[6];  /* the handlers before ours */
    struct view *v;
    struct term term;
    int width, height;
    bool quit, gone;          /* leave the loop; the program has exited */
    unsigned long shown;      /* refreshes shown */
    double next;              /* when the next refresh is due (session seconds) */
    const wl_rstacks_func *funcs;
    size_t nfuncs;
};

static char note_buf[512]; /* the view's stacks note, when it is a message */
static const int top_sigs[6] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGPIPE};

/* Ours for the signals top handles (SIGPIPE only without a terminal), or
 * back to the old ones (restore). */
static void top_signals(struct top *t, bool restore)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 6; i++)
        if (i < 5 || !t->tty)
            sigaction(top_sigs[i], restore ? &t->old[i] : &sa, restore ? NULL : &t->old[i]);
}

/* Arms the stacks reader for pid (0: the command top starts) unless
 * --no-stacks. Returns what the view says instead of functions while there
 * are none (NULL: "no samples yet"). */
static const char *arm_stacks(struct top *t, int pid, wl_attach_opts *ao)
{
    const struct top_args *a = t->a;
    int rc = wl__cli_rstacks_begin(&t->rs, &pid, pid ? 1 : 0, a->no_stacks, a->hz, ao, note_buf,
                               sizeof(note_buf));
    if (rc == -ENOTSUP)
        return "(this wlprof was built without libunwind-ptrace: no stacks)";
    if (a->no_stacks)
        return "(stacks off: --no-stacks)";
    if (!note_buf[0])
        return NULL;
    fprintf(stderr, "wlprof: %s\n", note_buf);
    return note_buf; /* the view says it too: the screen hides stderr */
}

/* Checks the pid, arms the stacks and attaches to the pid or starts the
 * command. Returns 0, or the exit code after one line (nothing left to
 * undo). */
static int top_start(struct top *t)
{
    const struct top_args *a = t->a;
    char err[512], why[512];
    int pid = a->pid;
    if (pid && wl_attach_check_pid(&pid, why, sizeof(why)) < 0) {
        wl__cli_error("top", "%s", why);
        return WL_EXIT_FAILURE;
    }
    if (pid && why[0])
        fprintf(stderr, "wlprof: %s\n", why);
    wl_attach_opts ao = {.hz = a->hz};
    const char *stacks_note = arm_stacks(t, pid, &ao);
    ev_any = ev_quit = ev_winch = ev_tstp = 0;
    top_signals(t, false);
    int rc = pid ? wl_attach_begin(&t->sess, &pid, 1, &ao, err, sizeof(err))
                 : wl_attach_spawn(&t->sess, a->cmd, t->tty, &ao, err, sizeof(err));
    if (rc < 0) {
        top_signals(t, true);
        wl__cli_rstacks_free(&t->rs);
        wl__cli_error("top", "%s", err);
        return rc == -ENOENT ? WL_EXIT_NOTFOUND : rc == -EACCES ? WL_EXIT_NOEXEC : WL_EXIT_FAILURE;
    }
    t->v = calloc(1, sizeof(*t->v));
    if (!t->v) {
        wl__cli_error("top", "out of memory");
        return WL_EXIT_FAILURE;
    }
    t->v->stacks_note = stacks_note;
    return 0;
}

/* ---- the loop ---- */

/* Ctrl-Z: leaves the screen, stops, and comes back on fg (SIGCONT). */
static void suspend(struct top *t)
{
    term_leave(&t->term);
    kill(getpid(), SIGSTOP);
    if (t->tty) {
        term_enter(&t->term);
        term_size(&t->width, &t->height);
    }
}

/* What the signals and keys since the last wake-up ask for: t->quit, a
 * new sort. Returns whether the view must be redrawn. */
static bool handle_events(struct top *t, wl_attach_why w)
{
    bool redraw = false;
    if (ev_quit)
        t->quit = true;
    if (ev_winch) {
        ev_winch = 0;
        if (t->tty)
            term_size(&t->width, &t->height);
        redraw = true;
    }
    if (ev_tstp) {
        ev_tstp = 0;
        suspend(t);
        redraw = true;
    }
    ev_any = 0;
    if (w != WL_ATTACH_WOKEN)
        return redraw;
    char keys[32];
    ssize_t n = read(0, keys, sizeof(keys));
    if (n == 0)
        t->quit = true; /* the terminal went away */
    for (ssize_t i = 0; i < n; i++) {
        if (keys[i] == 'q' || keys[i] == 'Q') {
            t->quit = true;
        } else if (keys[i] == 's' || keys[i] == 'S') {
            t->v->sort = (t->v->sort + 1) % SORT_COUNT;
            redraw = true;
        }
    }
    return redraw;
}

/* Takes a snapshot and shows it: a new interval (advance), or the last one
 * again (a redraw). Returns -1 when the session has no snapshot to give. */
static int refresh(struct top *t, bool advance)
{
    struct view *v = t->v;
    wl_profile snap;
    if (wl_attach_snapshot(t->sess, &snap) != 0)
        return -1;
    const char *refused = NULL;
    wl__cli_rstacks_poll(&t->rs, &t->funcs, &t->nfuncs, &v->pause_mean_us, &refused);
    if (refused && !v->stacks_note) {
        snprintf(note_buf, sizeof(note_buf), "(%s)", refused);
        v->stacks_note = note_buf;
    }
    int height = t->tty ? t->height : 0;
    if (advance || !v->have_prev) {
        build_view(v, &snap, t->funcs, t->nfuncs, t->width, height, t->gone);
        remember(v, &snap, t->funcs, t->nfuncs);
        t->shown++;
        t->next = wl_attach_elapsed(t->sess) + t->a->delay;
    } else {
        /* a redraw keeps the interval: rebuild against the one before */
        wl_profile keep = v->prev;
        build_view(v, &snap, t->funcs, t->nfuncs, t->width, height, t->gone);
        v->prev = keep;
        wl_profile_free(&snap);
    }
    if (t->tty)
        draw_tty(v, t->height);
    else if (advance)
        draw_plain(v, stdout);
    return 0;
}

/* Samples and refreshes until q, a signal, the program's exit or
 * --iterations. */
static void watch(struct top *t)
{
    if (t->tty) {
        term_enter(&t->term);
        term_size(&t->width, &t->height);
    }
    t->next = t->a->delay;
    while (!t->quit) {
        wl_attach_why w = wl_attach_run(t->sess, t->next, &ev_any, t->tty ? 0 : -1);
        bool advance = w == WL_ATTACH_GONE || w == WL_ATTACH_DEADLINE;
        if (w == WL_ATTACH_GONE)
            t->gone = true;
        bool redraw = handle_events(t, w);
        if (!advance && !redraw && !t->gone)
            continue;
        if (refresh(t, advance) < 0)
            break;
        if (t->gone || (t->a->iterations > 0 && t->shown >= (unsigned long)t->a->iterations))
            t->quit = true;
    }
    term_leave(&t->term);
    if (t->tty && t->v->nlines)
        draw_plain(t->v, stdout); /* the last view stays on the normal screen */
}

/* ---- stop ---- */

/* Stops a command top started, ends the session and releases everything.
 * Returns top's exit status. */
static int top_stop(struct top *t)
{
    int status = WL_EXIT_OK;
    if (!t->gone && wl_attach_signal_child(t->sess, SIGTERM) == 0)
        t->gone = false; /* we asked it to stop: its status is not top's */
    else if (t->gone && !t->a->pid)
        status = -1; /* the command ended by itself: its status */
    wl_profile final;
    if (wl_attach_end(t->sess, &final) == 0) {
        if (status < 0)
            status = final.exit_status >= 0 ? final.exit_status : WL_EXIT_OK;
        wl_profile_free(&final);
    } else if (status < 0) {
        status = WL_EXIT_FAILURE;
    }
    wl__cli_rstacks_free(&t->rs);
    struct view *v = t->v;
    if (v->have_prev)
        wl_profile_free(&v->prev);
    free(v->tprev);
    free(v->fcpu_prev);
    free(v->fwait_prev);
    free(v);
    top_signals(t, true);
    if (status == WL_EXIT_OK && (ev_quit == SIGTERM || ev_quit == SIGHUP))
        status = 128 + ev_quit;
    return status;
}

int cmd_top(int argc, char **argv)
{
    struct top_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK)
        return cli_parse_exit(rc);
    struct top t = {.a = &a, .tty = isatty(0) && isatty(1), .width = 80};
    rc = top_start(&t);
    if (rc != 0)
        return rc;
    watch(&t);
    return top_stop(&t);
}
