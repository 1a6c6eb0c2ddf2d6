/*
 * slurm.c -- `wlprof run --executor slurm`: the batch over a Slurm
 * allocation, with workers started by one srun step and fed over TCP.
 *
 *   coordinator (here)                       nodes of the allocation
 *   salloc --no-shell (when outside one)
 *   remote process pool, listening ──TCP──►  srun ... wlprof worker --connect H:P
 *     pilot: job 1 alone, measured             one supervisor per node (per task),
 *     on the worker; classify                  `slots` serving processes each
 *     main: a window of jobs in flight         (pools/remote.c, remote_jobs.c)
 *   results, retries, report
 *   scancel of what we allocated
 *
 * Why salloc --no-shell and not sbatch of a coordinator: the coordinator
 * stays where the user is -- the progress, Ctrl-C, the report written to
 * the user's own path, the exit status of the command -- and needs no
 * shared file system or polling of a batch job's output. Inside an sbatch
 * script (SLURM_JOB_ID set) the coordinator simply runs on the first node
 * and uses that allocation.
 *
 * Why one srun step for all workers: one Slurm job or step per task costs
 * seconds of scheduling each and sites cap their number; a step of long-
 * lived workers pulls many small jobs over one connection each.
 *
 * Sizing (slurm_size.c): the first job runs alone on a worker and reports
 * its own wall, CPU and run-queue time (remote_jobs.c). Those numbers
 * become the pilot's profile through the profiler, as the task pilot's do
 * (wl_profile_from_tally), and the classifier's verdict on it decides:
 * CPU-bound (or a process pool), one job in flight per allocated core;
 * otherwise cores / CPU share jobs in flight -- enough to keep the cores
 * busy -- at most --limit and the slots the workers opened. The remote
 * pool spreads jobs over nodes (least-loaded node first).
 *
 * Security: the token is 32 random hex digits, handed to the workers in
 * srun's environment (WLPROF_TOKEN; srun exports the environment), never
 * on a command line other users can read with ps.
 *
 * Signals: the first SIGINT/SIGTERM/SIGHUP stops submitting and closes the
 * pool cancelling every job (remote workers see their connection end and
 * kill their job's process group), sends SIGTERM to srun, and after the
 * grace period SIGKILLs srun and scancels the step (and our allocation).
 * Running jobs are recorded cancelled, the rest not_run; the report is
 * still written; the caller exits 128+N.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "wlprof/pools.h"

extern char **environ;

#define SLOTS_MAX 64
#define JOIN_WAIT_MS 10000 /* for the last workers to connect before the main phase */
#define LINGER_MS 3000 /* after the last job: srun's time to see its workers exit (a
                        * lost node's step never reports: then we end it) */

typedef struct slurm_job {
    wl_ppool_req req;
    struct slurm_run *run;
    size_t index;
    double start_s;
    int running;
} slurm_job;

typedef struct slurm_run {
    const wl_run_opts *o;
    const wl_slurm_opts *so;
    wl_run_result *r;
    char *const *cmds;         /* commands mode */
    const wl_inputs *inputs;   /* tasks mode */
    slurm_job *jobs;
    size_t n;
    size_t next;               /* next job never started */
    size_t *retry;             /* jobs to start again, a stack */
    size_t nretry;
    size_t in_flight;
    size_t done;
    size_t cap;                /* jobs in flight allowed now */
    size_t pilot_left;         /* pilot jobs not yet finished */
    run_remote_pilot pilot;    /* what the workers measured of the pilot jobs */
    double t0;
    double main_t0;
    int cpus;                  /* allocated cores in all */
    int nodes;
    int slots;                 /* serving processes per worker */
    int joined;                /* connections that joined */
    int expected;              /* connections the step will open */
    int all_joined;            /* or the wait for them is over */
    uv_timer_t join_timer;
    uv_loop_t loop;
    wl_ppool pool;
    int pool_open;
    int pool_closing;
    uv_process_t srun;
    int srun_alive;
    int64_t srun_status;
    int srun_signal;
    uv_signal_t sig[3];
    uv_timer_t grace;
    int stopping;
    char jobid[32];
    int own_alloc;
    char err[512];
    FILE *out;
    FILE *errf;
} slurm_run;

