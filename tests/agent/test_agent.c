/*
 * test_agent.c -- the stack agent (libwlprof-agent.so) and wl_stacks,
 * specified by running real programs under it:
 *  - a program with one computing and one waiting function gets >= 90 % of
 *    its CPU on the first and >= 90 % of its waiting on the second, with
 *    file:line (the targets are built with -g);
 *  - four computing threads all show up; a fork+exec child gets its own
 *    stacks; folded output sums to the sample count;
 *  - blocking calls keep their exact behaviour under a 1000 Hz sampler, and
 *    their waited time is measured as the program itself measures it, also
 *    at a call site the agent samples because it rarely blocks;
 *  - a SIGPROF inside the agent's own unwind of a wait (libunwind's first
 *    use) is dropped, never a second unwind that deadlocks; the first
 *    SIGPROF needs no loader lock (another thread in dlopen may hold it);
 *  - `wlprof profile` wires it: --folded/--speedscope/--json, --no-stacks,
 *    and a one-line notice for a statically linked target;
 *  - the in-process API profiles a region of the calling program;
 *  - a process image that records nothing leaves no file of its own, yet
 *    is counted (the tally file), also when killed, and once when it has a
 *    file too.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "targets/burn.h"
#include "wlprof/agent.h"
#include "wlprof/profile.h"
#include "wlprof/stacks.h"
#include "wire.h"

/* Runs argv with the agent preloaded, recording into a fresh directory at
 * hz; fills *st from it. Returns the program's exit status. */
static int run_with_agent(char *const argv[], double hz, wl_stacks *st)
{
    const char *dir = tu_tmpdir();
    char hzs[32];
    snprintf(hzs, sizeof(hzs), "%g", hz);
    setenv("LD_PRELOAD", tu_path("libwlprof-agent.so"), 1);
    setenv("WLPROF_AGENT_DIR", dir, 1);
    setenv("WLPROF_AGENT_HZ", hzs, 1);
    /* ASan-built targets (WL_SANITIZE) want their runtime first. */
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
    int rc = tu_run(argv, 60);
    unsetenv("LD_PRELOAD");
    unsetenv("WLPROF_AGENT_DIR");
    unsetenv("WLPROF_AGENT_HZ");
    ck_assert_int_eq(wl_stacks_read(dir, st), 0);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
    return rc;
}

static const wl_func_stat *find_func(const wl_stacks *s, const char *name)
{
    for (size_t i = 0; i < s->nfuncs; i++)
        if (strcmp(s->funcs[i].name, name) == 0)
            return &s->funcs[i];
    return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

START_TEST(test_agent_attributes_cpu_to_computing_and_waits_to_blocking)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_mixed"), "25", NULL};
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 200, &st), 0);
    ck_assert_uint_eq(st.processes, 1);
    /* enough samples for the shares below to mean something (a CPU-clock
     * timer meets fewer of the 20 ms bursts on a loaded machine: seen 18) */
    ck_assert_uint_gt(st.cpu_samples, 10);
    ck_assert_uint_gt(st.waits, 20);
    const wl_func_stat *comp = find_func(&st, "agent_compute");
    const wl_func_stat *blk = find_func(&st, "agent_block");
    ck_assert_ptr_nonnull(comp);
    ck_assert_ptr_nonnull(blk);
    double cpu = st.user_s + st.sys_s;
    ck_assert_msg(comp->self_user_s + comp->self_sys_s >= 0.9 * cpu, "compute %.3f of %.3f s CPU",
                  comp->self_user_s + comp->self_sys_s, cpu);
    ck_assert_msg(blk->total_wait_s >= 0.9 * st.wait_s, "block %.3f of %.3f s waiting",
                  blk->total_wait_s, st.wait_s);
    /* ~0.5 s of each, whatever the sampling rate */
    ck_assert_msg(cpu > 0.3 && cpu < 1.5, "cpu %.3f", cpu);
    ck_assert_msg(st.wait_s > 0.3 && st.wait_s < 1.5, "wait %.3f", st.wait_s);
    ck_assert_ptr_nonnull(comp->file);
    /* its own file, or the always-inlined burner's */
    ck_assert_msg(ends_with(comp->file, "agent_mixed.c") || ends_with(comp->file, "burn.h"), "%s",
                  comp->file);
    ck_assert_int_gt(comp->line, 0);
    ck_assert_ptr_nonnull(blk->file);
    ck_assert_int_gt(blk->line, 0);
    /* the waits name their calls; the agent's own frames are hidden */
    int saw_usleep = 0, saw_poll = 0;
    for (size_t i = 0; i < st.nstacks; i++) {
        const wl_stack *s = &st.stacks[i];
        if (s->call && strcmp(s->call, "usleep") == 0)
            saw_usleep = 1;
        if (s->call && strcmp(s->call, "poll") == 0)
            saw_poll = 1;
        for (uint32_t k = 0; k < s->nframes; k++)
            ck_assert_str_ne(st.frames[s->frames[k]].module, "libwlprof-agent.so");
    }
    ck_assert(saw_usleep && saw_poll);
    /* A writer starved of CPU may let a ring overflow; that is counted and
     * reported, and must stay rare. */
    ck_assert_uint_le(st.dropped, st.samples / 100);
    wl_stacks_free(&st);
}
END_TEST

