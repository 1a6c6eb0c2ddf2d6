/*
 * test_python.c -- Python programs under `wlprof profile`, end to end, with
 * Debian's CPython (/usr/bin/python3; the suite skips without it):
 *  - pure-Python primes in one process: cpu_intensive_task, with its file
 *    and a line inside it, is the top self-time function;
 *  - sleeping in one function and computing in another: each function is
 *    on its side of the split (waiting / CPU);
 *  - four GIL-bound threads: at least half of the time their threads are
 *    blocked is the "gil" wait kind (the /proc sampler), and the agent's
 *    off-CPU stacks name the GIL wait under the Python function; a wait
 *    for the program's own threading.Lock stays "lock";
 *  - multiprocessing children (fork, spawn, forkserver) and a
 *    ProcessPoolExecutor worker get Python frames too;
 *  - an unsupported Python version gives one notice and native stacks.
 * Also, without any process: the location-table decoder on a code object
 * of the running interpreter's own format.
 */
#include <check.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testutil.h"
#include "pyreader.h"
#include "wire.h"
#include "wlprof/stacks.h"
#include "wlprof/profile.h"

#define PYTHON "/usr/bin/python3"

static const char *script(const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s/tests/targets/%s", tu_env("WL_SOURCE_DIR"), name);
    return b;
}

static char last_folded[4300]; /* --folded output of the last run */
static char last_stderr[4300]; /* its stderr, when the caller gave no path */