/* ---- small process helpers -------------------------------------------- */

/* Runs argv, collects its stdout and stderr into buf (NUL-terminated), and
 * returns its exit status (or -errno when it could not run). */
static int capture_echo(char *const argv[], char *buf, size_t len, FILE *echo)
{
    posix_spawn_file_actions_t fa;
    int pfd[2];
    pid_t pid;
    size_t got = 0;
    int ws = 0;
    int rc;

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        return -rc;
    }
    for (;;) {
        ssize_t k = read(pfd[0], buf + got, got + 1 < len ? len - got - 1 : 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0 && got + 1 >= len) { /* full: drain the rest */
                char sink[512];
                while (read(pfd[0], sink, sizeof(sink)) > 0)
                    ;
            }
            break;
        }
        if (echo) { /* e.g. salloc's "Pending job allocation": the user waits */
            fwrite(buf + got, 1, (size_t)k, echo);
            fflush(echo);
        }
        got += (size_t)k;
    }
    buf[got] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static int capture(char *const argv[], char *buf, size_t len)
{
    return capture_echo(argv, buf, len, NULL);
}

/* The last line of text, trimmed, for one-line errors. */
static const char *last_line(char *text)
{
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

/* ---- the allocation --------------------------------------------------- */

static int allocate(slurm_run *s)
{
    const wl_slurm_opts *so = s->so;
    const char *env = getenv("SLURM_JOB_ID");
    char nodes[32], tpn[32], part[128], tlim[64];
    char *argv[14];
    char out[4096];
    int k = 0;
    int rc;

    if (env && *env) {
        snprintf(s->jobid, sizeof(s->jobid), "%s", env);
        return 0;
    }
    snprintf(nodes, sizeof(nodes), "--nodes=%d", so->nodes > 0 ? so->nodes : 1);
    argv[k++] = "salloc";
    argv[k++] = "--no-shell";
    argv[k++] = nodes;
    if (so->ntasks_per_node > 0) {
        snprintf(tpn, sizeof(tpn), "--ntasks-per-node=%d", so->ntasks_per_node);
        argv[k++] = tpn;
    }
    argv[k++] = "--exclusive"; /* whole nodes: every core is ours to size for */
    if (so->partition) {
        snprintf(part, sizeof(part), "--partition=%s", so->partition);
        argv[k++] = part;
    }
    if (so->time_limit) {
        snprintf(tlim, sizeof(tlim), "--time=%s", so->time_limit);
        argv[k++] = tlim;
    }
    argv[k++] = "--job-name=wlprof-run";
    argv[k] = NULL;
    rc = capture_echo(argv, out, sizeof(out), s->o->progress ? stderr : NULL);
    if (rc < 0) {
        snprintf(s->err, sizeof(s->err), "cannot run salloc: %s (is Slurm installed?)",
                 strerror(-rc));
        return rc;
    }
    const char *g = strstr(out, "Granted job allocation ");
    if (rc != 0 || !g) {
        snprintf(s->err, sizeof(s->err), "salloc failed: %s", last_line(out));
        return -EAGAIN;
    }
    snprintf(s->jobid, sizeof(s->jobid), "%ld", strtol(g + 23, NULL, 10));
    s->own_alloc = 1;
    return 0;
}

/* Reads the allocation's node and core counts and its node list. */
static int allocation_size(slurm_run *s)
{
    char out[1024];
    char *argv[] = {"squeue", "-h", "-j", s->jobid, "-o", "%D %C %N", NULL};
    char list[512] = "";
    int rc = capture(argv, out, sizeof(out));

    if (rc != 0 || sscanf(out, "%d %d %511s", &s->nodes, &s->cpus, list) < 2 || s->nodes < 1 ||
        s->cpus < 1) {
        snprintf(s->err, sizeof(s->err), "cannot read allocation %s with squeue: %s", s->jobid,
                 rc < 0 ? strerror(-rc) : last_line(out));
        return -EIO;
    }
    if (s->so->nodes > 0 && s->so->nodes < s->nodes) {
        s->cpus = s->cpus / s->nodes * s->so->nodes;
        s->nodes = s->so->nodes;
    }
    char desc[640];
    snprintf(desc, sizeof(desc), "Slurm job %s on %s (%d node%s, %d cores)", s->jobid, list,
             s->nodes, s->nodes == 1 ? "" : "s", s->cpus);
    s->r->cluster = strdup(desc);
    return 0;
}

static void release(slurm_run *s)
{
    char out[512];
    if (s->own_alloc) {
        char *argv[] = {"scancel", s->jobid, NULL};
        capture(argv, out, sizeof(out));
        s->own_alloc = 0;
    }
}

/* scancel of our worker step, found by its name. */
static void cancel_step(slurm_run *s)
{
    char out[2048];
    char *q[] = {"squeue", "-h", "-s", "-j", s->jobid, "-o", "%i %j", NULL};

    if (capture(q, out, sizeof(out)) != 0)
        return;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char step[64], name[128];
        if (sscanf(line, "%63s %127s", step, name) == 2 && strcmp(name, "wlprof-workers") == 0) {
            char *c[] = {"scancel", step, NULL};
            char o2[256];
            capture(c, o2, sizeof(o2));
        }
    }
}

