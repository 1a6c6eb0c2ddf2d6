/*
 * stacks.c -- reads the agent's files (wire.h) into a wl_stacks and
 * symbolises it.
 *
 * Reading happens in two passes so each address is symbolised once:
 *  1. every record of every file: program counters are resolved against the
 *     module list in force at that point of that file to (module path,
 *     address - load bias) pairs, interned as raw frames; stacks are interned
 *     by (pid, tid, call, frame ids) and accumulate samples and seconds;
 *  2. every raw frame is symbolised (symbolize.c), frames are grouped into
 *     functions by (name, module), function self/total times and the
 *     hottest line of each function are computed, and everything is sorted.
 *
 * Python frames (PYFRAMES records after a CPU or WAIT record, PYCODE records
 * naming their code objects) are merged into the native stack the way
 * py-spy --native does: the k-th _PyEval_EvalFrameDefault from the leaf is
 * replaced by the k-th group of Python frames (groups end at the reader's
 * separators, one per C-level evaluation loop). Frames of the interpreter
 * itself (the module those evaluation loops are in) between the leaf and
 * the outermost Python frame are dropped -- they are how CPython runs the
 * Python code, not what the program does -- unless WLPROF_PY_NATIVE=1. A
 * Python frame is interned as (qualified name, file, line); its "module" is
 * the file's base name.
 *
 * Return addresses of non-leaf frames point after the call instruction;
 * they are looked up at pc - 1 so the line is the call's, not the next one.
 * Nothing here trusts the files: sizes are checked against the buffer and
 * bad records are counted and skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmap.h"
#include "stacks_internal.h"
#include "pyreader/pyreader.h"
#include "symbolize.h"
#include "wire.h"
#include "wlprof/stacks.h"

#define NO_MODULE UINT32_MAX
#define PY_MODULE (UINT32_MAX - 1) /* raw_frame.rel indexes builder.pylocs */
#define EVAL_FUNC "_PyEval_EvalFrameDefault"

static const char *const call_names[WL_CALL_COUNT] = {
#define WL_CALL_NAME(name) #name,
    WL_WIRE_CALLS(WL_CALL_NAME)
#undef WL_CALL_NAME
};

struct raw_frame {
    uint32_t path;   /* index into paths, NO_MODULE when outside every module */
    uint64_t rel;    /* address - bias (absolute when NO_MODULE) */
};

struct cur_mod {
    uint64_t bias, lo, hi;
    uint32_t path;
    int is_agent; /* libwlprof-agent.so: its frames are left out of stacks */
};

#define AGENT_SONAME "libwlprof-agent.so"


/* A code object as a PYCODE record described it (per file). */
struct py_code {
    char *qualname;
    char *filename;
    int firstlineno;
    int valid;
    uint8_t *linetable;
    size_t linetable_len;
};

/* A Python frame: a source line of a function. */
struct py_loc {
    char *qualname;
    char *filename;
    int line;
};

struct builder {
    wl_stacks *out;
    wl_bmap code_map;          /* (file seq, code address) -> codes */
    struct py_code *codes;
    size_t ncodes, capcodes;
    wl_bmap pyloc_map;         /* "qualname\0filename\0line" -> pylocs */
    struct py_loc *pylocs;
    size_t npylocs, cappylocs;
    int8_t *is_eval;           /* per raw frame: -1 unknown, else 0/1 */
    size_t capeval;
    wl_symbolizer *sym;        /* pass 1: finding the evaluation loops */
    uint32_t file_seq;
    int keep_interp;           /* WLPROF_PY_NATIVE=1 */
    wl_bmap frame_map;
    struct raw_frame *raw;
    size_t nraw, capraw;
    wl_bmap path_map;
    char **paths;
    size_t npaths, cappaths;
    wl_bmap stack_map;
    size_t capstacks;
    wl_bmap thread_map;
    size_t capthreads;
    struct cur_mod *mods;
    size_t nmods, capmods;
    int pid;
    size_t capevents;
    struct image *images;      /* one per file: names processes by what they exec'd */
    size_t nimages, capimages;
};

struct image {
    int pid;
    uint64_t start_ns;
    char exe[64];  /* basename of the image's executable */
};

/* Grows *arr (element size es) to hold n + 1 elements. */
static int reserve(void **arr, size_t *cap, size_t n, size_t es)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, c * es);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

static int intern_path(struct builder *b, const char *path, size_t len, uint32_t *id)
{
    *id = (uint32_t)b->npaths;
    int r = wl__bmap_intern(&b->path_map, path, len, id);
    if (r != 0)
        return r < 0 ? r : 0;
    if (reserve((void **)&b->paths, &b->cappaths, b->npaths, sizeof(*b->paths)) != 0)
        return -ENOMEM;
    char *p = strndup(path, len);
    if (!p)
        return -ENOMEM;
    b->paths[b->npaths++] = p;
    return 0;
}

static int intern_frame(struct builder *b, uint64_t pc, int leaf, uint32_t *id)
{
    struct raw_frame rf = {NO_MODULE, pc};
    uint64_t look = leaf || pc == 0 ? pc : pc - 1;
    for (size_t i = 0; i < b->nmods; i++) {
        if (look >= b->mods[i].lo && look < b->mods[i].hi) {
            rf.path = b->mods[i].path;
            rf.rel = look - b->mods[i].bias;
            break;
        }
    }
    *id = (uint32_t)b->nraw;
    int r = wl__bmap_intern(&b->frame_map, &rf, sizeof(rf), id);
    if (r != 0)
        return r < 0 ? r : 0;
    if (reserve((void **)&b->raw, &b->capraw, b->nraw, sizeof(*b->raw)) != 0)
        return -ENOMEM;
    b->raw[b->nraw++] = rf;
    return 0;
}

