/*
 * remote_jobs.c -- what a `wlprof worker` runs for a remote pool (the Slurm
 * executor, slurm.c), and the result format both ends share.
 *
 * Two job functions are registered in the worker's process-pool registry:
 *
 *   "wl.command"  payload: a shell command. Runs /bin/sh -c CMD in a
 *                 process group of its own (named to the pool's heartbeat
 *                 thread, which kills it if the coordinator goes away),
 *                 with stdout and stderr captured whole.
 *   "wl.task"     payload: one job's input. Calls the blocking form of the
 *                 task the worker loaded with --lib/--task.
 *
 * Each replies with a fixed header and the bytes after it:
 *
 *   | magic | status | wall_s | user_s | sys_s  | runq_s | out_len | err_len | out | err |
 *   | u32   | i32    | double | double | double | double | u32     | u32     |     |     |
 *
 * status: the command's shell-style exit status (128+N when a signal
 * killed it), or the task's return value. The CPU times are the job's own
 * (the command's children from wait4, the task's thread from
 * RUSAGE_THREAD), and runq_s the time it was runnable but waited for a
 * CPU (schedstat: the task's thread, or the command's exited shell), so the
 * coordinator can classify a pilot job it never ran itself, and a busy node
 * does not make computing look like waiting. Native byte order: coordinator and workers run one build.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wlprof/pools.h"

#define REMOTE_MAGIC 0x776c726au /* "wlrj" */
#define OUTPUT_MAX (64u << 20)   /* per stream; the rest is cut */

/* Run-queue seconds of a task from its schedstat ("on-cpu runqueue
 * slices", ns), or 0 when unreadable. */
static double runq_s(const char *path)
{
    unsigned long long on = 0, rq = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &on, &rq) != 2)
        rq = 0;
    fclose(f);
    return (double)rq * 1e-9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static int put_result(wl_bytes *reply, int status, double wall, double user, double sys,
                      double runq, const wl_bytes *out, const wl_bytes *err)
{
    uint8_t hdr[RUN__REMOTE_HDR];
    uint32_t magic = REMOTE_MAGIC;
    int32_t st = status;
    uint32_t olen = out ? (uint32_t)out->len : 0;
    uint32_t elen = err ? (uint32_t)err->len : 0;

    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &st, 4);
    memcpy(hdr + 8, &wall, 8);
    memcpy(hdr + 16, &user, 8);
    memcpy(hdr + 24, &sys, 8);
    memcpy(hdr + 32, &runq, 8);
    memcpy(hdr + 40, &olen, 4);
    memcpy(hdr + 44, &elen, 4);
    if (wl_bytes_append(reply, hdr, sizeof(hdr)) < 0 ||
        (olen && wl_bytes_append(reply, out->data, olen) < 0) ||
        (elen && wl_bytes_append(reply, err->data, elen) < 0))
        return -ENOMEM;
    return 0;
}

int wl__run_remote_result_parse(const uint8_t *p, size_t len, run_remote_result *r)
{
    uint32_t magic;
    int32_t st;

    if (len < RUN__REMOTE_HDR)
        return -EPROTO;
    memcpy(&magic, p, 4);
    if (magic != REMOTE_MAGIC)
        return -EPROTO;
    memcpy(&st, p + 4, 4);
    r->status = st;
    memcpy(&r->wall_s, p + 8, 8);
    memcpy(&r->user_s, p + 16, 8);
    memcpy(&r->sys_s, p + 24, 8);
    memcpy(&r->runq_s, p + 32, 8);
    memcpy(&r->out_len, p + 40, 4);
    memcpy(&r->err_len, p + 44, 4);
    if ((size_t)r->out_len + r->err_len > len - RUN__REMOTE_HDR)
        return -EPROTO;
    r->out = p + RUN__REMOTE_HDR;
    r->err = r->out + r->out_len;
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads fd into b (up to OUTPUT_MAX) without blocking; 1 at EOF. */
static int drain(int fd, wl_bytes *b)
{
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n == 0)
        return 1;
    if (b->len < OUTPUT_MAX)
        wl_bytes_append(b, buf, (size_t)n);
    return 0;
}