/* A burst after a quiet spell: the writer sleeps its longest then, and
 * the producer whose ring passes half full must wake it (ring_commit), or
 * the ring overflows: ~40 % of these records were lost without the wake. */
START_TEST(test_agent_burst_after_quiet_is_not_dropped)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_burst"), "3000", NULL};
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 100, &st), 0);
    ck_assert_msg(st.waits >= 3000 * 99 / 100 && st.dropped <= 3000 / 100, "%llu waits, %llu dropped",
                  (unsigned long long)st.waits, (unsigned long long)st.dropped);
    wl_stacks_free(&st);
}
END_TEST

START_TEST(test_agent_sees_all_four_threads)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_threads"), "200", NULL};
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 500, &st), 0);
    int busy = 0;
    for (size_t i = 0; i < st.nthreads; i++) {
        if (st.threads[i].cpu_samples >= 5) {
            busy++;
            ck_assert_msg(st.threads[i].user_s + st.threads[i].sys_s > 0.1, "thread %d: %.3f s",
                          st.threads[i].tid, st.threads[i].user_s + st.threads[i].sys_s);
        }
    }
    ck_assert_int_eq(busy, 4);
    const wl_func_stat *spin = find_func(&st, "agent_spin");
    ck_assert_ptr_nonnull(spin);
    ck_assert(spin->total_user_s + spin->total_sys_s >= 0.9 * (st.user_s + st.sys_s));
    /* main waits in pthread_join */
    const wl_func_stat *m = find_func(&st, "main");
    ck_assert_ptr_nonnull(m);
    ck_assert(m->self_wait_s > 0.1);
    wl_stacks_free(&st);
}
END_TEST

START_TEST(test_agent_follows_fork_and_exec)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_forkexec"), NULL};
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 200, &st), 0);
    ck_assert_uint_ge(st.processes, 2);
    const wl_func_stat *child = find_func(&st, "agent_child_compute");
    ck_assert_ptr_nonnull(child);
    ck_assert(child->self_user_s + child->self_sys_s > 0.15);
    int child_pid = 0, parent_pid = 0;
    for (size_t i = 0; i < st.nstacks; i++) {
        const wl_stack *s = &st.stacks[i];
        if (s->nframes && strcmp(st.funcs[st.frames[s->frames[0]].func_id].name, "agent_child_compute") == 0)
            child_pid = s->pid;
        if (s->call && strcmp(s->call, "waitpid") == 0)
            parent_pid = s->pid;
    }
    ck_assert_int_gt(child_pid, 0);
    ck_assert_int_gt(parent_pid, 0);
    ck_assert_int_ne(child_pid, parent_pid);
    wl_stacks_free(&st);
}
END_TEST

START_TEST(test_folded_output_round_trips)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_mixed"), "10", NULL};
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 300, &st), 0);
    ck_assert_uint_gt(st.samples, 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s/out.folded", tu_tmpdir());
    ck_assert_int_eq(wl_stacks_save_folded(&st, path), 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    uint64_t total = 0;
    size_t lines = 0;
    ck_assert_int_eq(wl_folded_parse(f, &total, &lines), 0);
    fclose(f);
    ck_assert_uint_eq(total, st.samples);
    ck_assert_uint_ge(lines, 3); /* compute, usleep, poll */
    uint64_t sum = 0;
    for (size_t i = 0; i < st.nstacks; i++)
        sum += st.stacks[i].samples;
    ck_assert_uint_eq(sum, st.samples);
    /* speedscope: valid JSON with one profile per thread */
    snprintf(path, sizeof(path), "%s/out.speedscope.json", tu_tmpdir());
    ck_assert_int_eq(wl_stacks_save_speedscope(&st, path, "t"), 0);
    json_t *doc = tu_load_json(path);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "profiles")), st.nthreads);
    ck_assert_uint_ge(json_array_size(json_object_get(json_object_get(doc, "shared"), "frames")), st.nfuncs);
    json_decref(doc);
    wl_stacks_free(&st);
}
END_TEST

