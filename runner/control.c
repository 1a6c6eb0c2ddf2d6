/*
 * control.c -- what keeps a run in hand: signals, the guardian that cleans
 * up after a SIGKILLed wlprof, and the halt/retry/timeout rules both modes
 * share.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP set wl__run_sig_first (the first one
 * wins) and write one byte into a self-pipe, which the loop (uv_poll_t) or
 * a pilot's poll() watches. The handler does nothing else, so it is safe at
 * any point; the runner then forwards the signal to every job itself (jobs
 * run in process groups of their own, so a terminal's Ctrl-C reaches only
 * wlprof and is forwarded like any other signal).
 *
 * The guardian: a small child forked at the start of a run, in its own
 * process group, ignoring the terminal's signals. wlprof tells it every
 * job process group it starts and ends (4-byte records over a pipe whose
 * write end is close-on-exec, so jobs never hold it). When the pipe reaches
 * EOF -- wlprof exited, or was SIGKILLed -- it SIGKILLs every group still
 * listed and exits. Worker and pilot processes forked by run also get
 * PR_SET_PDEATHSIG(SIGKILL).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const int run_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIGNALS (sizeof(run_signals) / sizeof(run_signals[0]))

volatile sig_atomic_t wl__run_sig_first;
volatile sig_atomic_t wl__run_sig_count;
static int sig_pipe[2] = {-1, -1};
static struct sigaction old_actions[NSIGNALS];
static int installed;

static pid_t owner_pid;

static void on_signal(int sig)
{
    int saved = errno;
    if (getpid() != owner_pid) {
        /* A child forked without exec (a process-pool worker) inherited
         * this handler: it takes the default action, as if never caught. */
        signal(sig, SIG_DFL);
        raise(sig);
        errno = saved;
        return;
    }
    if (!wl__run_sig_first)
        wl__run_sig_first = sig;
    wl__run_sig_count++;
    if (sig_pipe[1] >= 0) {
        char c = (char)sig;
        ssize_t k = write(sig_pipe[1], &c, 1);
        (void)k;
    }
    errno = saved;
}

int wl__run_signals_install(void)
{
    if (installed)
        return sig_pipe[0];
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    wl__run_sig_first = 0;
    wl__run_sig_count = 0;
    owner_pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(run_signals[i], &sa, &old_actions[i]);
    installed = 1;
    return sig_pipe[0];
}

void wl__run_signals_uninstall(void)
{
    if (!installed)
        return;
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(run_signals[i], &old_actions[i], NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    installed = 0;
}

int wl__run_signals_fd(void)
{
    return installed ? sig_pipe[0] : -1;
}

void wl__run_signals_drain(void)
{
    char buf[64];
    if (installed)
        while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
            ;
}

/* ---- the guardian -------------------------------------------------------- */

#define GUARD_MAX 65536
static int guard_fd = -1;
static pid_t guard_pid;

static void guard_main(int rd) __attribute__((noreturn));
static void guard_main(int rd)
{
    static int groups[GUARD_MAX];
    size_t n = 0;
    int rec;
    for (;;) {
        ssize_t k = read(rd, &rec, sizeof(rec));
        if (k < 0 && errno == EINTR)
            continue;
        if (k != (ssize_t)sizeof(rec))
            break; /* EOF: wlprof is gone */
        if (rec > 0 && n < GUARD_MAX) {
            groups[n++] = rec;
        } else if (rec < 0) {
            for (size_t i = 0; i < n; i++)
                if (groups[i] == -rec) {
                    groups[i] = groups[--n];
                    break;
                }
        }
    }
    for (size_t i = 0; i < n; i++)
        kill(-groups[i], SIGKILL);
    _exit(0);
}

int wl__run_guard_start(void)
{
    int p[2];
    if (guard_fd >= 0)
        return 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGQUIT, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Keep only the read end: any other inherited write end (ours, or a
         * pipe of the caller) would keep EOF from coming. */
        if (p[0] != 3) {
            dup2(p[0], 3);
        }
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        for (int fd = 4; fd < 1024; fd++)
            close(fd);
        guard_main(3);
    }
    close(p[0]);
    guard_fd = p[1];
    guard_pid = pid;
    return 0;
}

static void guard_send(int rec)
{
    if (guard_fd < 0)
        return;
    ssize_t k;
    while ((k = write(guard_fd, &rec, sizeof(rec))) < 0 && errno == EINTR)
        ;
}

void wl__run_guard_add(pid_t pgid)
{
    if (pgid > 0)
        guard_send((int)pgid);
}

void wl__run_guard_remove(pid_t pgid)
{
    if (pgid > 0)
        guard_send(-(int)pgid);
}

void wl__run_guard_stop(void)
{
    if (guard_fd < 0)
        return;
    close(guard_fd);
    guard_fd = -1;
    /* It exits at EOF; reap it when it has (it may outlive us by a moment if
     * a forked worker still holds the pipe, and then init reaps it). */
    int st;
    for (int i = 0; i < 200; i++) {
        pid_t r = waitpid(guard_pid, &st, WNOHANG);
        if (r != 0)
            break;
        usleep(1000);
    }
    guard_pid = 0;
}

void wl__run_child_setup(void)
{
    if (guard_fd >= 0)
        close(guard_fd);
    guard_fd = -1;
    if (sig_pipe[0] >= 0) {
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
    installed = 0;
    for (size_t i = 0; i < NSIGNALS; i++)
        signal(run_signals[i], SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int wl__run_pdeathsig(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    return getppid() == parent ? 0 : -1;
}

/* ---- shared rules -------------------------------------------------------- */

double wl__run_grace(const wl_run_opts *o)
{
    return o->grace_s > 0 ? o->grace_s : RUN_DEFAULT_GRACE_S;
}

int wl__run_halt_mode(const wl_run_opts *o)
{
    if (o->halt != WL_HALT_NEVER)
        return o->halt;
    return o->fail_fast ? WL_HALT_NOW : WL_HALT_NEVER;
}

int wl__run_halt_after(const wl_run_opts *o)
{
    if (o->halt != WL_HALT_NEVER)
        return o->halt_fail > 0 ? o->halt_fail : 1;
    return 1;
}

const char *wl__run_signal_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGHUP:
        return "SIGHUP";
    case SIGKILL:
        return "SIGKILL";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGQUIT:
        return "SIGQUIT";
    default:
        return NULL;
    }
}

void wl__run_status_text(int st, char *buf, size_t len)
{
    if (st == 127) {
        snprintf(buf, len, "exit status 127 (command not found)");
    } else if (st > 128) {
        const char *name = wl__run_signal_name(st - 128);
        if (name)
            snprintf(buf, len, "killed by signal %d (%s)", st - 128, name);
        else
            snprintf(buf, len, "killed by signal %d", st - 128);
    } else if (st) {
        snprintf(buf, len, "exit status %d", st);
    } else {
        buf[0] = '\0';
    }
}

int wl__run_poll_ms(double deadline)
{
    if (isinf(deadline))
        return -1;
    double left = deadline - wl__run_now();
    return left <= 0 ? 0 : (int)ceil(left * 1000);
}

int wl__run_write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}