static wl_stack_thread *thread_for(struct builder *b, int tid)
{
    int32_t key[2] = {b->pid, tid};
    uint32_t id = (uint32_t)b->out->nthreads;
    int r = wl__bmap_intern(&b->thread_map, key, sizeof(key), &id);
    if (r < 0)
        return NULL;
    if (r == 1)
        return &b->out->threads[id];
    if (reserve((void **)&b->out->threads, &b->capthreads, b->out->nthreads, sizeof(wl_stack_thread)) != 0)
        return NULL;
    wl_stack_thread *t = &b->out->threads[b->out->nthreads++];
    memset(t, 0, sizeof(*t));
    t->pid = b->pid;
    t->tid = tid;
    return t;
}

static int is_agent_pc(const struct builder *b, uint64_t pc)
{
    for (size_t i = 0; i < b->nmods; i++)
        if (pc >= b->mods[i].lo && pc < b->mods[i].hi)
            return b->mods[i].is_agent;
    return 0;
}

/* The raw frame of Python location (qualname, filename, line). */
static int intern_pyloc(struct builder *b, const char *qualname, const char *filename, int line, uint32_t *id)
{
    char key[256 + 1024 + 16];
    int kl = snprintf(key, sizeof(key), "%s%c%s%c%d", qualname, 0, filename, 0, line);
    if (kl < 0 || (size_t)kl >= sizeof(key))
        kl = (int)sizeof(key) - 1;
    uint32_t li = (uint32_t)b->npylocs;
    int r = wl__bmap_intern(&b->pyloc_map, key, (size_t)kl, &li);
    if (r < 0)
        return r;
    if (r == 0) {
        if (reserve((void **)&b->pylocs, &b->cappylocs, b->npylocs, sizeof(*b->pylocs)) != 0)
            return -ENOMEM;
        struct py_loc *l = &b->pylocs[b->npylocs++];
        l->qualname = strdup(qualname);
        l->filename = strdup(filename);
        l->line = line;
        if (!l->qualname || !l->filename)
            return -ENOMEM;
    }
    struct raw_frame rf = {PY_MODULE, li};
    *id = (uint32_t)b->nraw;
    r = wl__bmap_intern(&b->frame_map, &rf, sizeof(rf), id);
    if (r != 0)
        return r < 0 ? r : 0;
    if (reserve((void **)&b->raw, &b->capraw, b->nraw, sizeof(*b->raw)) != 0)
        return -ENOMEM;
    b->raw[b->nraw++] = rf;
    return 0;
}

/* Whether raw frame id is CPython's evaluation loop (symbolised once). */
static int frame_is_eval(struct builder *b, uint32_t id)
{
    while (b->capeval <= id) {
        size_t c = b->capeval ? b->capeval * 2 : 256;
        int8_t *p = realloc(b->is_eval, c);
        if (!p)
            return 0;
        memset(p + b->capeval, -1, c - b->capeval);
        b->is_eval = p;
        b->capeval = c;
    }
    if (b->is_eval[id] >= 0)
        return b->is_eval[id];
    const struct raw_frame *rf = &b->raw[id];
    int yes = 0;
    if (rf->path != NO_MODULE && rf->path != PY_MODULE) {
        if (!b->sym)
            b->sym = wl__sym_new();
        char *func = NULL; /* the name is all this needs: no line information read */
        if (b->sym && wl__sym_name(b->sym, b->paths[rf->path], rf->rel, &func) == 0)
            yes = func && strcmp(func, EVAL_FUNC) == 0;
        free(func);
    }
    b->is_eval[id] = (int8_t)yes;
    return yes;
}

/* The code object at addr as this file described it, or NULL. */
static const struct py_code *code_for(struct builder *b, uint64_t addr)
{
    uint64_t key[2] = {b->file_seq, addr};
    uint32_t id;
    if (!wl__bmap_find(&b->code_map, key, sizeof(key), &id) || id >= b->ncodes)
        return NULL;
    return &b->codes[id];
}

/* Merges Python frames py[npy] (innermost first, separators after each
 * evaluation loop) into the native frame ids ids[n] (leaf first): into
 * out, at most cap ids. Returns the merged count, or -ENOMEM. */