START_TEST(test_folded_parse_rejects_garbage)
{
    FILE *f = tmpfile();
    fputs("a;b 3\nno-count-here\n", f);
    rewind(f);
    uint64_t total;
    size_t lines;
    ck_assert_int_eq(wl_folded_parse(f, &total, &lines), -EINVAL);
    fclose(f);
}
END_TEST

START_TEST(test_agent_keeps_blocking_calls_exact)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_behave"), NULL};
    ck_assert_int_eq(tu_run(argv, 60), 0); /* bare */
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 1000, &st), 0);
    /* the sampler really ran (how many of the 3 ms bursts a CPU-clock timer
     * meets depends on the kernel's tick and the machine's load: seen 9
     * of ~90 ms at 1000 Hz on a loaded machine) */
    ck_assert_uint_gt(st.cpu_samples, 0);
    ck_assert_uint_gt(st.waits, 30);
    wl_stacks_free(&st);
}
END_TEST

/* Seconds of waiting recorded in function name (its own waits and callees'). */
static double func_wait(const wl_stacks *st, const char *name)
{
    const wl_func_stat *f = find_func(st, name);
    return f ? f->total_wait_s : 0;
}

START_TEST(test_agent_wait_times_match_what_the_program_measured)
{
    char outdir[1024], out[1100];
    snprintf(outdir, sizeof(outdir), "%s", tu_tmpdir());
    snprintf(out, sizeof(out), "%s/waitexact.txt", outdir);
    char *argv[] = {(char *)tu_path("tests/targets/agent_waitexact"), out, NULL};
    wl_stacks st;
    ck_assert_int_eq(run_with_agent(argv, 100, &st), 0);
    double sleeps = 0, mixed = 0;
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "sleeps %lf mixed %lf", &sleeps, &mixed), 2);
    fclose(f);
    unlink(out);
    rmdir(outdir);
    ck_assert_msg(sleeps > 0.19 && mixed > 0.29, "program measured %.3f / %.3f s", sleeps, mixed);
    /* every usleep blocks, so each is timed: exact within 10 % */
    double got = func_wait(&st, "agent_sleeps");
    ck_assert_msg(got > 0.9 * sleeps && got < 1.1 * sleeps, "usleep: agent %.4f s, program %.4f s", got,
                  sleeps);
    /* 300 blocking polls among 12000 quick ones at one site: the first
     * block meets a sampled site (weighted), the rest an exactly timed one */
    got = func_wait(&st, "agent_mixed_site");
    ck_assert_msg(got > 0.85 * mixed && got < 1.15 * mixed, "mixed site: agent %.4f s, program %.4f s", got,
                  mixed);
    /* writes to /dev/null never wait */
    ck_assert_msg(func_wait(&st, "agent_quick_writes") < 0.01, "quick writes %.4f s",
                  func_wait(&st, "agent_quick_writes"));
    wl_stacks_free(&st);
}
END_TEST

/* A SIGPROF that comes while the agent itself is inside libunwind on the
 * same thread -- here its first-use set-up, in the first stack a lazy
 * (preloaded) process takes, a wait's -- is dropped, not unwound: an
 * unwind from that handler waited for ever on the set-up's pthread_once,
 * which its own thread was running. */
START_TEST(test_agent_sigprof_inside_its_own_unwind_is_dropped)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_unwind_reentry"), NULL};
    wl_stacks st;
    int rc = run_with_agent(argv, 20, &st);
    ck_assert_msg(rc != 3, "libunwind's set-up made no mmap during the wait: case not staged");
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_ge(st.waits, 1);
    ck_assert_uint_ge(st.dropped, 1); /* the SIGPROF came inside the unwind */
    wl_stacks_free(&st);
}
END_TEST

/* The process's first SIGPROF, while another thread holds the loader's
 * lock (in dlopen, a constructor) and waits for the interrupted thread:
 * the handler must not need that lock. It did when the agent's wrappers
 * that libunwind calls (sigprocmask, pthread_mutex_lock) looked up their
 * next definition with dlsym at first use -- in a lazy image, often that
 * first handler. */
