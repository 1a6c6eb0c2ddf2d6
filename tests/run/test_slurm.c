/*
 * test_slurm.c -- `wlprof run --executor slurm` on a real Slurm cluster: one
 * slurmctld and three slurmd nodes on 127.0.0.1, started here by
 * scripts/slurm-local when none is running (it installs the packages when
 * missing) and stopped again at the end. Specification:
 *   - a command batch and a task batch run across all three nodes, every
 *     job's node in the run report, the pilot's profile made by the
 *     profiler (one thread carrying the split its worker measured);
 *   - a node killed mid-batch (its slurmd, step daemon and tasks) fails or
 *     re-queues only the jobs it was running: every job is accounted for
 *     once, and no job that succeeded ran to the end twice;
 *   - SIGINT to the coordinator cancels the step, leaves no job process,
 *     writes the report and exits 130.
 * Needs root (slurmd), as CI runs; exits 77 (skip) otherwise.
 */
#include "testutil.h"
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

static char slurm_local[4096];

static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* Runs wlprof run --executor slurm ARGS... and returns its pid. */
static pid_t start_run(const char *report, char **extra)
{
    char *argv[40];
    int k = 0;
    argv[k++] = (char *)tu_env("WLPROF");
    argv[k++] = "run";
    argv[k++] = "--executor";
    argv[k++] = "slurm";
    argv[k++] = "--nodes";
    argv[k++] = "3";
    argv[k++] = "--bind";
    argv[k++] = "127.0.0.1";
    argv[k++] = "-q";
    argv[k++] = "-o";
    argv[k++] = (char *)report;
    while (*extra)
        argv[k++] = *extra++;
    argv[k] = NULL;
    return tu_spawn(argv, -1);
}

/* Asserts every job ok and the distinct nodes they ran on; returns them. */
static int distinct_nodes(const json_t *root, int want_jobs)
{
    const json_t *jobs = tu_get(root, "jobs");
    const char *seen[8];
    int nseen = 0;
    ck_assert_int_eq((int)json_array_size(jobs), want_jobs);
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        const json_t *j = json_array_get(jobs, i);
        const char *node = json_string_value(json_object_get(j, "node"));
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
        ck_assert_ptr_nonnull(node);
        ck_assert(strcmp(node, "n1") == 0 || strcmp(node, "n2") == 0 || strcmp(node, "n3") == 0);
        int k;
        for (k = 0; k < nseen && strcmp(seen[k], node) != 0; k++)
            ;
        if (k == nseen && nseen < 8)
            seen[nseen++] = node;
    }
    return nseen;
}

START_TEST(test_slurm_command_batch_runs_on_all_three_nodes)
{
    const char *dir = tu_tmpdir();
    char cmds[4096], report[4096];
    FILE *f;

    snprintf(cmds, sizeof(cmds), "%s/cmds.txt", dir);
    snprintf(report, sizeof(report), "%s/run.json", dir);
    f = fopen(cmds, "w");
    for (int i = 0; i < 30; i++)
        fprintf(f, "echo $SLURMD_NODENAME; sleep 0.3\n");
    fclose(f);
    char *extra[] = {"--commands", cmds, NULL};
    ck_assert_int_eq(tu_wait(start_run(report, extra), 240), 0);
    json_t *root = tu_load_json(report);
    ck_assert_str_eq(tu_str(root, "schema"), "wlprof.run/2");
    ck_assert_int_eq(distinct_nodes(root, 30), 3);
    ck_assert_int_eq((int)tu_num(root, "totals.ok"), 30);
    ck_assert_int_eq((int)json_array_size(tu_get(root, "cluster.nodes")), 3);
    const json_t *argv = tu_get(root, "pilot.profile.target.argv");
    ck_assert_str_eq(json_string_value(json_array_get(argv, 0)), "pilot of command line 1");
    ck_assert_int_eq((int)json_array_size(tu_get(root, "pilot.profile.threads")), 1);
    json_decref(root);
}
END_TEST