static int merge_python(struct builder *b, const uint32_t *ids, uint32_t n, const wl_wire_pyframe *py,
                        uint32_t npy, uint32_t *out, uint32_t cap)
{
    /* Python frame ids, groups delimited by separators. */
    uint32_t pyids[WL_WIRE_MAX_PYFRAMES];
    uint32_t gstart[WL_WIRE_MAX_PYFRAMES + 1], gend[WL_WIRE_MAX_PYFRAMES + 1];
    uint32_t ng = 0, np = 0, start = 0;
    for (uint32_t i = 0; i < npy; i++) {
        if (py[i].flags & WL_PY_SEP) {
            gstart[ng] = start;
            gend[ng++] = np;
            start = np;
            continue;
        }
        const struct py_code *c = code_for(b, py[i].code);
        if (!c || !c->valid)
            continue;
        int line = wl_py_line(c->linetable, c->linetable_len, c->firstlineno, py[i].lasti);
        if (line < 0)
            line = c->firstlineno;
        if (intern_pyloc(b, c->qualname, c->filename, line, &pyids[np]) != 0)
            return -ENOMEM;
        np++;
    }
    if (np > start) {
        gstart[ng] = start;
        gend[ng++] = np;
    }
    /* The interpreter's own module: where its evaluation loops are. */
    uint32_t interp = NO_MODULE, last_eval = 0;
    int neval = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (frame_is_eval(b, ids[k])) {
            if (interp == NO_MODULE)
                interp = b->raw[ids[k]].path;
            last_eval = k;
            neval++;
        }
    }
    uint32_t m = 0, g = 0;
    for (uint32_t k = 0; k < n && m < cap; k++) {
        if (g < ng && frame_is_eval(b, ids[k])) {
            for (uint32_t j = gstart[g]; j < gend[g] && m < cap; j++)
                out[m++] = pyids[j];
            g++;
            continue;
        }
        /* Interpreter internals up to the outermost Python frame. */
        if (!b->keep_interp && neval && k < last_eval && b->raw[ids[k]].path == interp && np > 0)
            continue;
        out[m++] = ids[k];
    }
    /* More Python than evaluation loops seen (native unwinding cut short):
     * the rest are callers, outermost last. */
    for (; g < ng; g++)
        for (uint32_t j = gstart[g]; j < gend[g] && m < cap; j++)
            out[m++] = pyids[j];
    return (int)m;
}

/* The stack for (tid, call, pcs and Python frames py), created empty when new. */
static wl_stack *stack_for(struct builder *b, int tid, int call, const uint64_t *pcs, uint32_t n,
                           const wl_wire_pyframe *py, uint32_t npy)
{
    uint32_t key[WL_WIRE_MAX_FRAMES + WL_WIRE_MAX_PYFRAMES + 3];
    uint32_t native[WL_WIRE_MAX_FRAMES];
    key[0] = (uint32_t)b->pid;
    key[1] = (uint32_t)tid;
    key[2] = (uint32_t)call;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (is_agent_pc(b, pcs[i]))
            continue;
        if (intern_frame(b, pcs[i], call < 0 && i == 0, &native[kept]) != 0)
            return NULL;
        kept++;
    }
    if (npy) {
        int m = merge_python(b, native, kept, py, npy, key + 3, WL_WIRE_MAX_FRAMES + WL_WIRE_MAX_PYFRAMES);
        if (m < 0)
            return NULL;
        n = (uint32_t)m;
    } else {
        memcpy(key + 3, native, kept * sizeof(uint32_t));
        n = kept;
    }
    uint32_t id = (uint32_t)b->out->nstacks;
    int r = wl__bmap_intern(&b->stack_map, key, (3 + n) * sizeof(uint32_t), &id);
    if (r < 0)
        return NULL;
    if (r == 1)
        return &b->out->stacks[id];
    if (reserve((void **)&b->out->stacks, &b->capstacks, b->out->nstacks, sizeof(wl_stack)) != 0)
        return NULL;
    wl_stack *s = &b->out->stacks[b->out->nstacks];
    memset(s, 0, sizeof(*s));
    s->frames = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!s->frames)
        return NULL;
    memcpy(s->frames, key + 3, n * sizeof(uint32_t));
    s->nframes = n;
    s->pid = b->pid;
    s->tid = tid;
    s->call = call >= 0 && call < WL_CALL_COUNT ? call_names[call] : NULL;
    b->out->nstacks++;
    return s;
}

static int parse_modules(struct builder *b, const unsigned char *p, size_t size)
{
    if (size < 16)
        return -EINVAL;
    uint32_t count;
    memcpy(&count, p + 8, 4);
    b->nmods = 0;
    size_t off = 16;
    for (uint32_t i = 0; i < count; i++) {
        if (off + 26 > size)
            return -EINVAL;
        struct cur_mod m;
        uint16_t len;
        memcpy(&m.bias, p + off, 8);
        memcpy(&m.lo, p + off + 8, 8);
        memcpy(&m.hi, p + off + 16, 8);
        memcpy(&len, p + off + 24, 2);
        if (off + 26 + len > size)
            return -EINVAL;
        int r = intern_path(b, (const char *)p + off + 26, len, &m.path);
        if (r < 0)
            return r;
        const char *base = memrchr(p + off + 26, '/', len);
        base = base ? base + 1 : (const char *)p + off + 26;
        size_t blen = (size_t)((const char *)p + off + 26 + len - base);
        m.is_agent = blen == strlen(AGENT_SONAME) && memcmp(base, AGENT_SONAME, blen) == 0;
        if (reserve((void **)&b->mods, &b->capmods, b->nmods, sizeof(*b->mods)) != 0)
            return -ENOMEM;
        b->mods[b->nmods++] = m;
        off += (26 + (size_t)len + 7) & ~(size_t)7;
    }
    return 0;
}

/* Copies a CPU or WAIT record's fixed part (fixed bytes) into rec and its
 * frames into pcs, after checking they fit the record. */
static int read_sample(const unsigned char *p, const wl_wire_rec *h, void *rec, size_t fixed,
                       uint64_t *pcs)
{
    if (h->size < fixed || h->nframes > WL_WIRE_MAX_FRAMES || fixed + (size_t)h->nframes * 8 > h->size)
        return -EINVAL;
    memcpy(rec, p, fixed);
    memcpy(pcs, p + fixed, (size_t)h->nframes * 8);
    return 0;
}