START_TEST(test_agent_first_sigprof_needs_no_loader_lock)
{
    char *argv[] = {(char *)tu_path("tests/targets/agent_first_handler_dlsym"),
                    (char *)tu_path("tests/targets/libagent_hold_loader.so"), NULL};
    wl_stacks st;
    int rc = run_with_agent(argv, 20, &st);
    ck_assert_msg(rc != 4, "the first SIGPROF handler waited for the loader's lock");
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_ge(st.cpu_samples, 1); /* it came while the lock was held */
    wl_stacks_free(&st);
}
END_TEST

START_TEST(test_reader_survives_garbage_files)
{
    const char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof(path), "%s/agent-1-2-3.wls", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("WLPSTK01 this is not a header at all, and then some junk bytes ....", f);
    for (int i = 0; i < 1000; i++)
        fputc(i * 7, f);
    fclose(f);
    wl_stacks st;
    ck_assert_int_eq(wl_stacks_read(dir, &st), 0);
    ck_assert_uint_eq(st.samples, 0);
    ck_assert_uint_gt(st.bad_records, 0);
    wl_stacks_free(&st);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
    ck_assert_int_eq(wl_stacks_read("/nonexistent/wlprof", &st), -ENOENT);
}
END_TEST

/* ---- wlprof profile ---- */

START_TEST(test_cli_profile_writes_stacks)
{
    const char *dir = tu_tmpdir();
    char folded[4096], speed[4096], json[4096];
    snprintf(folded, sizeof(folded), "%s/f.txt", dir);
    snprintf(speed, sizeof(speed), "%s/s.json", dir);
    snprintf(json, sizeof(json), "%s/r.json", dir);
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
    char *argv[] = {(char *)tu_env("WLPROF"), "profile", "--quiet", "--hz", "200", "--folded", folded,
                    "--speedscope", speed, "--json", json, "--",
                    (char *)tu_path("tests/targets/agent_mixed"), "15", NULL};
    ck_assert_int_eq(tu_run(argv, 60), 0);
    json_t *r = tu_load_json(json);
    ck_assert_str_eq(tu_str(r, "schema"), WL_REPORT_SCHEMA);
    json_t *funcs = json_object_get(r, "functions");
    ck_assert(json_array_size(funcs) > 0);
    int found = 0;
    for (size_t i = 0; i < json_array_size(funcs); i++) {
        json_t *fn = json_array_get(funcs, i);
        if (strcmp(json_string_value(json_object_get(fn, "name")), "agent_compute") == 0) {
            found = 1;
            ck_assert(json_number_value(json_object_get(json_object_get(fn, "self"), "user_pct")) > 20);
        }
    }
    ck_assert(found);
    FILE *f = fopen(folded, "r");
    ck_assert_ptr_nonnull(f);
    uint64_t total;
    size_t lines;
    ck_assert_int_eq(wl_folded_parse(f, &total, &lines), 0);
    fclose(f);
    ck_assert_uint_eq(total, (uint64_t)tu_num(r, "stacks.samples"));
    json_decref(r);
    json_t *s = tu_load_json(speed);
    ck_assert(json_array_size(json_object_get(s, "profiles")) >= 1);
    json_decref(s);
}
END_TEST

