/*
 * pyreader.c -- CPython's threads, frames and code objects read from a
 * process's memory (see pyreader.h for the contract).
 *
 * The chain, per thread (3.11 shown; 3.12 and 3.13 differ in offsets, 3.13
 * keeps current_frame in the thread state itself):
 *
 *   _PyRuntime.interpreters.head -> PyInterpreterState.threads.head
 *     -> PyThreadState { next, thread_id, native_thread_id, cframe }
 *          cframe->current_frame -> _PyInterpreterFrame
 *            { f_code, previous, prev_instr, is_entry (3.11), owner }
 *              f_code -> PyCodeObject { co_qualname, co_filename,
 *                                       co_firstlineno, co_linetable,
 *                                       co_code_adaptive[] }
 *
 * Where the C evaluation loops are: in 3.11 the last frame a
 * _PyEval_EvalFrameDefault call runs has is_entry set; from 3.12 on each
 * call pushes a frame owned by the C stack (FRAME_OWNED_BY_CSTACK) below its
 * first Python frame. Either way the walk emits a separator there.
 *
 * Why hard-coded offset tables and not the headers: the internal headers
 * (python3.X-dev's include/python3.X/internal/) exist only where the -dev
 * package is installed, and one build must read every supported version at
 * run time (a pyenv 3.12 child of a Debian 3.11 parent). The tables below
 * were printed by offsetof() with Py_BUILD_CORE against Debian's
 * python3.11-dev (3.11.2) and pyenv's 3.11.7, 3.12.1 and 3.13.0 headers;
 * tests/agent/pyoffsets_check.c compares them again with whatever headers
 * the build machine has. Layouts are stable within a minor version (CPython
 * keeps its ABI within one), which is how py-spy and austin work too. From
 * 3.13 on the interpreter states its own layout (_Py_DebugOffsets at the
 * start of _PyRuntime): the probe refuses a build whose statement differs
 * from the table (a patch release that moved a field, a free-threaded
 * build) rather than walk garbage.
 */
#include "pyreader.h"
#include "pylayout.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* One line (or two) per CPython struct, so a version's entry reads against
 * the headers struct by struct: */
/* clang-format off */
static const wl_py_layout layouts[] = {
    {.minor = 11,
     /* _PyRuntime, PyInterpreterState */
     .rt_interp_head = 40, .rt_gil = 360, .gil_size = 208,
     .interp_next = 0, .interp_threads_head = 16,
     /* PyThreadState (and 3.11/3.12's _PyCFrame) */
     .ts_next = 8, .ts_thread_id = 152, .ts_native_thread_id = 160, .ts_cframe = 56, .cur_frame = 8,
     /* _PyInterpreterFrame */
     .fr_code = 32, .fr_previous = 48, .fr_instr = 56, .fr_owner = 69,
     .fr_is_entry = 68, .owner_cstack = -1, .fr_size = 72,
     /* PyCodeObject */
     .co_filename = 112, .co_qualname = 128, .co_firstlineno = 72,
     .co_linetable = 136, .co_code = 184,
     /* str (PyASCIIObject, PyCompactUnicodeObject) and bytes */
     .uni_length = 16, .uni_state = 32, .uni_ascii_data = 48, .uni_compact_data = 72,
     .bytes_size = 16, .bytes_sval = 32},
    {.minor = 12,
     /* _PyRuntime, PyInterpreterState */
     .rt_interp_head = 40, .rt_gil = 77432, .gil_size = 208,
     .interp_next = 0, .interp_threads_head = 72,
     /* PyThreadState (and 3.11/3.12's _PyCFrame) */
     .ts_next = 8, .ts_thread_id = 136, .ts_native_thread_id = 144, .ts_cframe = 56, .cur_frame = 0,
     /* _PyInterpreterFrame */
     .fr_code = 0, .fr_previous = 8, .fr_instr = 56, .fr_owner = 70,
     .fr_is_entry = -1, .owner_cstack = 3, .fr_size = 72,
     /* PyCodeObject */
     .co_filename = 112, .co_qualname = 128, .co_firstlineno = 68,
     .co_linetable = 136, .co_code = 192,
     /* str (PyASCIIObject, PyCompactUnicodeObject) and bytes */
     .uni_length = 16, .uni_state = 32, .uni_ascii_data = 40, .uni_compact_data = 56,
     .bytes_size = 16, .bytes_sval = 32},
    {.minor = 13,
     /* _PyRuntime, PyInterpreterState */
     .rt_interp_head = 632, .rt_gil = 96104, .gil_size = 208,
     .interp_next = 7264, .interp_threads_head = 7344,
     /* PyThreadState (and 3.11/3.12's _PyCFrame) */
     .ts_next = 8, .ts_thread_id = 152, .ts_native_thread_id = 160,
     .ts_cframe = -1, .cur_frame = 72,
     /* _PyInterpreterFrame */
     .fr_code = 0, .fr_previous = 8, .fr_instr = 56, .fr_owner = 70,
     .fr_is_entry = -1, .owner_cstack = 3, .fr_size = 72,
     /* PyCodeObject */
     .co_filename = 112, .co_qualname = 128, .co_firstlineno = 68,
     .co_linetable = 136, .co_code = 200,
     /* str (PyASCIIObject, PyCompactUnicodeObject) and bytes */
     .uni_length = 16, .uni_state = 32, .uni_ascii_data = 40, .uni_compact_data = 56,
     .bytes_size = 16, .bytes_sval = 32},
};
/* clang-format on */