/* This host's address the nodes can reach: the first non-loopback IPv4
 * address its name resolves to, else 127.0.0.1. */
static void default_bind(char *buf, size_t len)
{
    char host[256];
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;

    snprintf(buf, len, "127.0.0.1");
    if (gethostname(host, sizeof(host)) != 0 || getaddrinfo(host, NULL, &hints, &res) != 0)
        return;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
        if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
            inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)len);
            break;
        }
    }
    freeaddrinfo(res);
}

/* ---- jobs --------------------------------------------------------------- */

static void submit_more(slurm_run *s);
static void maybe_finish(slurm_run *s);

static void print_output(slurm_run *s, const slurm_job *j, const run_remote_result *rr)
{
    int line = s->r->jobs[j->index].line;

    if (s->o->output_dir) {
        char path[4096];
        for (int k = 0; k < 2; k++) {
            FILE *f;
            snprintf(path, sizeof(path), "%s/%d.%s", s->o->output_dir, line, k ? "err" : "out");
            f = fopen(path, "w");
            if (!f)
                continue;
            fwrite(k ? rr->err : rr->out, 1, k ? rr->err_len : rr->out_len, f);
            fclose(f);
        }
        return;
    }
    /* grouped: the job's whole output at once, each line prefixed */
    for (int k = 0; k < 2; k++) {
        FILE *f = k ? s->errf : s->out;
        const char *p = (const char *)(k ? rr->err : rr->out);
        size_t len = k ? rr->err_len : rr->out_len;
        while (len) {
            const char *nl = memchr(p, '\n', len);
            size_t l = nl ? (size_t)(nl - p) : len;
            fprintf(f, "[%d] %.*s\n", line, (int)l, p);
            l += nl ? 1 : 0;
            p += l;
            len -= l;
        }
        fflush(f);
    }
}

static void set_node(wl_job_result *jr, const char *node)
{
    free(jr->node);
    jr->node = node && *node ? strdup(node) : NULL;
}

/* Sizes the main phase from the pilot's measurements (see the top;
 * slurm_size.c). */
static void size_batch(slurm_run *s)
{
    size_t tasks_per_node = (size_t)(s->so->ntasks_per_node > 0 ? s->so->ntasks_per_node : 1);
    run_slurm_shape a = {
        .cpus = s->cpus,
        .nodes = s->nodes,
        .most = (size_t)s->nodes * tasks_per_node * (size_t)s->slots,
    };
    char label[160];
    if (s->r->mode == WL_RUN_COMMANDS)
        snprintf(label, sizeof(label), "pilot of command line %d", s->r->jobs[0].line);
    else
        snprintf(label, sizeof(label), "pilot of task %s", s->so->task);
    s->cap = wl__run_slurm_size(s->o, &a, &s->pilot, label, s->r);
}