START_TEST(test_cli_no_stacks_and_static_targets)
{
    const char *dir = tu_tmpdir();
    char json[4096];
    snprintf(json, sizeof(json), "%s/r.json", dir);
    char *argv[] = {(char *)tu_env("WLPROF"), "profile", "--quiet", "--no-stacks", "--json", json, "--",
                    (char *)tu_path("tests/targets/agent_mixed"), "3", NULL};
    ck_assert_int_eq(tu_run(argv, 60), 0);
    json_t *r = tu_load_json(json);
    ck_assert_ptr_null(json_object_get(r, "functions"));
    json_decref(r);

    /* statically linked: a one-line notice, then a normal /proc report */
    char err_path[4096];
    snprintf(err_path, sizeof(err_path), "%s/err.txt", dir);
    char cmd[16384];
    snprintf(cmd, sizeof(cmd), "'%s' profile --quiet --json '%s' -- '%s' 2>'%s'", tu_env("WLPROF"), json,
             tu_path("tests/targets/agent_static"), err_path);
    ck_assert_int_eq(system(cmd), 0);
    FILE *f = fopen(err_path, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_msg(strstr(line, "statically linked"), "%s", line);
    ck_assert_ptr_null(fgets(line, sizeof(line), f));
    fclose(f);
    r = tu_load_json(json);
    ck_assert(tu_num(r, "time.user_s") > 0);
    json_decref(r);
}
END_TEST

/* ---- in-process ---- */

static volatile double sink;

__attribute__((noinline)) static void region_compute(void)
{
    sink = burn_cpu_for(0.3);
}

__attribute__((noinline)) static void region_sleep(void)
{
    for (int i = 0; i < 10; i++)
        usleep(20000);
}

START_TEST(test_inprocess_region)
{
    wl_agent_region_opts o = {.hz = 250};
    ck_assert_int_eq(wl_agent_region_start(&o), 0);
    ck_assert_int_eq(wl_agent_region_start(&o), -EBUSY);
    region_compute();
    region_sleep();
    wl_stacks st;
    ck_assert_int_eq(wl_agent_region_stop(&st), 0);
    const wl_func_stat *c = find_func(&st, "region_compute");
    const wl_func_stat *s = find_func(&st, "region_sleep");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    ck_assert(c->self_user_s + c->self_sys_s >= 0.9 * (st.user_s + st.sys_s) - 0.02);
    ck_assert(s->total_wait_s >= 0.9 * st.wait_s);
    ck_assert(st.wait_s > 0.15);
    wl_stacks_free(&st);
    ck_assert_int_eq(wl_agent_region_stop(&st), -EINVAL);
    /* nothing recorded after stop */
    ck_assert_int_eq(wl_agent_active(), 0);
}
END_TEST

/* The old names of the agent's control functions still work, for one
 * release, and are the same functions underneath. */
START_TEST(test_deprecated_agent_names_still_work)
{
    const char *dir = tu_tmpdir();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    ck_assert_int_eq(wlprof_agent_start(dir, 100, 0), 0);
    ck_assert_int_eq(wlprof_agent_active(), 1);
    ck_assert_int_eq(wl_agent_active(), 1);
    ck_assert_int_eq(wl_agent_start(dir, 100, 0), -EBUSY);
    ck_assert_ptr_nonnull(wlprof_agent_file());
    ck_assert_ptr_eq(wlprof_agent_file(), wl_agent_file());
    ck_assert(strncmp(wl_agent_file(), dir, strlen(dir)) == 0);
    ck_assert_int_eq(wlprof_agent_stop(), 0);
    ck_assert_int_eq(wlprof_agent_active(), 0);
    ck_assert_int_eq(wlprof_agent_stop(), -EINVAL);
    /* the region API's old names */
    wlprof_profile_opts o = {.hz = 100};
    ck_assert_int_eq(wlprof_profile_start(&o), 0);
    ck_assert_int_eq(wl_agent_region_start(NULL), -EBUSY);
    wl_stacks st;
    ck_assert_int_eq(wlprof_profile_stop(&st), 0);
    wl_stacks_free(&st);
#pragma GCC diagnostic pop
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
}
END_TEST

static int count_agent_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, WL_WIRE_FILE_PREFIX, strlen(WL_WIRE_FILE_PREFIX)) == 0;
    closedir(d);
    return n;
}

/* sh execs /bin/true: two images, neither runs long enough for a sample
 * (the first comes after >= 5 ms of CPU at 100 Hz) nor makes a blocking
 * call, so neither may cost a file -- both are in the tally, and counted. */
START_TEST(test_images_without_records_leave_no_file)
{
    const char *dir = tu_tmpdir();
    setenv("LD_PRELOAD", tu_path("libwlprof-agent.so"), 1);
    setenv("WLPROF_AGENT_DIR", dir, 1);
    setenv("WLPROF_AGENT_HZ", "100", 1);
    char *argv[] = {"/bin/sh", "-c", "exec /bin/true", NULL};
    int rc = tu_run(argv, 60);
    unsetenv("LD_PRELOAD");
    unsetenv("WLPROF_AGENT_DIR");
    unsetenv("WLPROF_AGENT_HZ");
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(count_agent_files(dir), 0);
    char tally[2048];
    snprintf(tally, sizeof(tally), "%s/" WL_WIRE_TALLY_FILE, dir);
    FILE *f = fopen(tally, "rb");
    ck_assert_ptr_nonnull(f);
    wl_wire_empty e[3];
    ck_assert_uint_eq(fread(e, sizeof(e[0]), 3, f), 2);
    fclose(f);
    ck_assert_int_eq(e[0].pid, e[1].pid); /* exec keeps the pid */
    ck_assert(e[1].start_mono_ns > e[0].start_mono_ns);
    wl_stacks st;
    ck_assert_int_eq(wl_stacks_read(dir, &st), 0);
    ck_assert_uint_eq(st.processes, 2);
    ck_assert_uint_eq(st.samples, 0);
    ck_assert_double_eq_tol(st.t0_mono_s, (double)e[0].start_mono_ns * 1e-9, 1e-6);
    wl_stacks_free(&st);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0); /* the tally goes too */
}
END_TEST