/* Appends a time-ordered event (t: absolute CLOCK_MONOTONIC seconds until
 * wl_stacks_read makes it relative). */
static int add_event(struct builder *b, const wl_stack *s, const wl_stack_thread *t, double t_s, double dur)
{
    wl_stacks *o = b->out;
    if (reserve((void **)&o->events, &b->capevents, o->nevents, sizeof(*o->events)) != 0)
        return -ENOMEM;
    o->events[o->nevents++] = (wl_stack_event){
        .t_s = t_s, .dur_s = dur, .stack = (uint32_t)(s - o->stacks), .thread = (uint32_t)(t - o->threads)};
    return 0;
}

/* Replaces every byte of s that is not part of valid UTF-8 with '?': the
 * names come from another process's memory, and one bad string would make
 * the whole JSON report section fail. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
        int ok = n >= 0 && !(n == 1 && *p < 0xc2);
        for (int i = 1; ok && i <= n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 2) {
            unsigned c = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
            ok = c >= 0x800 && (c < 0xd800 || c >= 0xe000);
        } else if (ok && n == 3) {
            unsigned c = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) | ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu);
            ok = c >= 0x10000 && c <= 0x10ffff;
        }
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

/* A PYCODE record: what one code object address names in this file. */
static int parse_pycode(struct builder *b, const unsigned char *p, const wl_wire_rec *h)
{
    wl_wire_pycode r;
    if (h->size < sizeof(r))
        return -EINVAL;
    memcpy(&r, p, sizeof(r));
    size_t need = sizeof(r) + (size_t)r.qualname_len + r.filename_len + r.linetable_len;
    if (need > h->size)
        return -EINVAL;
    uint64_t key[2] = {b->file_seq, r.code};
    uint32_t id = (uint32_t)b->ncodes;
    int found = wl__bmap_intern(&b->code_map, key, sizeof(key), &id);
    if (found < 0)
        return found;
    if (!found) {
        if (reserve((void **)&b->codes, &b->capcodes, b->ncodes, sizeof(*b->codes)) != 0)
            return -ENOMEM;
        memset(&b->codes[b->ncodes++], 0, sizeof(*b->codes));
    }
    struct py_code *c = &b->codes[id];
    free(c->qualname);
    free(c->filename);
    free(c->linetable);
    const char *q = (const char *)p + sizeof(r);
    c->qualname = strndup(q, r.qualname_len);
    c->filename = strndup(q + r.qualname_len, r.filename_len);
    if (c->qualname)
        utf8_sanitize(c->qualname);
    if (c->filename)
        utf8_sanitize(c->filename);
    c->linetable = malloc(r.linetable_len ? r.linetable_len : 1);
    if (!c->qualname || !c->filename || !c->linetable)
        return -ENOMEM;
    memcpy(c->linetable, q + r.qualname_len + r.filename_len, r.linetable_len);
    c->linetable_len = r.linetable_len;
    c->firstlineno = r.firstlineno;
    c->valid = r.valid != 0 && r.qualname_len > 0;
    return 0;
}

/* The Python frames of a PYFRAMES record at p (NULL: none) into py. */
static uint32_t read_pyframes(const unsigned char *p, wl_wire_pyframe *py)
{
    if (!p)
        return 0;
    wl_wire_rec h;
    memcpy(&h, p, sizeof(h));
    if (h.nframes > WL_WIRE_MAX_PYFRAMES ||
        sizeof(wl_wire_pyframes) + (size_t)h.nframes * sizeof(*py) > h.size)
        return 0;
    memcpy(py, p + sizeof(wl_wire_pyframes), (size_t)h.nframes * sizeof(*py));
    return h.nframes;
}