static int job_command(const void *in, size_t inlen, wl_bytes *reply)
{
    char *cmd = strndup(in, inlen);
    int outp[2] = {-1, -1};
    int errp[2] = {-1, -1};
    wl_bytes out = {0};
    wl_bytes err = {0};
    struct rusage ru;
    double t0;
    int wstatus = 0;
    int status;
    pid_t pid;

    if (!cmd || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        free(cmd);
        return -errno;
    }
    t0 = mono_s();
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(outp[1], STDOUT_FILENO);
        dup2(errp[1], STDERR_FILENO);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    free(cmd);
    if (pid < 0) {
        close(outp[0]);
        close(errp[0]);
        return -errno;
    }
    setpgid(pid, pid); /* also here: no window before the heartbeat knows it */
    wl_ppool_worker_track_pgid(pid);
    struct pollfd pf[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
    while (pf[0].fd >= 0 || pf[1].fd >= 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (pf[k].fd >= 0 && pf[k].revents && drain(pf[k].fd, k ? &err : &out)) {
                close(pf[k].fd);
                pf[k].fd = -1;
            }
        }
    }
    /* the exited shell, not yet reaped: its run-queue time (the command
     * itself when the shell exec'd it), so time spent waiting for a CPU on
     * a busy node is not taken for the job waiting */
    siginfo_t si;
    char path[64];
    double rq;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    rq = runq_s(path);
    while (wait4(pid, &wstatus, 0, &ru) < 0 && errno == EINTR)
        ;
    wl_ppool_worker_track_pgid(0);
    kill(-pid, SIGKILL); /* what it left running in its group */
    status = WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
    int rc = put_result(reply, status, mono_s() - t0, tv_s(ru.ru_utime), tv_s(ru.ru_stime), rq,
                        &out, &err);
    wl_bytes_free(&out);
    wl_bytes_free(&err);
    return rc;
}

static wl_task_def worker_task;

static int job_task(const void *in, size_t inlen, wl_bytes *reply)
{
    wl_bytes input = {.data = (uint8_t *)in, .len = inlen, .cap = inlen};
    wl_bytes out = {0};
    struct rusage r0, r1;
    double t0 = mono_s();
    int status;

    double rq0 = runq_s("/proc/thread-self/schedstat");
    getrusage(RUSAGE_THREAD, &r0);
    status = worker_task.blocking(&input, &out);
    getrusage(RUSAGE_THREAD, &r1);
    double rq = runq_s("/proc/thread-self/schedstat") - rq0;
    int rc = put_result(reply, status, mono_s() - t0, tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
                        tv_s(r1.ru_stime) - tv_s(r0.ru_stime), rq, &out, NULL);
    wl_bytes_free(&out);
    return rc;
}

int wl_run_worker(const wl_run_worker_opts *o, char *err, size_t errlen)
{
    wl_ppool_worker_opts wo = {0};
    void *handle = NULL;
    int rc;

    if (!o || !o->host || !o->token) {
        snprintf(err, errlen, "worker: --connect HOST:PORT and WLPROF_TOKEN are needed");
        return -EINVAL;
    }
    rc = wl_ppool_register(RUN__REMOTE_COMMAND, job_command);
    if (rc < 0 && rc != -EEXIST) {
        snprintf(err, errlen, "worker: cannot register the command job: %s", strerror(-rc));
        return rc;
    }
    if (o->lib) {
        rc = wl_task_lib_open(o->lib, o->task, &worker_task, &handle, err, errlen);
        if (rc < 0)
            return rc;
        if (!worker_task.blocking) {
            snprintf(err, errlen, "worker: task '%s' has no blocking form (a remote worker "
                                  "runs NAME, not NAME_async)", o->task);
            return -ENOTSUP;
        }
        rc = wl_ppool_register(RUN__REMOTE_TASK, job_task);
        if (rc < 0 && rc != -EEXIST) {
            snprintf(err, errlen, "worker: cannot register the task job: %s", strerror(-rc));
            return rc;
        }
    }
    wo.host = o->host;
    wo.port = o->port;
    wo.token = o->token;
    wo.node = o->node;
    wo.slots = o->slots;
    return wl_ppool_worker_run(&wo, err, errlen);
}