/* An image killed before it recorded anything (no destructor, no final
 * flush) is still counted. */
START_TEST(test_killed_image_without_records_is_counted)
{
    const char *dir = tu_tmpdir();
    setenv("LD_PRELOAD", tu_path("libwlprof-agent.so"), 1);
    setenv("WLPROF_AGENT_DIR", dir, 1);
    char *argv[] = {"/bin/sh", "-c", "kill -KILL $$", NULL};
    int rc = tu_run(argv, 60);
    unsetenv("LD_PRELOAD");
    unsetenv("WLPROF_AGENT_DIR");
    ck_assert_int_ne(rc, 0);
    ck_assert_int_eq(count_agent_files(dir), 0);
    wl_stacks st;
    ck_assert_int_eq(wl_stacks_read(dir, &st), 0);
    ck_assert_uint_eq(st.processes, 1);
    wl_stacks_free(&st);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
}
END_TEST

/* An image both in the tally and with a file (it recorded something)
 * counts once; the tally's others count. */
START_TEST(test_tally_and_file_of_one_image_count_once)
{
    const char *dir = tu_tmpdir();
    char path[2048];
    snprintf(path, sizeof(path), "%s/" WL_WIRE_FILE_PREFIX "123-1-0" WL_WIRE_FILE_SUFFIX, dir);
    wl_wire_header h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, WL_WIRE_MAGIC, 8);
    h.version = WL_WIRE_VERSION;
    h.pid = 123;
    h.hz = 100;
    h.start_mono_ns = 5000000000ull;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(&h, sizeof(h), 1, f), 1);
    fclose(f);
    snprintf(path, sizeof(path), "%s/" WL_WIRE_TALLY_FILE, dir);
    wl_wire_empty e[2] = {{.pid = 123, .start_mono_ns = 5000000000ull},
                          {.pid = 124, .start_mono_ns = 4000000000ull}};
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(e, sizeof(e[0]), 2, f), 2);
    fclose(f);
    wl_stacks st;
    ck_assert_int_eq(wl_stacks_read(dir, &st), 0);
    ck_assert_uint_eq(st.processes, 2);
    ck_assert_double_eq_tol(st.t0_mono_s, 4.0, 1e-9);
    ck_assert_uint_eq(st.bad_records, 0);
    wl_stacks_free(&st);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
}
END_TEST

static Suite *agent_suite(void)
{
    Suite *s = suite_create("agent");
    TCase *tc = tcase_create("agent");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_agent_attributes_cpu_to_computing_and_waits_to_blocking);
    tcase_add_test(tc, test_agent_sees_all_four_threads);
    tcase_add_test(tc, test_agent_burst_after_quiet_is_not_dropped);
    tcase_add_test(tc, test_agent_follows_fork_and_exec);
    tcase_add_test(tc, test_folded_output_round_trips);
    tcase_add_test(tc, test_folded_parse_rejects_garbage);
    tcase_add_test(tc, test_agent_keeps_blocking_calls_exact);
    tcase_add_test(tc, test_agent_wait_times_match_what_the_program_measured);
    tcase_add_test(tc, test_agent_sigprof_inside_its_own_unwind_is_dropped);
    tcase_add_test(tc, test_agent_first_sigprof_needs_no_loader_lock);
    tcase_add_test(tc, test_reader_survives_garbage_files);
    tcase_add_test(tc, test_cli_profile_writes_stacks);
    tcase_add_test(tc, test_cli_no_stacks_and_static_targets);
    tcase_add_test(tc, test_inprocess_region);
    tcase_add_test(tc, test_deprecated_agent_names_still_work);
    tcase_add_test(tc, test_images_without_records_leave_no_file);
    tcase_add_test(tc, test_tally_and_file_of_one_image_count_once);
    tcase_add_test(tc, test_killed_image_without_records_is_counted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(agent_suite());
}