START_TEST(test_slurm_task_batch_runs_on_all_three_nodes)
{
    const char *dir = tu_tmpdir();
    char in[4096], report[4096];
    FILE *f;

    snprintf(in, sizeof(in), "%s/in.jsonl", dir);
    snprintf(report, sizeof(report), "%s/run.json", dir);
    f = fopen(in, "w");
    for (int i = 0; i < 30; i++)
        fprintf(f, "{\"ms\": 300}\n");
    fclose(f);
    char *extra[] = {"--lib", (char *)tu_path("libwlprof-samples.so"), "--task", "sample_sleep",
                     "--inputs", in, NULL};
    ck_assert_int_eq(tu_wait(start_run(report, extra), 240), 0);
    json_t *root = tu_load_json(report);
    ck_assert_int_eq(distinct_nodes(root, 30), 3);
    /* the pilot, measured on a worker, saw a job that waits */
    ck_assert_str_eq(tu_str(root, "pilot.classification.kind"), "io_bound");
    /* and its numbers became a profile through the profiler, the task
     * pilot's shape: the task it stands for, one thread carrying the
     * measured split (a profile filled by hand had neither) */
    const json_t *prof = tu_get(root, "pilot.profile");
    const json_t *argv = tu_get(prof, "target.argv");
    const json_t *threads = json_object_get(prof, "threads");
    ck_assert_int_eq((int)json_array_size(argv), 1);
    ck_assert_str_eq(json_string_value(json_array_get(argv, 0)), "pilot of task sample_sleep");
    ck_assert_int_eq((int)json_array_size(threads), 1);
    const json_t *th = json_array_get(threads, 0);
    ck_assert_str_eq(json_string_value(json_object_get(th, "comm")), "pilot");
    ck_assert_double_eq_tol(json_number_value(json_object_get(th, "waiting_s")),
                            tu_num(prof, "time.waiting_s"), 1e-9);
    ck_assert_double_ge(tu_num(prof, "time.waiting_s"), 0.25); /* of a 300 ms sleep */
    ck_assert_double_eq_tol(json_number_value(json_object_get(th, "runq_s")),
                            tu_num(prof, "time.runqueue_s"), 1e-9);
    json_decref(root);
}
END_TEST

START_TEST(test_slurm_lost_node_fails_or_requeues_only_its_jobs)
{
    const char *dir = tu_tmpdir();
    char cmds[4096], report[4096], marks[4096];
    FILE *f;

    snprintf(cmds, sizeof(cmds), "%s/cmds.txt", dir);
    snprintf(report, sizeof(report), "%s/run.json", dir);
    snprintf(marks, sizeof(marks), "%s/marks", dir);
    ck_assert_int_eq(mkdir(marks, 0755), 0);
    f = fopen(cmds, "w");
    for (int i = 1; i <= 60; i++)
        fprintf(f, "touch %s/started.%d; sleep 1; echo $SLURMD_NODENAME >> %s/done.%d\n", marks, i,
                marks, i);
    fclose(f);
    char *extra[] = {"--commands", cmds, "--workers", "6", "--retries", "1", NULL};
    pid_t run = start_run(report, extra);
    /* the event: jobs are running on every node (two rounds started) */
    double end = tu_now() + 120;
    while (count_prefix(marks, "started.") < 8 && tu_now() < end)
        usleep(20000);
    ck_assert_int_ge(count_prefix(marks, "started."), 8);
    char *kill_node[] = {slurm_local, "kill-node", "n2", NULL};
    ck_assert_int_eq(tu_run(kill_node, 30), 0);
    int rc = tu_wait(run, 300);
    ck_assert(rc == 0 || rc == 1);

    json_t *root = tu_load_json(report);
    const json_t *jobs = tu_get(root, "jobs");
    int ok = 0, failed = 0, on_n2 = 0, retried = 0;
    ck_assert_int_eq((int)json_array_size(jobs), 60);
    for (size_t i = 0; i < 60; i++) {
        const json_t *j = json_array_get(jobs, i);
        const char *st = json_string_value(json_object_get(j, "status"));
        const char *node = json_string_value(json_object_get(j, "node"));
        int line = (int)json_integer_value(json_object_get(j, "line"));
        char done[4200];
        snprintf(done, sizeof(done), "%s/done.%d", marks, line);
        if (strcmp(st, "ok") == 0) {
            ok++;
            /* ran to its end exactly once, on the node the report names */
            ck_assert_int_eq(tu_file_lines(done), 1);
        } else {
            ck_assert_str_eq(st, "failed");
            ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "error")), "lost"));
            failed++;
        }
        on_n2 += node && strcmp(node, "n2") == 0;
        retried += json_array_size(json_object_get(j, "attempts")) > 1;
    }
    ck_assert_int_eq(ok + failed, 60);
    ck_assert_int_ge(on_n2, 1);   /* n2 served jobs before it went */
    ck_assert_int_ge(retried, 1); /* and the ones it was running went elsewhere */
    ck_assert_int_eq(rc, failed ? 1 : 0);
    json_decref(root);
    /* bring n2 back for the next test */
    char *start[] = {slurm_local, "start", NULL};
    ck_assert_int_eq(tu_run(start, 120), 0);
}
END_TEST