#define MAX_THREADS_WALKED 4096
#define MAX_INTERPS_WALKED 64
#define MAX_FRAMES_WALKED 4096

/* ---- memory ---- */

int wl_py_read(const wl_py_target *t, uint64_t addr, void *buf, size_t n)
{
    if (addr == 0)
        return -EFAULT;
    struct iovec local = {buf, n};
    struct iovec remote = {(void *)(uintptr_t)addr, n};
    long r = syscall(SYS_process_vm_readv, t->pid, &local, 1UL, &remote, 1UL, 0UL);
    if (r < 0)
        return -errno;
    return (size_t)r == n ? 0 : -EFAULT;
}

static uint64_t get_u64(const unsigned char *b, uint32_t off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

static uint64_t read_ptr(const wl_py_target *t, uint64_t addr)
{
    uint64_t v = 0;
    return wl_py_read(t, addr, &v, 8) == 0 ? v : 0;
}

/* ---- threads and frames (async-signal-safe) ---- */

/* A thread state's two ids in one read: its pthread_t (thread_id) and
 * its kernel tid (native_thread_id), adjacent in every layout. Returns 0
 * or -EFAULT. */
static int read_thread_ids(const wl_py_target *t, uint64_t tstate, uint64_t *pthread_id,
                           int64_t *tid)
{
    const wl_py_layout *L = t->lay;
    unsigned char b[16];
    if (wl_py_read(t, tstate + L->ts_thread_id, b, 16) != 0)
        return -EFAULT;
    *pthread_id = get_u64(b, 0);
    *tid = (int64_t)get_u64(b, L->ts_native_thread_id - L->ts_thread_id);
    return 0;
}

int wl_py_thread_is(const wl_py_target *t, uint64_t tstate, int tid, uint64_t pthread_id)
{
    uint64_t pt;
    int64_t native;
    if (!t->lay || read_thread_ids(t, tstate, &pt, &native) != 0)
        return 0;
    return native == tid || (pthread_id && pt == pthread_id);
}

uint64_t wl_py_find_thread(const wl_py_target *t, int tid, uint64_t pthread_id)
{
    const wl_py_layout *L = t->lay;
    if (!L)
        return 0;
    uint64_t by_pthread = 0;
    uint64_t interp = read_ptr(t, t->runtime + L->rt_interp_head);
    for (int i = 0; interp && i < MAX_INTERPS_WALKED; i++) {
        uint64_t ts = read_ptr(t, interp + L->interp_threads_head);
        for (int j = 0; ts && j < MAX_THREADS_WALKED; j++) {
            uint64_t pt;
            int64_t native;
            if (read_thread_ids(t, ts, &pt, &native) != 0)
                break;
            if (native == tid)
                return ts;
            if (pthread_id && pt == pthread_id && !by_pthread)
                by_pthread = ts;
            ts = read_ptr(t, ts + L->ts_next);
        }
        interp = read_ptr(t, interp + L->interp_next);
    }
    return by_pthread;
}

int wl_py_walk(const wl_py_target *t, uint64_t tstate, wl_py_frame *out, int max)
{
    const wl_py_layout *L = t->lay;
    if (!L || max <= 0)
        return 0;
    uint64_t frame;
    if (L->ts_cframe >= 0) {
        uint64_t cf = read_ptr(t, tstate + (uint32_t)L->ts_cframe);
        frame = cf ? read_ptr(t, cf + L->cur_frame) : 0;
    } else {
        frame = read_ptr(t, tstate + L->cur_frame);
    }
    int n = 0;
    unsigned char b[128];
    for (int steps = 0; frame && n < max && steps < MAX_FRAMES_WALKED; steps++) {
        if (wl_py_read(t, frame, b, L->fr_size) != 0)
            break;
        uint64_t code = get_u64(b, L->fr_code);
        uint64_t prev = get_u64(b, L->fr_previous);
        uint64_t instr = get_u64(b, L->fr_instr);
        int owner = (signed char)b[L->fr_owner];
        frame = prev;
        if (L->owner_cstack >= 0 && owner == L->owner_cstack) {
            out[n++] = (wl_py_frame){0, 0, WL_PY_SEP};
            continue;
        }
        if (!code)
            continue;
        int64_t lasti = ((int64_t)instr - (int64_t)(code + L->co_code)) / 2;
        if (lasti < -1 || lasti > INT32_MAX)
            lasti = -1;
        out[n++] = (wl_py_frame){code, (int32_t)lasti, 0};
        if (L->fr_is_entry >= 0 && b[L->fr_is_entry] && n < max)
            out[n++] = (wl_py_frame){0, 0, WL_PY_SEP};
    }
    return n;
}

/* ---- code objects ---- */

/* Appends code point c as UTF-8 to dst (cap includes the NUL). */
static size_t put_utf8(char *dst, size_t len, size_t cap, uint32_t c)
{
    char tmp[4];
    size_t k;
    if ((c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
        c = '?'; /* not a character: never emit invalid UTF-8 */
    if (c < 0x80) {
        tmp[0] = (char)c;
        k = 1;
    } else if (c < 0x800) {
        tmp[0] = (char)(0xc0 | (c >> 6));
        tmp[1] = (char)(0x80 | (c & 0x3f));
        k = 2;
    } else if (c < 0x10000) {
        tmp[0] = (char)(0xe0 | (c >> 12));
        tmp[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (c & 0x3f));
        k = 3;
    } else {
        tmp[0] = (char)(0xf0 | (c >> 18));
        tmp[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        tmp[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        tmp[3] = (char)(0x80 | (c & 0x3f));
        k = 4;
    }
    if (len + k >= cap)
        return len;
    memcpy(dst + len, tmp, k);
    return len + k;
}

/* A str object's text as UTF-8 (compact strings only: every name and file
 * name of a code object is one). */
static int read_str(const wl_py_target *t, uint64_t obj, char *dst, size_t cap)
{
    const wl_py_layout *L = t->lay;
    unsigned char h[80];
    dst[0] = '\0';
    if (wl_py_read(t, obj, h, L->uni_compact_data) != 0)
        return -EFAULT;
    int64_t length = (int64_t)get_u64(h, L->uni_length);
    uint32_t state;
    memcpy(&state, h + L->uni_state, 4);
    unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    if (!compact || length < 0 || (kind != 1 && kind != 2 && kind != 4))
        return -EINVAL;
    if (length > 1024)
        length = 1024;
    unsigned char raw[4096];
    size_t nbytes = (size_t)length * kind;
    uint64_t data = obj + (ascii ? L->uni_ascii_data : L->uni_compact_data);
    if (nbytes && wl_py_read(t, data, raw, nbytes) != 0)
        return -EFAULT;
    size_t len = 0;
    for (int64_t i = 0; i < length; i++) {
        uint32_t c;
        if (kind == 1) {
            c = raw[i];
        } else if (kind == 2) {
            uint16_t u;
            memcpy(&u, raw + i * 2, 2);
            c = u;
        } else {
            memcpy(&c, raw + i * 4, 4);
        }
        len = put_utf8(dst, len, cap, c);
    }
    dst[len] = '\0';
    return 0;
}

/* The head of a code object, up to and including co_linetable, into b
 * (256 bytes: every layout's co_linetable + 8 fits). Returns 0 or
 * -EFAULT. */
static int read_code_head(const wl_py_target *t, uint64_t addr, unsigned char b[256])
{
    if (!t->lay || wl_py_read(t, addr, b, t->lay->co_linetable + 8) != 0)
        return -EFAULT;
    return 0;
}

int wl_py_code_ident(const wl_py_target *t, uint64_t addr, uint64_t ident[4])
{
    const wl_py_layout *L = t->lay;
    unsigned char b[256];
    if (read_code_head(t, addr, b) != 0)
        return -EFAULT;
    ident[0] = get_u64(b, 8); /* ob_type */
    ident[1] = get_u64(b, L->co_filename);
    ident[2] = get_u64(b, L->co_qualname);
    ident[3] = get_u64(b, L->co_linetable) ^ ((uint64_t)(uint32_t)b[L->co_firstlineno] << 48);
    return 0;
}

int wl_py_code_read(const wl_py_target *t, uint64_t addr, uint8_t *lt, size_t lt_cap,
                    wl_py_code *out)
{
    const wl_py_layout *L = t->lay;
    unsigned char b[256];
    memset(out, 0, sizeof(*out));
    out->linetable = lt;
    if (read_code_head(t, addr, b) != 0)
        return -EFAULT;
    /* A freed and reused object, or (3.13) a frame running something else,
     * is not described. */
    if (t->code_type && get_u64(b, 8) != t->code_type)
        return 0;
    int32_t first;
    memcpy(&first, b + L->co_firstlineno, 4);
    out->firstlineno = first;
    if (read_str(t, get_u64(b, L->co_qualname), out->qualname, sizeof(out->qualname)) != 0 ||
        read_str(t, get_u64(b, L->co_filename), out->filename, sizeof(out->filename)) != 0)
        return 0; /* not a code object (3.13 frames may run others): valid stays 0 */
    uint64_t tab = get_u64(b, L->co_linetable);
    unsigned char bh[8];
    if (wl_py_read(t, tab + L->bytes_size, bh, 8) == 0) {
        int64_t n = (int64_t)get_u64(bh, 0);
        if (n > 0) {
            size_t want = (size_t)n < lt_cap ? (size_t)n : lt_cap;
            if (wl_py_read(t, tab + L->bytes_sval, lt, want) == 0)
                out->linetable_len = want;
        }
    }
    out->valid = out->qualname[0] != '\0';
    return 0;
}

/* ---- the location table (3.11+: Objects/locations.md) ---- */

static unsigned read_varint(const uint8_t *tab, size_t len, size_t *p)
{
    unsigned val = 0, shift = 0;
    while (*p < len && shift < 32) {
        unsigned b = tab[(*p)++];
        val |= (b & 63u) << shift;
        shift += 6;
        if (!(b & 64))
            break;
    }
    return val;
}

static int read_svarint(const uint8_t *tab, size_t len, size_t *p)
{
    unsigned u = read_varint(tab, len, p);
    return (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
}

int wl_py_line(const uint8_t *tab, size_t len, int firstlineno, int lasti)
{
    if (lasti < 0)
        return firstlineno;
    int line = firstlineno;
    int addr = 0;
    size_t p = 0;
    while (p < len) {
        uint8_t first = tab[p++];
        if (!(first & 0x80))
            break; /* not an entry start: the table is damaged or cut */
        int code = (first >> 3) & 15;
        int length = (first & 7) + 1;
        int has_line = 1;
        if (code == 15) {
            has_line = 0;
        } else if (code == 14) {
            line += read_svarint(tab, len, &p);
            read_varint(tab, len, &p); /* end line */
            read_varint(tab, len, &p); /* column + 1 */
            read_varint(tab, len, &p); /* end column + 1 */
        } else if (code == 13) {
            line += read_svarint(tab, len, &p);
        } else if (code >= 10) {
            line += code - 10;
            p += 2;
        } else {
            p += 1;
        }
        if (lasti < addr + length)
            return has_line ? line : -1;
        addr += length;
    }
    return -1;
}

/* ---- finding the interpreter ---- */

/* Looks up names[i] in path's .dynsym into values[i] (0 when absent).
 * Returns how many were found, or -errno. */
static int elf_dynsyms(const char *path, const char *const *names, uint64_t *values, int count)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int found = 0;
    Elf64_Shdr *sh = NULL;
    char *strtab = NULL;
    Elf64_Sym *syms = NULL;
    Elf64_Ehdr eh;
    for (int i = 0; i < count; i++)
        values[i] = 0;
    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096)
        goto out;
    sh = malloc((size_t)eh.e_shnum * sizeof(*sh));
    if (!sh || pread(fd, sh, (size_t)eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff) !=
                   (ssize_t)((size_t)eh.e_shnum * sizeof(*sh)))
        goto out;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh.e_shnum)
            continue;
        const Elf64_Shdr *ss = &sh[sh[i].sh_link];
        if (sh[i].sh_size > (64u << 20) || ss->sh_size > (64u << 20) ||
            sh[i].sh_entsize != sizeof(Elf64_Sym))
            break;
        syms = malloc(sh[i].sh_size);
        strtab = malloc(ss->sh_size + 1);
        if (!syms || !strtab ||
            pread(fd, syms, sh[i].sh_size, (off_t)sh[i].sh_offset) != (ssize_t)sh[i].sh_size ||
            pread(fd, strtab, ss->sh_size, (off_t)ss->sh_offset) != (ssize_t)ss->sh_size)
            break;
        strtab[ss->sh_size] = '\0';
        size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym);
        for (size_t k = 0; k < nsym; k++) {
            if (syms[k].st_name >= ss->sh_size || syms[k].st_shndx == SHN_UNDEF)
                continue;
            const char *nm = strtab + syms[k].st_name;
            for (int j = 0; j < count; j++) {
                if (!values[j] && strcmp(nm, names[j]) == 0) {
                    values[j] = syms[k].st_value;
                    found++;
                }
            }
        }
        break;
    }
out:
    free(syms);
    free(strtab);
    free(sh);
    close(fd);
    return found;
}

int wl_py_elf_dynsym(const char *path, const char *name, uint64_t *value)
{
    int r = elf_dynsyms(path, &name, value, 1);
    return r < 0 ? r : (r ? 0 : -ENOENT);
}

/* The load bias of path mapped at map_start (its mapping of file offset
 * 0): map_start minus the page of its first PT_LOAD's address. */
static int elf_bias(const char *path, uint64_t map_start, uint64_t *bias)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    Elf64_Ehdr eh;
    int rc = -ENOEXEC;
    if (pread(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) &&
        eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum > 0 && eh.e_phnum < 256) {
        Elf64_Phdr ph[256];
        size_t sz = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
        if (pread(fd, ph, sz, (off_t)eh.e_phoff) == (ssize_t)sz) {
            for (unsigned i = 0; i < eh.e_phnum; i++) {
                if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
                    *bias = map_start - (ph[i].p_vaddr & ~(uint64_t)0xfff);
                    rc = 0;
                    break;
                }
            }
        }
    }
    close(fd);
    return rc;
}