/* The start of the last run's stderr, for failure messages. */
static const char *stderr_line(void)
{
    static char text[1024];
    text[0] = '\0';
    FILE *f = fopen(last_stderr, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

/* Runs `wlprof profile --hz 200 -o JSON --folded F -- python script arg`
 * with the target's stderr in errpath (when not NULL); returns the report. */
static json_t *profile_with(const char *python, const char *name, const char *arg,
                            const char *errpath)
{
    char json[4300], tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", tu_tmpdir());
    snprintf(json, sizeof(json), "%s/report.json", tmp);
    snprintf(last_folded, sizeof(last_folded), "%s/out.folded", tmp);
    char *argv[] = {(char *)tu_env("WLPROF"),
                    "profile",
                    "--quiet",
                    "--hz",
                    "200",
                    "-o",
                    json,
                    "--folded",
                    last_folded,
                    "--",
                    (char *)python,
                    (char *)script(name),
                    (char *)arg,
                    NULL};
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        char own[4400];
        snprintf(own, sizeof(own), "%s/stderr", tmp);
        int err = open(errpath ? errpath : own, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(null, 0);
        dup2(null, 1);
        dup2(err, 2);
        setenv("TMPDIR", tmp, 1); /* the agent's files: private, as /tmp is shared */
        execv(argv[0], argv);
        _exit(127);
    }
    ck_assert_int_eq(tu_wait(pid, 120), 0);
    snprintf(last_stderr, sizeof(last_stderr), "%s/stderr", tmp);
    return tu_load_json(json);
}

static json_t *profile_python(const char *name, const char *arg, const char *errpath)
{
    return profile_with(PYTHON, name, arg, errpath);
}

static double num(const json_t *o, const char *dotted)
{
    return json_number_value(tu_get(o, dotted));
}

static const json_t *find_function(const json_t *r, const char *name)
{
    const json_t *funcs = json_object_get(r, "functions");
    for (size_t i = 0; i < json_array_size(funcs); i++) {
        const json_t *f = json_array_get(funcs, i);
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return f;
    }
    return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Line numbers of "def NAME" in the script and of the next top-level line:
 * the function's body is in between. */
static void function_lines(const char *name, const char *func, int *def, int *end)
{
    FILE *f = fopen(script(name), "r");
    ck_assert_ptr_nonnull(f);
    char line[512], want[128];
    snprintf(want, sizeof(want), "def %s(", func);
    *def = *end = 0;
    for (int n = 1; fgets(line, sizeof(line), f); n++) {
        if (!*def && strncmp(line, want, strlen(want)) == 0)
            *def = n;
        else if (*def && !*end && line[0] != ' ' && line[0] != '\n')
            *end = n;
    }
    fclose(f);
    ck_assert_int_gt(*def, 0);
    if (!*end)
        *end = 1 << 30;
}

static double self_cpu(const json_t *f)
{
    return num(f, "self.user_s") + num(f, "self.sys_s");
}

static double total_cpu(const json_t *f)
{
    return num(f, "total.user_s") + num(f, "total.sys_s");
}

/* The primes check on the report of one interpreter's run. */
static void check_primes(const char *python)
{
    json_t *r = profile_with(python, "py_primes.py", "0.6", NULL);
    const json_t *funcs = json_object_get(r, "functions");
    const json_t *top = NULL;
    for (size_t i = 0; i < json_array_size(funcs); i++) {
        const json_t *f = json_array_get(funcs, i);
        if (!top || self_cpu(f) > self_cpu(top))
            top = f;
    }
    ck_assert_ptr_nonnull(top);
    ck_assert_msg(
        strcmp(json_string_value(json_object_get(top, "name")), "cpu_intensive_task") == 0,
        "%s: top self-time function %s", python, json_string_value(json_object_get(top, "name")));
    ck_assert_str_eq(json_string_value(json_object_get(top, "module")), "py_primes.py");
    const char *file = json_string_value(json_object_get(top, "file"));
    ck_assert_msg(ends_with(file, "/tests/targets/py_primes.py"), "file %s",
                  file ? file : "(null)");
    int def, end;
    function_lines("py_primes.py", "cpu_intensive_task", &def, &end);
    int line = (int)json_integer_value(json_object_get(top, "line"));
    ck_assert_msg(line > def && line < end, "line %d outside the body (%d, %d)", line, def, end);
    /* most of the CPU the agent saw is in it, by its own CPU clock */
    double cpu = num(r, "stacks.user_s") + num(r, "stacks.sys_s");
    ck_assert_msg(self_cpu(top) >= 0.6 * cpu, "%.3f of %.3f s", self_cpu(top), cpu);
    /* the interpreter's evaluation loop is replaced by the Python frames */
    const json_t *eval = find_function(r, "_PyEval_EvalFrameDefault");
    ck_assert_msg(!eval || self_cpu(eval) < 0.1 * cpu, "%s: eval loop keeps %.3f s", python,
                  eval ? self_cpu(eval) : 0);
    /* folded: Python frames with file and line, under <module> */
    FILE *f = fopen(last_folded, "r");
    ck_assert_ptr_nonnull(f);
    char buf[8192];
    int named = 0;
    while (fgets(buf, sizeof(buf), f))
        named |= strstr(buf, ";<module> (py_primes.py:") &&
                 strstr(buf, ";cpu_intensive_task (py_primes.py:");
    fclose(f);
    ck_assert_msg(named, "%s: no folded stack names cpu_intensive_task (py_primes.py:N)", python);
    json_decref(r);
}

START_TEST(test_python_primes_names_the_function_with_file_and_line)
{
    check_primes(PYTHON);
}
END_TEST

/* Other CPython builds where present: pyenv's 3.11 (libpython shared, PIE),
 * 3.12 and 3.13 (other layouts). */
START_TEST(test_python_other_versions_name_the_function)
{
    const char *home = getenv("HOME");
    char pattern[4096];
    snprintf(pattern, sizeof(pattern), "%s/.pyenv/versions/3.1[123]*/bin/python3",
             home ? home : "/root");
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) {
        fprintf(stderr, "note: no other CPython 3.11-3.13 under %s\n", pattern);
        return;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        check_primes(g.gl_pathv[i]);
    globfree(&g);
}
END_TEST

START_TEST(test_python_sleep_and_compute_functions_on_their_sides)
{
    json_t *r = profile_python("py_sleep_compute.py", "0.5", NULL);
    const json_t *w = find_function(r, "wait_for_data");
    const json_t *c = find_function(r, "process_data");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(c);
    double wait = num(r, "stacks.wait_s");
    double cpu = num(r, "stacks.user_s") + num(r, "stacks.sys_s");
    ck_assert_msg(num(w, "total.wait_s") >= 0.4 && num(w, "total.wait_s") >= 0.7 * wait,
                  "wait_for_data %.3f of %.3f s", num(w, "total.wait_s"), wait);
    ck_assert_msg(total_cpu(w) < 0.05, "wait_for_data computes %.3f s", total_cpu(w));
    ck_assert_msg(total_cpu(c) >= 0.35 && total_cpu(c) >= 0.6 * cpu, "process_data %.3f of %.3f s",
                  total_cpu(c), cpu);
    ck_assert_msg(num(c, "total.wait_s") < 0.05, "process_data waits %.3f s",
                  num(c, "total.wait_s"));
    /* The module body only defines two functions: CPU there is samples of
     * process_data whose code object was described after the interpreter
     * freed it (the final flush; agent/pyagent.c, "At exit"): 8-51 ms in
     * 12 runs before the fix, 0 in 12 after. */
    const json_t *m = find_function(r, "<module>");
    double module_self = m ? num(m, "self.user_s") + num(m, "self.sys_s") : 0;
    ck_assert_msg(module_self < 0.005, "<module> computes %.3f s itself", module_self);
    ck_assert(ends_with(json_string_value(json_object_get(w, "file")), "py_sleep_compute.py"));
    ck_assert(ends_with(json_string_value(json_object_get(c, "file")), "py_sleep_compute.py"));
    json_decref(r);
}
END_TEST

/* Seconds of the threads' own wait reasons of kind k, over threads other
 * than the main one (tid == pid). */
static double worker_wait_s(const json_t *r, const char *kind, double *blocked)
{
    const json_t *threads = json_object_get(r, "threads");
    double s = 0;
    *blocked = 0;
    for (size_t i = 0; i < json_array_size(threads); i++) {
        const json_t *t = json_array_get(threads, i);
        if (json_integer_value(json_object_get(t, "tid")) ==
            json_integer_value(json_object_get(t, "pid")))
            continue;
        *blocked += num(t, "waiting_s");
        const json_t *ws = json_object_get(t, "waits");
        for (size_t j = 0; j < json_array_size(ws); j++) {
            const json_t *w = json_array_get(ws, j);
            if (strcmp(json_string_value(json_object_get(w, "kind")), kind) == 0)
                s += num(w, "seconds");
        }
    }
    return s;
}

START_TEST(test_python_gil_threads_wait_for_the_gil)
{
    json_t *r = profile_python("py_gil_threads.py", "0.3", NULL);
    double blocked;
    double gil = worker_wait_s(r, "gil", &blocked);
    ck_assert_msg(blocked > 0.1, "workers blocked %.3f s", blocked);
    ck_assert_msg(gil >= 0.5 * blocked, "gil %.3f of %.3f s blocked", gil, blocked);
    ck_assert_double_ge(num(r, "waits.threads_by_kind.gil"), gil * 0.99);
    /* the agent: GIL waits under the Python function that wanted it back */
    const json_t *top = json_object_get(json_object_get(r, "stacks"), "top");
    double gil_stacks = 0;
    for (size_t i = 0; i < json_array_size(top); i++) {
        const json_t *s = json_array_get(top, i);
        const char *call = json_string_value(json_object_get(s, "call"));
        if (!call || strcmp(call, "gil") != 0)
            continue;
        const json_t *fr = json_object_get(s, "frames");
        for (size_t k = 0; k < json_array_size(fr); k++)
            if (strcmp(json_string_value(json_object_get(json_array_get(fr, k), "func")),
                       "count_primes") == 0) {
                gil_stacks += num(s, "wait_s");
                break;
            }
    }
    ck_assert_msg(gil_stacks >= 0.1, "GIL waits under count_primes: %.3f s", gil_stacks);
    const json_t *cp = find_function(r, "count_primes");
    ck_assert_ptr_nonnull(cp);
    ck_assert_msg(total_cpu(cp) >= 0.6, "count_primes %.3f s CPU", total_cpu(cp));
    json_decref(r);
}
END_TEST

START_TEST(test_python_lock_wait_is_not_the_gil)
{
    json_t *r = profile_python("py_lock_wait.py", "0.6", NULL);
    const json_t *threads = json_object_get(r, "threads");
    double lock = 0, gil = 0;
    for (size_t i = 0; i < json_array_size(threads); i++) {
        const json_t *t = json_array_get(threads, i);
        if (json_integer_value(json_object_get(t, "tid")) !=
            json_integer_value(json_object_get(t, "pid")))
            continue; /* the main thread waits for the lock */
        const json_t *ws = json_object_get(t, "waits");
        for (size_t j = 0; j < json_array_size(ws); j++) {
            const json_t *w = json_array_get(ws, j);
            const char *k = json_string_value(json_object_get(w, "kind"));
            if (strcmp(k, "lock") == 0)
                lock += num(w, "seconds");
            if (strcmp(k, "gil") == 0)
                gil += num(w, "seconds");
        }
    }
    ck_assert_msg(lock >= 0.3, "main thread's lock wait %.3f s", lock);
    ck_assert_msg(gil < 0.1 * lock, "gil %.3f s vs lock %.3f s", gil, lock);
    const json_t *f = find_function(r, "wait_for_lock");
    ck_assert_ptr_nonnull(f);
    ck_assert_msg(num(f, "total.wait_s") >= 0.3, "wait_for_lock waits %.3f s",
                  num(f, "total.wait_s"));
    json_decref(r);
}
END_TEST

static const char *const child_methods[] = {"fork", "spawn", "forkserver", "pool"};

START_TEST(test_python_child_processes_get_python_frames)
{
    json_t *r = profile_python("py_mp_child.py", child_methods[_i], NULL);
    ck_assert_msg(json_integer_value(tu_get(r, "stacks.processes")) >= 2,
                  "%s: %d processes recorded (pid %d, %zu seen by /proc); stderr: %s",
                  child_methods[_i], (int)json_integer_value(tu_get(r, "stacks.processes")),
                  (int)json_integer_value(tu_get(r, "target.pid")),
                  json_array_size(json_object_get(r, "processes")), stderr_line());
    const json_t *f = find_function(r, "child_compute");
    ck_assert_msg(f != NULL, "%s: child_compute not named", child_methods[_i]);
    ck_assert_msg(total_cpu(f) >= 0.2, "%s: child_compute %.3f s", child_methods[_i], total_cpu(f));
    /* it ran in another process than the script's own */
    int pid = (int)json_integer_value(tu_get(r, "target.pid"));
    const json_t *top = json_object_get(json_object_get(r, "stacks"), "top");
    int in_child = 0;
    for (size_t i = 0; i < json_array_size(top) && !in_child; i++) {
        const json_t *s = json_array_get(top, i);
        const json_t *fr = json_object_get(s, "frames");
        for (size_t k = 0; k < json_array_size(fr); k++)
            if (strcmp(json_string_value(json_object_get(json_array_get(fr, k), "func")),
                       "child_compute") == 0 &&
                json_integer_value(json_object_get(s, "pid")) != pid)
                in_child = 1;
    }
    ck_assert(in_child);
    json_decref(r);
}
END_TEST

/* Profiles py_primes.py with the interpreter's version overridden to
 * hexversion (WLPROF_AGENT_PY_VERSION), asserts the agent's stderr holds
 * exactly one line containing notice, and returns the report. */
static json_t *profile_claiming_version(const char *hexversion, const char *notice)
{
    char err[4200];
    snprintf(err, sizeof(err), "%s/stderr", tu_tmpdir());
    setenv("WLPROF_AGENT_PY_VERSION", hexversion, 1);
    json_t *r = profile_python("py_primes.py", "0.3", err);
    unsetenv("WLPROF_AGENT_PY_VERSION");
    FILE *f = fopen(err, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int notices = 0;
    while (fgets(line, sizeof(line), f))
        notices += strstr(line, notice) != NULL;
    fclose(f);
    ck_assert_int_eq(notices, 1);
    return r;
}

/* A Python claiming 3.13 whose memory is not 3.13's (Debian's 3.11 with
 * the version overridden): the 3.13 layout's own statement of itself
 * (_Py_DebugOffsets) is missing, so the reader refuses instead of walking
 * garbage. */
START_TEST(test_python_layout_checked_against_debug_offsets)
{
    json_t *r = profile_claiming_version(
        "0x030d00f0", "wlprof-agent: Python 3.13's interpreter layout is not the one known");
    ck_assert_ptr_null(find_function(r, "cpu_intensive_task"));
    ck_assert_ptr_nonnull(find_function(r, "_PyEval_EvalFrameDefault"));
    json_decref(r);
}
END_TEST

START_TEST(test_python_unknown_version_notice_and_native_stacks)
{
    json_t *r =
        profile_claiming_version("0x030f00f0", "wlprof-agent: Python 3.15 is not supported");
    ck_assert_ptr_null(find_function(r, "cpu_intensive_task"));
    const json_t *eval = find_function(r, "_PyEval_EvalFrameDefault");
    ck_assert_ptr_nonnull(eval);
    ck_assert(self_cpu(eval) > 0);
    json_decref(r);
}
END_TEST

/* ---- no process ---- */

START_TEST(test_python_line_table_decoding)
{
    /* def f():            line 10 (firstlineno)
     *     a = 1           line 11: 2 code units, short form, same line +1
     *     b = 2           line 12
     * RESUME (line 10, no column) then two one-line entries (code 11: +1). */
    const uint8_t tab[] = {
        0x80 | (13 << 3) | 0, 0x00,          /* 1 unit, no-column form, delta 0 */
        0x80 | (11 << 3) | 1, 4,    9,       /* 2 units, one-line form, +1 */
        0x80 | (11 << 3) | 1, 4,    9,       /* 2 units, +1 */
        0x80 | (15 << 3) | 0,                /* 1 unit, no location */
        0x80 | (14 << 3) | 0, 0x05, 0, 1, 2, /* long form: svarint 5 = -2 */
    };
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 0), 10);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 1), 11);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 2), 11);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 3), 12);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 5), -1);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 6), 10);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, 99), -1);
    ck_assert_int_eq(wl_py_line(tab, sizeof(tab), 10, -1), 10);
}
END_TEST