static void on_job_done(wl_ppool_req *req, int status)
{
    slurm_job *j = req->data;
    slurm_run *s = j->run;
    wl_run_result *r = s->r;
    wl_job_result *jr = &r->jobs[j->index];
    double now = wl__run_now() - s->t0;
    run_remote_result rr;
    char msg[256] = "";
    int ok = 0;
    int code = 0;

    j->running = 0;
    s->in_flight--;
    set_node(jr, req->node);
    if (status == 0 && wl__run_remote_result_parse(req->result.data, req->result.len, &rr) == 0) {
        code = rr.status;
        if (r->mode == WL_RUN_COMMANDS) {
            print_output(s, j, &rr);
            ok = rr.status == 0;
            if (!ok)
                snprintf(msg, sizeof(msg), "exit status %d on %s", rr.status, req->node);
        } else {
            ok = rr.status >= 0;
            jr->out_bytes = rr.out_len;
            if (!ok)
                snprintf(msg, sizeof(msg), "%.*s", (int)(rr.out_len < 200 ? rr.out_len : 200),
                         (const char *)rr.out);
        }
        if (jr->pilot) {
            s->pilot.jobs++;
            s->pilot.wall_s += rr.wall_s;
            s->pilot.user_s += rr.user_s;
            s->pilot.sys_s += rr.sys_s;
            s->pilot.runq_s += rr.runq_s;
        }
    } else {
        code = status == 0 ? -EPROTO : status;
        snprintf(msg, sizeof(msg), "%s", status == 0 ? "bad reply from the worker" : req->error);
        if (r->mode == WL_RUN_COMMANDS)
            code = status == -ETIMEDOUT ? 124 : 255;
    }
    wl_ppool_req_cleanup(req);
    int final = 1;
    wl_job_state st = ok                      ? WL_JOB_OK
                      : status == -ETIMEDOUT  ? WL_JOB_TIMED_OUT
                      : status == -ECANCELED || s->stopping ? WL_JOB_CANCELLED
                                              : WL_JOB_FAILED;
    if (st == WL_JOB_TIMED_OUT && !msg[0])
        snprintf(msg, sizeof(msg), "timed out after %g s", s->o->timeout_s);
    /* every attempt is recorded; the last one is the job's */
    wl__run_job_end(r, j->index, st, code, ok ? NULL : msg[0] ? msg : "cancelled", j->start_s, now);
    if (!s->stopping && wl__run_should_retry(s->o, st, jr->nattempts)) {
        /* again, on whichever worker is free */
        s->retry[s->nretry++] = j->index;
        final = 0;
    } else {
        s->done++;
    }
    if (final && jr->pilot && --s->pilot_left == 0 && !s->stopping) {
        r->pilot_wall_s = now - r->jobs[0].start_s;
        s->main_t0 = now;
        size_batch(s);
    }
    submit_more(s);
    maybe_finish(s);
}

static int submit_one(slurm_run *s, size_t i)
{
    slurm_job *j = &s->jobs[i];
    wl_job_result *jr = &s->r->jobs[i];
    unsigned tmo = s->o->timeout_s > 0 ? (unsigned)(s->o->timeout_s * 1000 + 0.5) : 0;
    int rc;

    memset(&j->req, 0, sizeof(j->req));
    j->req.data = j;
    j->run = s;
    j->index = i;
    j->start_s = wl__run_now() - s->t0;
    if (s->r->mode == WL_RUN_COMMANDS)
        rc = wl_ppool_submit(&s->pool, &j->req, RUN__REMOTE_COMMAND, s->cmds[i],
                             strlen(s->cmds[i]), tmo, on_job_done);
    else
        rc = wl_ppool_submit(&s->pool, &j->req, RUN__REMOTE_TASK, s->inputs->items[i].data,
                             s->inputs->items[i].len, tmo, on_job_done);
    if (rc < 0)
        return rc;
    j->running = 1;
    (void)jr;
    s->in_flight++;
    if (s->in_flight > s->r->max_in_flight)
        s->r->max_in_flight = s->in_flight;
    return 0;
}