const wl_py_layout *wl_py_layout_for(unsigned version)
{
    if ((version >> 24) != 3)
        return NULL;
    unsigned minor = (version >> 16) & 0xff;
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
        if (layouts[i].minor == minor)
            return &layouts[i];
    return NULL;
}

static int looks_like_python(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strstr(base, "python") != NULL;
}

/* From 3.13 on, _PyRuntime starts with _Py_DebugOffsets ("xdebugpy"),
 * the interpreter's own statement of its layout: the fields the walk uses
 * must agree with the built-in table, or the walk would read garbage (a
 * patch release that moved a field, a free-threaded build). 0 or -ENOTSUP. */
static int debug_offsets_agree(const wl_py_target *t)
{
    const wl_py_layout *L = t->lay;
    uint64_t d[64];
    if (wl_py_read(t, t->runtime, d, sizeof(d)) != 0 || memcmp(d, "xdebugpy", 8) != 0)
        return -ENOTSUP;
    /* d[1] version, d[2] free_threaded; runtime_state at d[3] (size,
     * finalizing, interpreters_head); interpreter_state at d[6] (13 fields);
     * thread_state at d[19] (9); interpreter_frame at d[28] (6);
     * code_object at d[34] (10). */
    if (d[2] != 0)
        return -ENOTSUP;
    const uint64_t *is = d + 6, *ts = d + 19, *fr = d + 28, *co = d + 34;
    int ok = d[5] == L->rt_interp_head && is[2] == L->interp_next &&
             is[3] == L->interp_threads_head && ts[2] == L->ts_next && ts[4] == L->cur_frame &&
             ts[5] == L->ts_thread_id && ts[6] == L->ts_native_thread_id &&
             fr[1] == L->fr_previous && fr[2] == L->fr_code && fr[3] == L->fr_instr &&
             fr[4] == L->fr_size && fr[5] == L->fr_owner && co[1] == L->co_filename &&
             co[3] == L->co_qualname && co[4] == L->co_linetable && co[5] == L->co_firstlineno &&
             co[9] == L->co_code;
    return ok ? 0 : -ENOTSUP;
}