START_TEST(test_python_probe_finds_no_python_in_a_c_program)
{
    wl_py_target t;
    ck_assert_int_eq(wl_py_probe((int)getpid(), 0, &t), -ENOENT);
}
END_TEST

/* An agent file whose Python code object has a name that is not valid
 * UTF-8 (read from a freed object, say): read back and made JSON, with the
 * Python frame merged, the bad bytes replaced. */
START_TEST(test_python_frames_from_a_file_bad_names_kept_valid)
{
    const char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof(path), "%s/" WL_WIRE_FILE_PREFIX "1-1-0" WL_WIRE_FILE_SUFFIX, dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    wl_wire_header h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, WL_WIRE_MAGIC, 8);
    h.version = WL_WIRE_VERSION;
    h.pid = 1;
    h.hz = 100;
    fwrite(&h, sizeof(h), 1, f);
    unsigned char mods[16] = {0};
    wl_wire_rec mh = {WL_REC_MODULES, 0, 16};
    memcpy(mods, &mh, sizeof(mh));
    fwrite(mods, 16, 1, f);
    const char name[] = "bad\xff\xfe\xc3name", file[] = "/x/y.py";
    const uint8_t lt[] = {0x80 | (13 << 3) | 7, 0x02}; /* 8 units on firstlineno + 1 */
    unsigned char code[128] = {0};
    wl_wire_pycode *c = (wl_wire_pycode *)code;
    size_t csize = (sizeof(*c) + strlen(name) + strlen(file) + sizeof(lt) + 7) & ~(size_t)7;
    c->h = (wl_wire_rec){WL_REC_PYCODE, 0, (uint32_t)csize};
    c->code = 0x1000;
    c->firstlineno = 41;
    c->valid = 1;
    c->qualname_len = (uint16_t)strlen(name);
    c->filename_len = (uint16_t)strlen(file);
    c->linetable_len = sizeof(lt);
    memcpy(code + sizeof(*c), name, strlen(name));
    memcpy(code + sizeof(*c) + strlen(name), file, strlen(file));
    memcpy(code + sizeof(*c) + strlen(name) + strlen(file), lt, sizeof(lt));
    fwrite(code, csize, 1, f);
    wl_wire_cpu cpu;
    memset(&cpu, 0, sizeof(cpu));
    cpu.h = (wl_wire_rec){WL_REC_CPU, 0, sizeof(cpu)};
    cpu.tid = 1;
    cpu.cpu_ns = cpu.user_ns = 10000000;
    fwrite(&cpu, sizeof(cpu), 1, f);
    struct {
        wl_wire_pyframes h;
        wl_wire_pyframe f[2];
    } py;
    memset(&py, 0, sizeof(py));
    py.h.h = (wl_wire_rec){WL_REC_PYFRAMES, 2, sizeof(py)};
    py.h.tid = 1;
    py.f[0] = (wl_wire_pyframe){0x1000, 3, 0};
    py.f[1] = (wl_wire_pyframe){0, 0, 1};
    fwrite(&py, sizeof(py), 1, f);
    fclose(f);
    wl_stacks st;
    ck_assert_int_eq(wl_stacks_read(dir, &st), 0);
    ck_assert_uint_eq(st.bad_records, 0);
    ck_assert_uint_eq(st.nfuncs, 1);
    ck_assert_str_eq(st.funcs[0].name, "bad???name");
    ck_assert_str_eq(st.funcs[0].module, "y.py");
    ck_assert_int_eq(st.funcs[0].line, 42);
    json_t *j = wl_stacks_to_json(&st, 10, 10);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    wl_stacks_free(&st);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
}
END_TEST