static void on_join_timeout(uv_timer_t *t)
{
    slurm_run *s = t->data;

    s->all_joined = 1; /* a node that never came: go on with the others */
    submit_more(s);
    maybe_finish(s);
}

/* The main phase waits until every worker connected (or JOIN_WAIT_MS
 * passed): jobs go to the least-loaded node, and a node that has not
 * joined yet would otherwise get none while the first one fills up. */
static int main_phase_ready(slurm_run *s)
{
    if (s->all_joined)
        return 1;
    if (!uv_is_active((uv_handle_t *)&s->join_timer))
        uv_timer_start(&s->join_timer, on_join_timeout, JOIN_WAIT_MS, 0);
    return 0;
}

static void submit_more(slurm_run *s)
{
    while (!s->stopping && !s->pool_closing && s->in_flight < s->cap) {
        if (s->pilot_left == 0 && !main_phase_ready(s))
            break;
        size_t i;
        if (s->nretry)
            i = s->retry[--s->nretry];
        else if (s->next < s->n && (s->pilot_left == 0 || s->r->jobs[s->next].pilot))
            i = s->next++;
        else
            break;
        if (submit_one(s, i) < 0) {
            wl__run_job_end(s->r, i, WL_JOB_FAILED, -EIO, "cannot submit", 0, 0);
            s->done++;
        }
    }
}

static void on_handle_closed(uv_handle_t *h)
{
}

static void close_all(slurm_run *s)
{
    for (int k = 0; k < 3; k++)
        if (!uv_is_closing((uv_handle_t *)&s->sig[k]))
            uv_close((uv_handle_t *)&s->sig[k], on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->grace))
        uv_close((uv_handle_t *)&s->grace, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->join_timer))
        uv_close((uv_handle_t *)&s->join_timer, on_handle_closed);
}

static void on_grace(uv_timer_t *t);

static void maybe_finish(slurm_run *s)
{
    if (s->pool_closing)
        return;
    if (s->done < s->n && !(s->stopping && s->in_flight == 0))
        return;
    s->pool_closing = 1;
    uv_timer_stop(&s->join_timer);
    wl_ppool_close(&s->pool, s->stopping ? WL_POOL_CLOSE_CANCEL : WL_POOL_CLOSE_WAIT, NULL);
    /* the workers see EOF and exit, and so does srun; if it lingers, the
     * grace timer ends it */
    if (!uv_is_active((uv_handle_t *)&s->grace) && s->srun_alive)
        uv_timer_start(&s->grace, on_grace, LINGER_MS, 0);
}

