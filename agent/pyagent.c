/*
 * pyagent.c -- Python frames in the agent's samples.
 *
 * Hot path (SIGPROF handler, slow half of a timed wait): find this
 * thread's PyThreadState -- cached per thread, checked with one read of its
 * thread ids, looked up again through the interpreter's thread list when it
 * no longer matches (the list walk matching native_thread_id is what the
 * out-of-process samplers do; _PyRuntime's "current" thread state would be
 * wrong for a thread that released the GIL, and the TSS key needs
 * pthread_getspecific, not async-signal-safe) -- then walk its frames with process_vm_readv
 * (pyreader.c) and copy raw (code object, instruction) pairs into the ring
 * next to the native stack. No names, no line numbers, no allocation.
 *
 * Off the hot path (drain, under the drain lock): before a PYFRAMES record
 * is written, every code object it names that this file has not described
 * is read (qualified name, file name, first line, location table) and a
 * PYCODE record goes first. The reader (stacks.c) turns (code, lasti) into
 * a line and merges the frames into the native stack. Which code objects a
 * file already describes is a small open-addressing set keyed by address,
 * with a few fields of the object kept to notice an address reused by
 * another code object after a free (then it is described again).
 *
 * Threads the interpreter does not know (native helper threads, or the main
 * thread before Py_Initialize) are looked up again only every MISS_RETRY
 * CPU samples; a wait, rarer and longer, always looks.
 */
#include "pyagent.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pyreader/pylayout.h"
#include "pyreader/pyreader.h"

#define CODE_SET_SLOTS 8192 /* power of 2 */
#define LINETABLE_MAX (32 * 1024)
#define MISS_RETRY 4

uintptr_t wl__py_gil_lo;
uintptr_t wl__py_gil_hi;

static wl_py_target g_py;
static _Atomic int g_py_on;

struct code_entry {
    uint64_t code; /* 0: free */
    uint64_t ident[4];
};
static struct code_entry *g_codes; /* CODE_SET_SLOTS, mmap'ed when Python is found */
static unsigned g_ncodes;

static __thread uint64_t t_tstate __attribute__((tls_model("initial-exec")));
static __thread unsigned t_miss __attribute__((tls_model("initial-exec")));