/* The reader from outside (what `profile --pid` uses): a Python child
 * sleeping in wait_for_data is read through process_vm_readv. */
START_TEST(test_python_reader_reads_another_process)
{
    char *argv[] = {PYTHON, (char *)script("py_sleep_compute.py"), "30", NULL};
    pid_t pid = tu_spawn(argv, -1);
    /* the event: the child's main thread sleeping in clock_nanosleep */
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    double end = tu_now() + 60;
    int sleeping = 0;
    while (!sleeping && tu_now() < end) {
        FILE *f = fopen(path, "r");
        if (f) {
            sleeping = fgets(buf, sizeof(buf), f) && atol(buf) == SYS_clock_nanosleep;
            fclose(f);
        }
        if (!sleeping)
            usleep(10000);
    }
    ck_assert_msg(sleeping, "child never slept");
    wl_py_target t;
    ck_assert_int_eq(wl_py_probe((int)pid, 0, &t), 0);
    ck_assert_uint_eq(t.version >> 16, 0x030b);
    ck_assert(t.gil_hi > t.gil_lo);
    uint64_t ts = wl_py_find_thread(&t, (int)pid, 0);
    ck_assert(ts != 0);
    wl_py_frame fr[64];
    int n = wl_py_walk(&t, ts, fr, 64);
    static uint8_t lt[65536];
    const char *want[] = {"wait_for_data", "<module>"};
    int k = 0;
    for (int i = 0; i < n && k < 2; i++) {
        if (!fr[i].code)
            continue;
        wl_py_code c;
        ck_assert_int_eq(wl_py_code_read(&t, fr[i].code, lt, sizeof(lt), &c), 0);
        ck_assert(c.valid);
        ck_assert_str_eq(c.qualname, want[k]);
        ck_assert(ends_with(c.filename, "py_sleep_compute.py"));
        int line = wl_py_line(c.linetable, c.linetable_len, c.firstlineno, fr[i].lasti);
        ck_assert_int_gt(line, c.firstlineno - (k == 1));
        k++;
    }
    kill(pid, SIGKILL);
    tu_wait(pid, 10);
    ck_assert_int_eq(k, 2);
    ck_assert(fr[n - 1].flags & WL_PY_SEP); /* the outermost evaluation loop ends the walk */
}
END_TEST