static void on_grace(uv_timer_t *t)
{
    slurm_run *s = t->data;

    if (s->srun_alive) {
        uv_process_kill(&s->srun, SIGKILL);
        cancel_step(s);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    slurm_run *s = h->data;

    if (s->stopping)
        return;
    s->stopping = 1;
    s->r->signal = signum;
    fprintf(stderr, "wlprof run: %s: cancelling the batch\n", strsignal(signum));
    if (s->srun_alive)
        uv_process_kill(&s->srun, SIGTERM);
    if (!s->pool_closing) {
        s->pool_closing = 1;
        wl_ppool_close(&s->pool, WL_POOL_CLOSE_CANCEL, NULL);
    }
    uv_timer_start(&s->grace, on_grace,
                   (uint64_t)((s->o->grace_s > 0 ? s->o->grace_s : 3.0) * 1000), 0);
    for (int k = 0; k < 3; k++)
        uv_unref((uv_handle_t *)&s->sig[k]);
}

static void on_srun_exit(uv_process_t *p, int64_t status, int term_signal)
{
    slurm_run *s = p->data;

    s->srun_alive = 0;
    s->srun_status = status;
    s->srun_signal = term_signal;
    uv_close((uv_handle_t *)p, on_handle_closed);
    if (s->done < s->n && wl_ppool_serving(&s->pool) == 0 && !s->pool_closing) {
        /* no worker left and none coming: the rest cannot run */
        snprintf(s->err, sizeof(s->err), "srun ended (status %d%s%s) before the batch did",
                 (int)status, term_signal ? ", signal " : "",
                 term_signal ? strsignal(term_signal) : "");
        s->stopping = 1;
        s->pool_closing = 1;
        wl_ppool_close(&s->pool, WL_POOL_CLOSE_CANCEL, NULL);
    }
    uv_timer_stop(&s->grace);
    close_all(s);
}

static void on_worker(wl_ppool *pool, const char *node, int pid, int joined)
{
    slurm_run *s = pool->data;
    if (joined && ++s->joined >= s->expected && !s->all_joined) {
        s->all_joined = 1;
        uv_timer_stop(&s->join_timer);
        submit_more(s);
    }
}

/* A fresh random token the workers must present (32 hex digits). */
static int make_token(slurm_run *s, char token[33])
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        snprintf(s->err, sizeof(s->err), "cannot make a token: %s", strerror(errno));
        return -errno;
    }
    for (int i = 0; i < 16; i++)
        snprintf(token + 2 * i, 3, "%02x", rnd[i]);
    return 0;
}

/* Serving slots per worker process: enough for --limit over the whole step,
 * at least one per allocated core; and the connections to expect. */
static void size_slots(slurm_run *s, int procs)
{
    int limit = s->o->limit > 0 ? s->o->limit : RUN_DEFAULT_LIMIT;
    int per_core = (s->cpus + procs - 1) / procs;
    s->slots = (limit + procs - 1) / procs;
    if (s->slots < per_core)
        s->slots = per_core;
    if (s->slots > SLOTS_MAX)
        s->slots = SLOTS_MAX;
    if (s->slots < 1)
        s->slots = 1;
    s->expected = procs * s->slots;
}

/* srun's command line for the worker step, with the buffers it points to. */
typedef struct srun_cmd {
    char jobid[48], nodes[32], ntasks[32], tpn[32], connect[300], slots[32];
    char *args[24];
} srun_cmd;

static void srun_args(const slurm_run *s, const char *host, int procs, int tasks_per_node,
                      srun_cmd *c)
{
    const wl_slurm_opts *so = s->so;
    int k = 0;
    snprintf(c->jobid, sizeof(c->jobid), "--jobid=%s", s->jobid);
    snprintf(c->nodes, sizeof(c->nodes), "--nodes=%d", s->nodes);
    snprintf(c->ntasks, sizeof(c->ntasks), "--ntasks=%d", procs);
    snprintf(c->tpn, sizeof(c->tpn), "--ntasks-per-node=%d", tasks_per_node);
    snprintf(c->connect, sizeof(c->connect), "%s:%d", host, wl_ppool_remote_port(&s->pool));
    snprintf(c->slots, sizeof(c->slots), "%d", s->slots);
    c->args[k++] = "srun";
    c->args[k++] = c->jobid;
    c->args[k++] = c->nodes;
    c->args[k++] = c->ntasks;
    c->args[k++] = c->tpn;
    c->args[k++] = "--no-kill"; /* a lost node must not end the step */
    c->args[k++] = "--kill-on-bad-exit=0";
    c->args[k++] = "--job-name=wlprof-workers";
    c->args[k++] = (char *)so->self;
    c->args[k++] = "worker";
    c->args[k++] = "--connect";
    c->args[k++] = c->connect;
    c->args[k++] = "--slots";
    c->args[k++] = c->slots;
    if (s->r->mode == WL_RUN_TASKS) {
        c->args[k++] = "--lib";
        c->args[k++] = (char *)so->lib;
        c->args[k++] = "--task";
        c->args[k++] = (char *)so->task;
    }
    c->args[k] = NULL;
}

