/*
 * frames.c -- which stack frames are runtime plumbing, not the user's code.
 *
 * Every stack of every program starts in the same few frames (_start,
 * __libc_start_main, start_thread, clone3) and, in an interpreter, passes
 * through its eval loop and call machinery. Inclusive time piles up there,
 * so they would head a table sorted by total time and be named as "the
 * function" by advice that takes the first frame it finds. Python functions
 * themselves (frames whose file is a .py) are never runtime frames.
 */
#include <string.h>

#include "wlprof/profile_model.h"

static const char *const runtime_exact[] = {
    "_start", "__libc_start_main", "__libc_start_call_main", "__libc_start_main_impl",
    "start_thread", "clone", "clone3", "__clone", "__clone3", "__clone_internal",
    /* libuv/Node and V8's start-up and loop plumbing */
    "uv_run", "uv__run_timers", "uv__io_poll", "uv__work_done", "uv__async_io",
    "uv__worker",
};

/* Prefixes of CPython's interpreter: the eval loop, calls, module and
 * run machinery (Py_RunMain, pymain_run_python, _PyEval_EvalFrameDefault,
 * _PyObject_Vectorcall...). */
static const char *const runtime_prefix[] = {
    "_PyEval_", "PyEval_", "_PyObject_", "PyObject_", "_PyFunction_", "_Py_", "Py_",
    "pymain_", "_PyRun_", "PyRun_", "run_mod", "run_eval_code_obj", "pyrun_",
    "method_vectorcall", "cfunction_", "_PyCFunction", "slot_tp_", "vectorcall_",
    "thread_run", "t_bootstrap", "pythread_wrapper",
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool wl_is_runtime_frame(const char *func, const char *module)
{
    if (!func || !*func)
        return true;
    if (module && ends_with(module, ".py"))
        return false;
    /* Anything the interpreter binary or libpython itself runs: its eval
     * loop, its C API, its static helpers (the user's code there is the
     * Python frames above them). */
    if (module && (strncmp(module, "python", 6) == 0 || strncmp(module, "libpython", 9) == 0))
        return true;
    for (size_t i = 0; i < sizeof(runtime_exact) / sizeof(runtime_exact[0]); i++)
        if (strcmp(func, runtime_exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(runtime_prefix) / sizeof(runtime_prefix[0]); i++)
        if (strncmp(func, runtime_prefix[i], strlen(runtime_prefix[i])) == 0)
            return true;
    /* An address the symboliser could not name inside the interpreter
     * ("python3.11+0x5fe545", "libpython3.11.so.1.0+0x..."): its static
     * helpers. */
    if ((strncmp(func, "python", 6) == 0 || strncmp(func, "libpython", 9) == 0) &&
        strstr(func, "+0x"))
        return true;
    return false;
}