static Suite *python_suite(void)
{
    Suite *s = suite_create("python");
    TCase *e2e = tcase_create("end-to-end");
    tcase_set_timeout(e2e, 240);
    tcase_add_test(e2e, test_python_primes_names_the_function_with_file_and_line);
    tcase_add_test(e2e, test_python_other_versions_name_the_function);
    tcase_add_test(e2e, test_python_sleep_and_compute_functions_on_their_sides);
    tcase_add_test(e2e, test_python_gil_threads_wait_for_the_gil);
    tcase_add_test(e2e, test_python_lock_wait_is_not_the_gil);
    tcase_add_loop_test(e2e, test_python_child_processes_get_python_frames, 0,
                        (int)(sizeof(child_methods) / sizeof(child_methods[0])));
    tcase_add_test(e2e, test_python_unknown_version_notice_and_native_stacks);
    tcase_add_test(e2e, test_python_layout_checked_against_debug_offsets);
    suite_add_tcase(s, e2e);
    TCase *unit = tcase_create("reader");
    tcase_add_test(unit, test_python_line_table_decoding);
    tcase_add_test(unit, test_python_probe_finds_no_python_in_a_c_program);
    tcase_add_test(unit, test_python_frames_from_a_file_bad_names_kept_valid);
    tcase_add_test(e2e, test_python_reader_reads_another_process);
    suite_add_tcase(s, unit);
    return s;
}

int main(void)
{
    if (access(PYTHON, X_OK) != 0) {
        printf("SKIP: %s is not installed\n", PYTHON);
        return 77;
    }
    return tu_run_suite(python_suite());
}