/* pyrec: the PYFRAMES record right after this one, or NULL. */
static int parse_record(struct builder *b, const unsigned char *p, const wl_wire_rec *h,
                        const unsigned char *pyrec)
{
    wl_stacks *o = b->out;
    wl_wire_pyframe py[WL_WIRE_MAX_PYFRAMES];
    switch (h->type) {
    case WL_REC_PYCODE:
        return parse_pycode(b, p, h);
    case WL_REC_PYFRAMES:
        return 0; /* read with the record before it */
    case WL_REC_MODULES:
        return parse_modules(b, p, h->size);
    case WL_REC_THREAD: {
        if (h->size < sizeof(wl_wire_thread))
            return -EINVAL;
        wl_wire_thread r;
        memcpy(&r, p, sizeof(r));
        wl_stack_thread *t = thread_for(b, r.tid);
        if (!t)
            return -ENOMEM;
        memcpy(t->comm, r.name, 15);
        t->comm[15] = '\0';
        return 0;
    }
    case WL_REC_CPU: {
        wl_wire_cpu r;
        uint64_t pcs[WL_WIRE_MAX_FRAMES];
        if (read_sample(p, h, &r, sizeof(r), pcs) != 0)
            return -EINVAL;
        uint32_t npy = read_pyframes(pyrec, py);
        wl_stack *s = stack_for(b, r.tid, -1, pcs, h->nframes, py, npy);
        wl_stack_thread *t = thread_for(b, r.tid);
        if (!s || !t)
            return -ENOMEM;
        double u = (double)r.user_ns * 1e-9, sy = (double)r.sys_ns * 1e-9;
        if (add_event(b, s, t, (double)r.mono_ns * 1e-9 - (u + sy), u + sy) != 0)
            return -ENOMEM;
        s->cpu_samples++;
        s->user_s += u;
        s->sys_s += sy;
        t->cpu_samples++;
        t->user_s += u;
        t->sys_s += sy;
        o->cpu_samples++;
        o->user_s += u;
        o->sys_s += sy;
        return 0;
    }
    case WL_REC_WAIT: {
        wl_wire_wait r;
        uint64_t pcs[WL_WIRE_MAX_FRAMES];
        if (read_sample(p, h, &r, sizeof(r), pcs) != 0)
            return -EINVAL;
        uint32_t npy = read_pyframes(pyrec, py);
        wl_stack *s = stack_for(b, r.tid, r.call < WL_CALL_COUNT ? r.call : WL_CALL_COUNT, pcs, h->nframes,
                                py, npy);
        wl_stack_thread *t = thread_for(b, r.tid);
        if (!s || !t)
            return -ENOMEM;
        double w = (double)r.wait_ns * 1e-9;
        if (add_event(b, s, t, (double)r.mono_ns * 1e-9 - w, w) != 0)
            return -ENOMEM;
        s->waits++;
        s->wait_s += w;
        t->waits++;
        t->wait_s += w;
        o->waits++;
        o->wait_s += w;
        if (r.call == WL_CALL_gil)
            o->gil_s += w;
        return 0;
    }
    case WL_REC_DROPPED: {
        wl_wire_dropped r;
        if (h->size < sizeof(r))
            return -EINVAL;
        memcpy(&r, p, sizeof(r));
        wl_stack_thread *t = thread_for(b, r.tid);
        if (!t)
            return -ENOMEM;
        t->dropped += r.count;
        o->dropped += r.count;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

static int read_whole(const char *path, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 0;
    int err = 0;
    for (;;) {
        if (*len + 65536 > cap) {
            size_t c = cap ? cap * 2 : 262144;
            unsigned char *p = realloc(*buf, c);
            if (!p) {
                err = -ENOMEM;
                break;
            }
            *buf = p;
            cap = c;
        }
        size_t n = fread(*buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    return err;
}

static int read_file(struct builder *b, const char *path)
{
    unsigned char *buf;
    size_t len;
    int err = read_whole(path, &buf, &len);
    if (err)
        goto out_free;
    wl_wire_header hdr;
    if (len < sizeof(hdr)) {
        b->out->bad_records++;
        goto out_free;
    }
    memcpy(&hdr, buf, sizeof(hdr));
    if (memcmp(hdr.magic, WL_WIRE_MAGIC, 8) != 0 || hdr.version != WL_WIRE_VERSION) {
        b->out->bad_records++;
        goto out_free;
    }
    b->pid = hdr.pid;
    b->nmods = 0;
    if (reserve((void **)&b->images, &b->capimages, b->nimages, sizeof(*b->images)) != 0) {
        err = -ENOMEM;
        goto out_free;
    }
    struct image *im = &b->images[b->nimages++];
    hdr.exe[sizeof(hdr.exe) - 1] = '\0';
    const char *base = strrchr(hdr.exe, '/');
    im->pid = hdr.pid;
    im->start_ns = hdr.start_mono_ns;
    snprintf(im->exe, sizeof(im->exe), "%.63s", base ? base + 1 : hdr.exe);
    double start = (double)hdr.start_mono_ns * 1e-9;
    if (b->out->t0_mono_s <= 0 || start < b->out->t0_mono_s)
        b->out->t0_mono_s = start;
    b->file_seq++;
    if (b->out->hz <= 0)
        b->out->hz = hdr.hz;
    b->out->processes++;
    size_t off = sizeof(hdr);
    while (off + sizeof(wl_wire_rec) <= len) {
        wl_wire_rec h;
        memcpy(&h, buf + off, sizeof(h));
        if (h.size < sizeof(h) || h.size % 8 || h.size > len - off) {
            b->out->bad_records++;
            break; /* cannot find the next record boundary */
        }
        const unsigned char *pyrec = NULL;
        if ((h.type == WL_REC_CPU || h.type == WL_REC_WAIT) && off + h.size + sizeof(wl_wire_rec) <= len) {
            wl_wire_rec n;
            memcpy(&n, buf + off + h.size, sizeof(n));
            if (n.type == WL_REC_PYFRAMES && n.size >= sizeof(wl_wire_pyframes) && n.size % 8 == 0 &&
                n.size <= len - off - h.size)
                pyrec = buf + off + h.size;
        }
        err = parse_record(b, buf + off, &h, pyrec);
        if (err == -ENOMEM)
            goto out_free;
        if (err)
            b->out->bad_records++;
        err = 0;
        off += h.size;
    }
out_free:
    free(buf);
    return err;
}

static int is_agent_file(const char *name)
{
    size_t n = strlen(name), np = strlen(WL_WIRE_FILE_PREFIX), ns = strlen(WL_WIRE_FILE_SUFFIX);
    return n > np + ns && strncmp(name, WL_WIRE_FILE_PREFIX, np) == 0 &&
           strcmp(name + n - ns, WL_WIRE_FILE_SUFFIX) == 0;
}

/* ---- pass 2 ---- */

/* Pass 2: every raw frame gets its function name; file and line only the
 * frames some stack still holds. The others (interpreter frames a Python
 * merge replaced) are never printed, and their lines could cost loading a
 * module's DWARF. */
static int symbolize_frames(struct builder *b)
{
    wl_stacks *o = b->out;
    wl_symbolizer *sym = b->sym ? b->sym : wl__sym_new(); /* pass 1's has the names it read */
    b->sym = NULL;
    if (!sym)
        return -ENOMEM;
    int err = 0;
    uint8_t *used = calloc(b->nraw ? b->nraw : 1, 1);
    o->frames = calloc(b->nraw ? b->nraw : 1, sizeof(*o->frames));
    if (!o->frames || !used) {
        err = -ENOMEM;
        goto out_sym;
    }
    for (size_t si = 0; si < o->nstacks; si++)
        for (uint32_t k = 0; k < o->stacks[si].nframes; k++)
            if (o->stacks[si].frames[k] < b->nraw)
                used[o->stacks[si].frames[k]] = 1;
    o->nframes = b->nraw;
    for (size_t i = 0; i < b->nraw; i++) {
        wl_frame *f = &o->frames[i];
        f->offset = b->raw[i].rel;
        if (b->raw[i].path == PY_MODULE) {
            const struct py_loc *l = &b->pylocs[b->raw[i].rel];
            const char *base = strrchr(l->filename, '/');
            f->func = strdup(l->qualname);
            f->module = strdup(base ? base + 1 : l->filename);
            f->file = strdup(l->filename);
            f->line = l->line;
            f->offset = (uint64_t)l->line;
            f->python = true;
            if (!f->file) {
                err = -ENOMEM;
                goto out_sym;
            }
        } else if (b->raw[i].path == NO_MODULE) {
            char buf[32];
            snprintf(buf, sizeof(buf), "0x%" PRIx64, b->raw[i].rel);
            f->func = strdup(buf);
            f->module = strdup("?");
        } else {
            const char *path = b->paths[b->raw[i].path];
            const char *base = strrchr(path, '/');
            f->module = strdup(base ? base + 1 : path);
            err = used[i] ? wl__sym_lookup(sym, path, b->raw[i].rel, &f->func, &f->file, &f->line)
                          : wl__sym_name(sym, path, b->raw[i].rel, &f->func);
            if (err)
                goto out_sym;
        }
        if (!f->func || !f->module) {
            err = -ENOMEM;
            goto out_sym;
        }
    }
out_sym:
    free(used);
    wl__sym_free(sym);
    return err;
}

static int cmp_double_desc(double a, double b)
{
    return (a < b) - (a > b);
}

static int cmp_stack(const void *a, const void *b)
{
    const wl_stack *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return cmp_double_desc(x->user_s + x->sys_s + x->wait_s, y->user_s + y->sys_s + y->wait_s);
}

static int cmp_thread(const void *a, const void *b)
{
    const wl_stack_thread *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

struct func_sort {
    double total;
    uint32_t old;
};

static int cmp_func(const void *a, const void *b)
{
    const struct func_sort *x = a, *y = b;
    int c = cmp_double_desc(x->total, y->total);
    return c ? c : (x->old > y->old) - (x->old < y->old);
}

int wl__stacks_build_functions(wl_stacks *o)
{
    wl_bmap fmap = {0};
    int err = -ENOMEM;
    size_t cap = 0;
    double *frame_self = calloc(o->nframes + 1, sizeof(double));
    double *frame_total = calloc(o->nframes + 1, sizeof(double));
    uint32_t *seen = NULL;
    struct func_sort *order = NULL;
    uint32_t *remap = NULL;
    if (!frame_self || !frame_total)
        goto out;
    for (size_t i = 0; i < o->nframes; i++) {
        wl_frame *f = &o->frames[i];
        size_t ln = strlen(f->func), lm = strlen(f->module);
        char key[ln + lm + 2];
        memcpy(key, f->func, ln + 1);
        memcpy(key + ln + 1, f->module, lm + 1);
        uint32_t id = (uint32_t)o->nfuncs;
        int r = wl__bmap_intern(&fmap, key, ln + lm + 2, &id);
        if (r < 0)
            goto out;
        f->func_id = id;
        if (r == 1)
            continue;
        if (reserve((void **)&o->funcs, &cap, o->nfuncs, sizeof(*o->funcs)) != 0)
            goto out;
        wl_func_stat *fs = &o->funcs[o->nfuncs++];
        memset(fs, 0, sizeof(*fs));
        fs->name = strdup(f->func);
        fs->module = strdup(f->module);
        if (!fs->name || !fs->module)
            goto out;
    }
    seen = malloc((o->nfuncs + 1) * sizeof(uint32_t));
    if (!seen)
        goto out;
    memset(seen, 0xff, (o->nfuncs + 1) * sizeof(uint32_t));
    for (size_t si = 0; si < o->nstacks; si++) {
        wl_stack *s = &o->stacks[si];
        s->samples = s->cpu_samples + (uint64_t)llround(s->wait_s * o->hz);
        o->samples += s->samples;
        if (s->nframes == 0)
            continue;
        double t = s->user_s + s->sys_s + s->wait_s;
        wl_func_stat *leaf = &o->funcs[o->frames[s->frames[0]].func_id];
        leaf->self_user_s += s->user_s;
        leaf->self_sys_s += s->sys_s;
        leaf->self_wait_s += s->wait_s;
        leaf->self_samples += s->samples;
        frame_self[s->frames[0]] += t;
        for (uint32_t k = 0; k < s->nframes; k++) {
            frame_total[s->frames[k]] += t;
            uint32_t fid = o->frames[s->frames[k]].func_id;
            if (seen[fid] == (uint32_t)si)
                continue; /* recursion: count a function once per stack */
            seen[fid] = (uint32_t)si;
            wl_func_stat *fs = &o->funcs[fid];
            fs->total_user_s += s->user_s;
            fs->total_sys_s += s->sys_s;
            fs->total_wait_s += s->wait_s;
            fs->total_samples += s->samples;
        }
    }
    /* hottest line: most self time, else most total time */
    double *best = calloc(o->nfuncs + 1, sizeof(double));
    if (!best)
        goto out;
    for (size_t i = 0; i < o->nframes; i++) {
        wl_frame *f = &o->frames[i];
        if (!f->file)
            continue;
        double score = frame_self[i] * 1e6 + frame_total[i];
        wl_func_stat *fs = &o->funcs[f->func_id];
        if (!fs->file || score > best[f->func_id]) {
            free(fs->file);
            fs->file = strdup(f->file);
            fs->line = f->line;
            best[f->func_id] = score;
        }
    }
    free(best);
    /* sort functions by total time, remapping frame->func_id */
    order = malloc((o->nfuncs + 1) * sizeof(*order));
    remap = malloc((o->nfuncs + 1) * sizeof(*remap));
    wl_func_stat *sorted = malloc((o->nfuncs + 1) * sizeof(*sorted));
    if (!order || !remap || !sorted) {
        free(sorted);
        goto out;
    }
    for (size_t i = 0; i < o->nfuncs; i++) {
        wl_func_stat *fs = &o->funcs[i];
        order[i] = (struct func_sort){fs->total_user_s + fs->total_sys_s + fs->total_wait_s, (uint32_t)i};
    }
    if (o->nfuncs)
        qsort(order, o->nfuncs, sizeof(*order), cmp_func);
    for (size_t i = 0; i < o->nfuncs; i++) {
        sorted[i] = o->funcs[order[i].old];
        remap[order[i].old] = (uint32_t)i;
    }
    free(o->funcs);
    o->funcs = sorted;
    for (size_t i = 0; i < o->nframes; i++)
        o->frames[i].func_id = remap[o->frames[i].func_id];
    err = 0;
out:
    free(frame_self);
    free(frame_total);
    free(seen);
    free(order);
    free(remap);
    wl__bmap_free(&fmap);
    return err;
}

static const wl_stacks *sort_ctx; /* qsort has no context argument */

static int cmp_stack_index(const void *a, const void *b)
{
    return cmp_stack(&sort_ctx->stacks[*(const uint32_t *)a], &sort_ctx->stacks[*(const uint32_t *)b]);
}

static int cmp_thread_index(const void *a, const void *b)
{
    return cmp_thread(&sort_ctx->threads[*(const uint32_t *)a], &sort_ctx->threads[*(const uint32_t *)b]);
}

int wl__stacks_cmp_event(const void *a, const void *b)
{
    const wl_stack_event *x = a, *y = b;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    return (x->t_s > y->t_s) - (x->t_s < y->t_s);
}

/* Sorts array (n elements of es bytes) by the permutation cmp gives over
 * indices; fills remap[old] = new. Returns 0 or -ENOMEM. */
static int permute(void *array, size_t n, size_t es, int (*cmp)(const void *, const void *), uint32_t *remap)
{
    uint32_t *order = malloc((n + 1) * sizeof(*order));
    char *sorted = malloc((n + 1) * es);
    if (!order || !sorted) {
        free(order);
        free(sorted);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    if (n)
        qsort(order, n, sizeof(*order), cmp);
    for (size_t i = 0; i < n; i++) {
        memcpy(sorted + i * es, (char *)array + (size_t)order[i] * es, es);
        remap[order[i]] = (uint32_t)i;
    }
    if (n) /* memcpy with NULL is undefined even for 0 bytes */
        memcpy(array, sorted, n * es);
    free(order);
    free(sorted);
    return 0;
}

/* Sorts stacks (most samples first) and threads (by pid, tid), keeps the
 * events pointing at them and puts the events in time order per thread;
 * names each thread's process by the last image its pid exec'd. */
static int sort_and_order(struct builder *b)
{
    wl_stacks *o = b->out;
    uint32_t *smap = malloc((o->nstacks + 1) * sizeof(*smap));
    uint32_t *tmap = malloc((o->nthreads + 1) * sizeof(*tmap));
    int err = -ENOMEM;
    if (!smap || !tmap)
        goto out;
    sort_ctx = o;
    if (permute(o->stacks, o->nstacks, sizeof(*o->stacks), cmp_stack_index, smap) != 0 ||
        permute(o->threads, o->nthreads, sizeof(*o->threads), cmp_thread_index, tmap) != 0)
        goto out;
    for (size_t i = 0; i < o->nevents; i++) {
        wl_stack_event *e = &o->events[i];
        e->stack = smap[e->stack];
        e->thread = tmap[e->thread];
        e->t_s -= o->t0_mono_s;
    }
    if (o->nevents)
        qsort(o->events, o->nevents, sizeof(*o->events), wl__stacks_cmp_event);
    for (size_t i = 0; i < o->nthreads; i++) {
        const struct image *best = NULL;
        for (size_t k = 0; k < b->nimages; k++)
            if (b->images[k].pid == o->threads[i].pid && (!best || b->images[k].start_ns > best->start_ns))
                best = &b->images[k];
        if (best)
            snprintf(o->threads[i].process, sizeof(o->threads[i].process), "%s", best->exe);
    }
    err = 0;
out:
    free(smap);
    free(tmap);
    return err;
}

/* Calls fn(path, ctx) for every agent file in dir, stopping at the first
 * negative return, which it returns. 0, or -errno when dir cannot be read. */
static int each_agent_file(const char *dir, int (*fn)(const char *path, void *ctx), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_agent_file(e->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        rc = fn(path, ctx);
    }
    closedir(d);
    return rc;
}

/* Reads one file into the builder ctx. A damaged or vanished file is
 * skipped; only running out of memory stops the read. */
static int read_one_file(const char *path, void *ctx)
{
    int err = read_file(ctx, path);
    return err == -ENOMEM ? err : 0;
}

static int remove_one_file(const char *path, void *ctx)
{
    (void)ctx;
    unlink(path);
    return 0;
}

/* The images the preloaded agent announced at their start (wire.h,
 * WL_WIRE_TALLY_FILE): each counts as a process and its start as a
 * candidate for t0, unless a file of the same image was read too (one with
 * records has both). A missing tally is no error. */
static void read_tally(struct builder *b, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/" WL_WIRE_TALLY_FILE, dir);
    unsigned char *buf;
    size_t len;
    if (read_whole(path, &buf, &len) != 0) {
        free(buf);
        return;
    }
    for (size_t off = 0; off + sizeof(wl_wire_empty) <= len; off += sizeof(wl_wire_empty)) {
        wl_wire_empty e;
        memcpy(&e, buf + off, sizeof(e));
        int seen = 0;
        for (size_t i = 0; i < b->nimages && !seen; i++)
            seen = b->images[i].pid == e.pid && b->images[i].start_ns == e.start_mono_ns;
        if (seen)
            continue;
        b->out->processes++;
        double start = (double)e.start_mono_ns * 1e-9;
        if (b->out->t0_mono_s <= 0 || start < b->out->t0_mono_s)
            b->out->t0_mono_s = start;
    }
    if (len % sizeof(wl_wire_empty))
        b->out->bad_records++;
    free(buf);
}

int wl_stacks_read(const char *dir, wl_stacks *out)
{
    memset(out, 0, sizeof(*out));
    struct builder b;
    memset(&b, 0, sizeof(b));
    b.out = out;
    const char *native = getenv("WLPROF_PY_NATIVE");
    b.keep_interp = native && strcmp(native, "1") == 0;
    int err = each_agent_file(dir, read_one_file, &b);
    if (err)
        goto out_builder;
    read_tally(&b, dir);
    err = symbolize_frames(&b);
    if (err)
        goto out_builder;
    err = wl__stacks_build_functions(out);
    if (err)
        goto out_builder;
    err = sort_and_order(&b);
out_builder:
    wl__bmap_free(&b.frame_map);
    wl__bmap_free(&b.path_map);
    wl__bmap_free(&b.stack_map);
    wl__bmap_free(&b.thread_map);
    for (size_t i = 0; i < b.npaths; i++)
        free(b.paths[i]);
    free(b.paths);
    free(b.raw);
    free(b.mods);
    free(b.images);
    for (size_t i = 0; i < b.ncodes; i++) {
        free(b.codes[i].qualname);
        free(b.codes[i].filename);
        free(b.codes[i].linetable);
    }
    free(b.codes);
    for (size_t i = 0; i < b.npylocs; i++) {
        free(b.pylocs[i].qualname);
        free(b.pylocs[i].filename);
    }
    free(b.pylocs);
    free(b.is_eval);
    wl__bmap_free(&b.code_map);
    wl__bmap_free(&b.pyloc_map);
    if (b.sym)
        wl__sym_free(b.sym);
    if (err)
        wl_stacks_free(out);
    return err;
}

int wl_stacks_remove_dir(const char *dir)
{
    int err = each_agent_file(dir, remove_one_file, NULL);
    if (err)
        return err;
    char tally[4096];
    snprintf(tally, sizeof(tally), "%s/" WL_WIRE_TALLY_FILE, dir);
    unlink(tally);
    return rmdir(dir) == 0 ? 0 : -errno;
}

void wl_stacks_free(wl_stacks *s)
{
    for (size_t i = 0; i < s->nframes; i++) {
        free(s->frames[i].func);
        free(s->frames[i].module);
        free(s->frames[i].file);
    }
    free(s->frames);
    for (size_t i = 0; i < s->nstacks; i++) {
        free(s->stacks[i].frames);
        if (!s->owns_calls || !s->stacks[i].call)
            continue;
        size_t j = 0; /* stacks share their call strings: free each once */
        while (j < i && s->stacks[j].call != s->stacks[i].call)
            j++;
        if (j == i)
            free((char *)s->stacks[i].call);
    }
    free(s->stacks);
    for (size_t i = 0; i < s->nfuncs; i++) {
        free(s->funcs[i].name);
        free(s->funcs[i].module);
        free(s->funcs[i].file);
    }
    free(s->funcs);
    free(s->threads);
    free(s->events);
    memset(s, 0, sizeof(*s));
}