START_TEST(test_slurm_sigint_cancels_the_step_and_writes_the_report)
{
    const char *dir = tu_tmpdir();
    char cmds[4096], report[4096], marks[4096], text[8192] = "";

    snprintf(cmds, sizeof(cmds), "%s/cmds.txt", dir);
    snprintf(report, sizeof(report), "%s/run.json", dir);
    snprintf(marks, sizeof(marks), "%s/marks", dir);
    ck_assert_int_eq(mkdir(marks, 0755), 0);
    for (int i = 1; i <= 4; i++) {
        char line[4200];
        snprintf(line, sizeof(line), "touch %s/started.%d; exec sleep 4%d\n", marks, i, i);
        strcat(text, line);
    }
    tu_write_file(cmds, text);
    char *extra[] = {"--commands", cmds, "--workers", "4", NULL};
    pid_t run = start_run(report, extra);
    double end = tu_now() + 120;
    while (count_prefix(marks, "started.") < 4 && tu_now() < end)
        usleep(20000);
    ck_assert_int_eq(count_prefix(marks, "started."), 4);
    kill(run, SIGINT);
    double t0 = tu_now();
    ck_assert_int_eq(tu_wait(run, 60), 130);
    ck_assert_double_lt(tu_now() - t0, 15);
    /* no job left: the sleeps are ours by their distinct lengths */
    char *pg[] = {"sh", "-c", "pgrep -f '^sleep 4[1-4]$' && exit 1; exit 0", NULL};
    end = tu_now() + 10;
    while (tu_run(pg, 10) != 0 && tu_now() < end)
        usleep(100000);
    ck_assert_int_eq(tu_run(pg, 10), 0);
    json_t *root = tu_load_json(report);
    ck_assert_int_eq((int)tu_num(root, "totals.cancelled"), 4);
    ck_assert_int_eq((int)tu_num(root, "cluster.signal"), SIGINT);
    json_decref(root);
}
END_TEST

int main(void)
{
    char *start[] = {slurm_local, "start", NULL};
    char *stop[] = {slurm_local, "stop", NULL};
    char status_cmd[4200];
    int was_running;
    int rc;

    if (geteuid() != 0) {
        fprintf(stderr, "test_slurm: needs root to start slurmd (CI runs as root): skipped\n");
        return 77;
    }
    snprintf(slurm_local, sizeof(slurm_local), "%s/scripts/slurm-local", getenv("WL_SOURCE_DIR"));
    setenv("SLURM_CONF", "/tmp/wlprof-slurm/slurm.conf", 1);
    snprintf(status_cmd, sizeof(status_cmd), "%s status >/dev/null 2>&1", slurm_local);
    was_running = system(status_cmd) == 0;
    pid_t p = fork();
    if (p == 0) {
        execv(slurm_local, start);
        _exit(127);
    }
    int ws = 0;
    waitpid(p, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        fprintf(stderr, "test_slurm: scripts/slurm-local start failed (status %d)\n",
                WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
        return 1;
    }
    Suite *s = suite_create("slurm");
    TCase *t = tcase_create("cluster");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, test_slurm_command_batch_runs_on_all_three_nodes);
    tcase_add_test(t, test_slurm_task_batch_runs_on_all_three_nodes);
    tcase_add_test(t, test_slurm_lost_node_fails_or_requeues_only_its_jobs);
    tcase_add_test(t, test_slurm_sigint_cancels_the_step_and_writes_the_report);
    suite_add_tcase(s, t);
    rc = tu_run_suite(s);
    if (!was_running) {
        p = fork();
        if (p == 0) {
            execv(slurm_local, stop);
            _exit(127);
        }
        waitpid(p, NULL, 0);
    }
    return rc;
}