/* Our environment with WLPROF_TOKEN=token (in tokenenv, the caller's)
 * instead of any inherited one: the token goes through srun's environment
 * only. The array is the caller's to free, NULL when out of memory. */
static char **env_with_token(const char *token, char *tokenenv, size_t len)
{
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **env = calloc(nenv + 2, sizeof(*env));
    if (!env)
        return NULL;
    size_t e = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "WLPROF_TOKEN=", 13) != 0)
            env[e++] = environ[i];
    snprintf(tokenenv, len, "WLPROF_TOKEN=%s", token);
    env[e++] = tokenenv;
    env[e] = NULL;
    return env;
}

/* Starts srun with args and env; its own words go to stderr. */
static int spawn_srun(slurm_run *s, char **args, char **env)
{
    uv_process_options_t po;
    uv_stdio_container_t stdio[3];
    memset(&po, 0, sizeof(po));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = STDERR_FILENO;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = STDERR_FILENO;
    po.file = "srun";
    po.args = args;
    po.env = env;
    po.exit_cb = on_srun_exit;
    po.stdio = stdio;
    po.stdio_count = 3;
    s->srun.data = s;
    int rc = uv_spawn(&s->loop, &s->srun, &po);
    if (rc < 0) {
        snprintf(s->err, sizeof(s->err), "cannot run srun: %s", uv_strerror(rc));
        return rc;
    }
    s->srun_alive = 1;
    return 0;
}

/* Listens for the workers on host (a remote process pool) and starts them
 * as one srun step inside the allocation. */
static int start_workers(slurm_run *s, const char *host)
{
    int tasks_per_node = s->so->ntasks_per_node > 0 ? s->so->ntasks_per_node : 1;
    int procs = s->nodes * tasks_per_node;
    char token[33];
    int rc = make_token(s, token);
    if (rc < 0)
        return rc;
    wl_ppool_remote_opts ro = {.host = host, .token = token, .worker_cb = on_worker};
    wl_ppool_opts popts = {0};
    rc = wl_ppool_init_remote(&s->loop, &s->pool, &popts, &ro);
    if (rc < 0) {
        snprintf(s->err, sizeof(s->err), "cannot listen on %s: %s", host, strerror(-rc));
        return rc;
    }
    s->pool.data = s;
    s->pool_open = 1;
    size_slots(s, procs);

    srun_cmd cmd;
    srun_args(s, host, procs, tasks_per_node, &cmd);
    char tokenenv[64];
    char **env = env_with_token(token, tokenenv, sizeof(tokenenv));
    if (!env)
        return -ENOMEM;
    rc = spawn_srun(s, cmd.args, env);
    free(env);
    return rc;
}