int wl_py_probe(int pid, unsigned version_override, wl_py_target *t)
{
    memset(t, 0, sizeof(*t));
    t->pid = pid;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[4352];
    char tried[4][256];
    int ntried = 0;
    int rc = -ENOENT;
    while (rc == -ENOENT && fgets(line, sizeof(line), f)) {
        unsigned long long lo, hi, off;
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &lo, &hi, &off, &name_at) < 3 || !name_at)
            continue;
        char *file = line + name_at;
        file[strcspn(file, "\n")] = '\0';
        if (off != 0 || file[0] != '/' || !looks_like_python(file) ||
            strlen(file) >= sizeof(tried[0]))
            continue;
        int seen = 0;
        for (int i = 0; i < ntried; i++)
            seen |= strcmp(tried[i], file) == 0;
        if (seen || ntried == 4)
            continue;
        snprintf(tried[ntried++], sizeof(tried[0]), "%s", file);
        static const char *const names[] = {"_PyRuntime", "Py_Version", "PyCode_Type"};
        uint64_t v[3];
        uint64_t bias = 0;
        if (elf_dynsyms(file, names, v, 3) < 1 || !v[0] || elf_bias(file, lo, &bias) != 0)
            continue;
        t->code_type = v[2] ? bias + v[2] : 0;
        snprintf(t->module, sizeof(t->module), "%s", file);
        t->runtime = bias + v[0];
        uint32_t ver = 0;
        if (v[1])
            wl_py_read(t, bias + v[1], &ver, 4);
        t->version = version_override ? version_override : ver;
        t->lay = wl_py_layout_for(t->version);
        if (t->lay && t->lay->minor >= 13 && debug_offsets_agree(t) != 0)
            t->lay = NULL; /* a build whose layout is not the one we know */
        rc = t->lay ? 0 : -ENOTSUP;
        if (t->lay) {
            t->gil_lo = t->runtime + t->lay->rt_gil;
            t->gil_hi = t->gil_lo + t->lay->gil_size;
        }
    }
    fclose(f);
    return rc;
}