static void py_notice(const char *msg)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "wlprof-agent: %s; native stacks only for pid %d\n", msg,
                     (int)getpid());
    if (n > 0)
        (void)!syscall(SYS_write, 2, buf,
                       (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
}

void wl__py_agent_init(void)
{
    const char *off = getenv("WLPROF_AGENT_PYTHON");
    if (off && strcmp(off, "0") == 0)
        return;
    const char *ov = getenv("WLPROF_AGENT_PY_VERSION");
    unsigned override = ov && *ov ? (unsigned)strtoul(ov, NULL, 16) : 0;
    int rc = wl_py_probe((int)getpid(), override, &g_py);
    if (rc == -ENOTSUP) {
        char msg[160];
        unsigned major = g_py.version >> 24, minor = (g_py.version >> 16) & 0xff;
        if (g_py.version && wl_py_layout_for(g_py.version))
            snprintf(msg, sizeof(msg), "Python %u.%u's interpreter layout is not the one known",
                     major, minor);
        else if (g_py.version)
            snprintf(msg, sizeof(msg), "Python %u.%u is not supported (3.11 to 3.13 are)", major,
                     minor);
        else
            snprintf(msg, sizeof(msg), "Python without Py_Version (before 3.11) is not supported");
        py_notice(msg);
        return;
    }
    if (rc != 0)
        return;
    if (!g_codes) {
        void *m = mmap(NULL, CODE_SET_SLOTS * sizeof(*g_codes), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return;
        g_codes = m;
    }
    wl__py_gil_lo = (uintptr_t)g_py.gil_lo;
    wl__py_gil_hi = (uintptr_t)g_py.gil_hi;
    atomic_store(&g_py_on, 1);
}

void wl__py_agent_after_fork(void)
{
    g_py.pid = (int)getpid();
}

void wl__py_agent_new_file(void)
{
    if (g_codes)
        memset(g_codes, 0, CODE_SET_SLOTS * sizeof(*g_codes));
    g_ncodes = 0;
}

int wl__py_agent_capture(int tid, int is_wait, wl_wire_pyframe *out, int max)
{
    if (!atomic_load_explicit(&g_py_on, memory_order_relaxed))
        return 0;
    uint64_t self = (uint64_t)pthread_self();
    uint64_t ts = t_tstate;
    if (ts && !wl_py_thread_is(&g_py, ts, tid, self))
        ts = 0;
    if (!ts) {
        if (t_miss && !is_wait) {
            t_miss--;
            return 0;
        }
        ts = wl_py_find_thread(&g_py, tid, self);
        t_tstate = ts;
        if (!ts) {
            t_miss = MISS_RETRY;
            return 0;
        }
    }
    _Static_assert(sizeof(wl_wire_pyframe) == sizeof(wl_py_frame), "one frame layout");
    return wl_py_walk(&g_py, ts, (wl_py_frame *)out, max);
}

/* code's entry, or the free one where it would go (*found 0); NULL when
 * the set is full. The key is read atomically: wl__py_agent_any_new looks
 * from a signal handler while the writer fills the set. */
static struct code_entry *code_slot(uint64_t code, int *found)
{
    uint64_t h = (code >> 4) * 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < CODE_SET_SLOTS; i++) {
        struct code_entry *e = &g_codes[(h + i) & (CODE_SET_SLOTS - 1)];
        uint64_t c = __atomic_load_n(&e->code, __ATOMIC_RELAXED);
        if (c == code || c == 0) {
            *found = c == code;
            return e;
        }
    }
    return NULL;
}

/* At exit. A code object is read when the first record naming it is
 * drained, so it must be described while it is alive: the interpreter
 * frees its modules' code in Py_FinalizeEx, before exit() runs the final
 * flush. Two measures: a sample naming a code object the file does not
 * describe yet wakes the writer (wl__py_agent_any_new), so it is read
 * within a drain of being first seen, not at the next period; and the
 * final flush takes an object the file already describes as it was,
 * instead of re-reading its (freed) identity and describing garbage. Seen
 * before: py_sleep_compute.py's last window of samples (up to a drain
 * period: 50-200 ms) fell from process_data to <module>. */
int wl__py_agent_any_new(const wl_wire_pyframe *f, int n)
{
    if (!g_codes)
        return 0;
    for (int i = 0; i < n; i++) {
        int found;
        if (f[i].code && code_slot(f[i].code, &found) && !found)
            return 1;
    }
    return 0;
}

static void describe_one(uint64_t code, void (*put)(const void *, size_t), int final)
{
    static uint8_t lt[LINETABLE_MAX];
    static unsigned char rec[sizeof(wl_wire_pycode) + 256 + 1024 + LINETABLE_MAX + 8];
    static wl_py_code pc;
    uint64_t ident[4];
    if (wl_py_code_ident(&g_py, code, ident) != 0)
        memset(ident, 0, sizeof(ident));
    if (g_ncodes >= CODE_SET_SLOTS * 3 / 4)
        wl__py_agent_new_file(); /* full: describe again from now on */
    int found;
    struct code_entry *e = code_slot(code, &found);
    if (!e)
        return;
    if (found && (final || memcmp(e->ident, ident, sizeof(ident)) == 0))
        return;
    if (!found)
        g_ncodes++;
    __atomic_store_n(&e->code, code, __ATOMIC_RELAXED);
    memcpy(e->ident, ident, sizeof(ident));
    wl_py_code_read(&g_py, code, lt, sizeof(lt), &pc);
    size_t ql = strlen(pc.qualname), fl = strlen(pc.filename);
    size_t size = (sizeof(wl_wire_pycode) + ql + fl + pc.linetable_len + 7) & ~(size_t)7;
    wl_wire_pycode *r = (wl_wire_pycode *)rec;
    memset(rec, 0, size);
    r->h.type = WL_REC_PYCODE;
    r->h.size = (uint32_t)size;
    r->code = code;
    r->firstlineno = pc.firstlineno;
    r->valid = (uint32_t)pc.valid;
    r->qualname_len = (uint16_t)ql;
    r->filename_len = (uint16_t)fl;
    r->linetable_len = (uint32_t)pc.linetable_len;
    unsigned char *p = rec + sizeof(*r);
    memcpy(p, pc.qualname, ql);
    memcpy(p + ql, pc.filename, fl);
    memcpy(p + ql + fl, pc.linetable, pc.linetable_len);
    put(rec, size);
}

void wl__py_agent_describe(const wl_wire_rec *r, void (*put)(const void *, size_t), int final)
{
    if (!g_codes || r->size < sizeof(wl_wire_pyframes) ||
        sizeof(wl_wire_pyframes) + (size_t)r->nframes * sizeof(wl_wire_pyframe) > r->size)
        return;
    const wl_wire_pyframe *f =
        (const wl_wire_pyframe *)((const unsigned char *)r + sizeof(wl_wire_pyframes));
    for (unsigned i = 0; i < r->nframes; i++)
        if (f[i].code)
            describe_one(f[i].code, put, final);
}