static int run_batch(slurm_run *s)
{
    wl_run_result *r = s->r;
    char host[256];
    int rc;

    s->out = s->o->out ? s->o->out : stdout;
    s->errf = s->o->err ? s->o->err : stderr;
    s->t0 = wl__run_now();
    rc = allocate(s);
    if (rc < 0)
        return rc;
    rc = allocation_size(s);
    if (rc < 0)
        goto out_release;
    s->jobs = calloc(s->n ? s->n : 1, sizeof(*s->jobs));
    s->retry = calloc(s->n ? s->n : 1, sizeof(*s->retry));
    if (!s->jobs || !s->retry) {
        rc = -ENOMEM;
        goto out_release;
    }
    size_t pilot = s->o->pilot < 0 ? 0 : s->o->pilot > 0 ? (size_t)s->o->pilot : 1;
    if (s->o->workers > 0)
        pilot = 0; /* the size is given: nothing to measure it for */
    if (pilot > s->n)
        pilot = s->n;
    for (size_t i = 0; i < pilot; i++)
        r->jobs[i].pilot = true;
    r->pilot_jobs = pilot;
    s->pilot_left = pilot;
    uv_loop_init(&s->loop);
    for (int k = 0; k < 3; k++) {
        uv_signal_init(&s->loop, &s->sig[k]);
        s->sig[k].data = s;
    }
    uv_signal_start(&s->sig[0], on_signal, SIGINT);
    uv_signal_start(&s->sig[1], on_signal, SIGTERM);
    uv_signal_start(&s->sig[2], on_signal, SIGHUP);
    uv_timer_init(&s->loop, &s->grace);
    s->grace.data = s;
    uv_timer_init(&s->loop, &s->join_timer);
    s->join_timer.data = s;
    if (s->so->bind)
        snprintf(host, sizeof(host), "%s", s->so->bind);
    else
        default_bind(host, sizeof(host));
    rc = start_workers(s, host);
    if (rc < 0) {
        if (s->pool_open)
            wl_ppool_close(&s->pool, WL_POOL_CLOSE_CANCEL, NULL);
        close_all(s);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        goto out_release;
    }
    if (pilot) {
        s->cap = 1;
    } else {
        size_batch(s);
        s->main_t0 = wl__run_now() - s->t0;
    }
    submit_more(s);
    maybe_finish(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);

    double end = wl__run_now() - s->t0;
    r->total_wall_s = end;
    if (pilot && r->pilot_wall_s <= 0)
        r->pilot_wall_s = end;
    r->main_wall_s = end - s->main_t0;
    if (r->main_wall_s < 0)
        r->main_wall_s = 0;
    for (size_t i = 0; i < s->n; i++)
        if (r->jobs[i].state == WL_JOB_NOT_RUN && !r->jobs[i].nattempts)
            r->jobs[i].status = 0;
    wl__run_result_count(r);
    rc = 0;
    if (s->err[0] && r->ok + r->failed == 0 && !r->signal)
        rc = -EIO; /* nothing ran at all: say why */
out_release:
    if (s->srun_alive)
        cancel_step(s);
    release(s);
    free(s->jobs);
    free(s->retry);
    return rc;
}

static int check_opts(const wl_slurm_opts *so, int tasks, char *err, size_t errlen)
{
    if (!so || !so->self) {
        snprintf(err, errlen, "slurm: the wlprof executable's path is needed");
        return -EINVAL;
    }
    if (tasks && (!so->lib || !so->task)) {
        snprintf(err, errlen, "slurm: task mode needs the library path and task name");
        return -EINVAL;
    }
    return 0;
}

int wl_run_slurm_commands(char *const *cmds, const int *lines, size_t n, const wl_run_opts *opts,
                          const wl_slurm_opts *so, wl_run_result *out, char *err, size_t errlen)
{
    slurm_run s = {0};
    int rc;

    if (wl__run_result_init(out, WL_RUN_COMMANDS, n, "commands") < 0)
        return -ENOMEM;
    rc = check_opts(so, 0, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        out->jobs[i].line = lines ? lines[i] : (int)i + 1;
    s.o = opts;
    s.so = so;
    s.r = out;
    s.cmds = cmds;
    s.n = n;
    rc = run_batch(&s);
    if (rc < 0 || (s.err[0] && !out->signal))
        snprintf(err, errlen, "%s", s.err[0] ? s.err : strerror(-rc));
    return rc;
}

int wl_run_slurm_tasks(const wl_inputs *inputs, const wl_run_opts *opts, const wl_slurm_opts *so,
                       wl_run_result *out, char *err, size_t errlen)
{
    slurm_run s = {0};
    int rc;

    if (wl__run_result_init(out, WL_RUN_TASKS, inputs->n, "tasks") < 0)
        return -ENOMEM;
    rc = check_opts(so, 1, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < inputs->n; i++)
        out->jobs[i].line = inputs->lines ? inputs->lines[i] : (int)i + 1;
    out->has_blocking = true;
    s.o = opts;
    s.so = so;
    s.r = out;
    s.inputs = inputs;
    s.n = inputs->n;
    rc = run_batch(&s);
    if (rc < 0 || (s.err[0] && !out->signal))
        snprintf(err, errlen, "%s", s.err[0] ? s.err : strerror(-rc));
    return rc;
}
