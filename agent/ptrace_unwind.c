/*
 * ptrace_unwind.c -- native stacks of running processes from outside (see
 * wlprof/rstacks.h for what it does and why).
 *
 * One sample of a running thread, in the ptrace worker thread:
 *
 *   PTRACE_SEIZE ─ PTRACE_INTERRUPT ─ waitpid ─ GETREGSET ─ copy the top
 *   SNAP_BYTES of its stack (process_vm_readv) ─ PTRACE_DETACH
 *                                   └───── the pause, measured ─────┘
 *   then, at the next tick in the sampling thread, with the target
 *   running again: libunwind over the copy.
 *
 * The unwinder's accessors (below) answer memory reads inside the copied
 * stack from the copy, reads of read-only file mappings (.eh_frame and its
 * index) through a small page cache, and anything else with a live
 * process_vm_readv; registers come from the saved set (for a blocked
 * thread only sp and pc are known). Finding the unwind tables is left to
 * libunwind-ptrace's _UPT_find_proc_info, which maps the module's file.
 * libunwind passes the _UPT handle to our accessors from inside
 * find_proc_info, so they find their context in `cur`, not in their
 * argument (unwinding happens in the sampling thread only, one at a time;
 * the worker only stops, copies and lets go, see "the ptrace worker").
 *
 * Data: procs (one per pid: address space, _UPT handle, module list, page
 * cache, output file) and threads (one per tid: the CPU not yet given to a
 * sample, the blocked stretch in progress) in flat arrays found through
 * bmap; leaves (per module+offset, for the live function table).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libunwind-ptrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>

#include "bmap.h"
#include "symbolize.h"
#include "wire.h"
#include "wlprof/rstacks.h"

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_REMOTE_UNWIND 1
#endif

#define SNAP_BYTES (32 * 1024)   /* stack copied per stop: bounds the pause */
#define MAX_FRAMES 128           /* WL_WIRE_MAX_FRAMES */
#define STOPS_PER_TICK 8         /* running threads stopped per tick at most */
#define PAGE_CACHE 64            /* pages of read-only mappings per process */
#define MAPS_REREAD_S 0.5        /* an unknown pc rereads the maps at most this often */

struct rmod {
    uint64_t lo, hi, bias;
    char *path;
};

struct ro_range {
    uint64_t lo, hi;
};

struct page {
    uint64_t addr; /* page address, 0 = empty */
    unsigned char data[4096];
};

struct rproc {
    int pid;
    unw_addr_space_t as;
    void *upt;
    FILE *f;                 /* agent-PID-0.wls */
    struct rmod *mods;
    size_t nmods;
    struct ro_range *ro;     /* read-only file mappings: cacheable */
    size_t nro;
    struct page *pages;      /* PAGE_CACHE entries, direct-mapped */
    double maps_at;          /* when the maps were read */
    uint64_t last_tick;      /* the tick it was last seen in */
    unsigned seq;            /* files written for this pid (pids are reused) */
    bool retired;            /* gone: file closed, unwinder state freed */
    uint64_t vdso_lo, vdso_hi; /* the kernel's [vdso]: not a file libunwind can map */
    unw_dyn_info_t vdso_di;  /* its .eh_frame_hdr table, read from the target */
    bool vdso_ready;
};

struct rthread {
    int pid, tid;
    uint64_t slices;
    bool have_slices;
    double run_s, wait_s;       /* cumulative values at the last tick */
    uint64_t utime, stime;
    double cpu_acc;             /* on-CPU seconds not yet in a sample */
    uint64_t du_acc, ds_acc;    /* user/system clock ticks behind cpu_acc */
    char comm[16];
    bool named;
    /* the blocked stretch in progress */
    bool waiting;
    uint16_t call;
    double wait_acc;
    uint64_t pcs[MAX_FRAMES];
    uint32_t npcs;
    int32_t leaf;               /* index into leaves, -1 none */
};

struct leaf {
    uint32_t path;              /* index into paths, UINT32_MAX: no module */
    uint64_t rel;
    double cpu_s, wait_s;
    int32_t func;               /* index into funcs, -1 until symbolised */
};

/* A request to the ptrace worker and its answer (see below). */
enum { SLOT_FREE, SLOT_ASKED, SLOT_BUSY, SLOT_DONE };
#define NSLOTS 8

struct slot {
    int state;                  /* guarded by wl_rstacks.mu */
    uint64_t seq;               /* order of asking */
    int pid, tid;
    int err;                    /* errno of a failed stop, 0 */
    uint64_t regs[40];
    uint64_t known;
    uint64_t stack_lo;
    size_t stack_len;
    double pause;               /* stop to detach, seconds */
    unsigned char stack[SNAP_BYTES];
};

/* One unwind's context (see the header comment). */
struct uctx {
    struct rproc *p;
    uint64_t regs[40];
    uint64_t known;             /* bit n: regs[n] is valid */
    const unsigned char *stack;
    uint64_t stack_lo;
    size_t stack_len;
};

struct wl_rstacks {
    char dir[4096];
    char vdso_path[4200];       /* the vdso image copied into dir, "" none */
    double hz;
    char notice[256];
    wl_rstacks_stats st;
    struct rproc *procs;
    size_t nprocs, capprocs;
    wl_bmap proc_map;
    struct rthread *threads;
    size_t nthreads, capthreads;
    wl_bmap thread_map;
    wl_thread_tick *pending;    /* this tick's observations (strings copied) */
    char (*pending_sys)[24];
    char (*pending_comm)[17];
    size_t npending, cappending, capstrings;
    unsigned rotate;            /* fairness among running threads */
    /* the ptrace worker */
    pthread_t worker;
    bool worker_started, quit, worker_stuck;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t seq;
    struct slot slots[NSLOTS];
    /* live function table */
    char **paths;
    size_t npaths, cappaths;
    wl_bmap path_map;
    struct leaf *leaves;
    size_t nleaves, capleaves;
    wl_bmap leaf_map;
    wl_rstacks_func *funcs;
    size_t nfuncs, capfuncs;
    wl_bmap func_map;
    wl_symbolizer *sym;
    wl_rstacks_sample_fn sample_fn;
    void *sample_ctx;
    double now;
    uint64_t ticks;
};

static struct uctx *cur;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int reserve(void **arr, size_t *cap, size_t n, size_t es)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * es);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

/* ---- memory of the target ---- */

static long read_remote(int pid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    return (long)process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

static int in_ro(const struct rproc *p, uint64_t addr)
{
    for (size_t i = 0; i < p->nro; i++)
        if (addr >= p->ro[i].lo && addr < p->ro[i].hi)
            return 1;
    return 0;
}

static int read_word(struct rproc *p, uint64_t addr, uint64_t *val)
{
    uint64_t page = addr & ~(uint64_t)4095;
    if (p->pages && (addr & 4095) <= 4096 - 8 && in_ro(p, addr)) {
        struct page *pg = &p->pages[(page >> 12) % PAGE_CACHE];
        if (pg->addr != page) {
            if (read_remote(p->pid, page, pg->data, 4096) != 4096) {
                pg->addr = 0;
                return -1;
            }
            pg->addr = page;
        }
        memcpy(val, pg->data + (addr & 4095), 8);
        return 0;
    }
    return read_remote(p->pid, addr, val, 8) == 8 ? 0 : -1;
}

/* ---- libunwind accessors ---- */

#ifdef HAVE_REMOTE_UNWIND
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

/* The vdso's unwind table: its ELF image is in the target's memory (the
 * kernel maps it, there is no file), linked at 0, its .eh_frame_hdr in the
 * usual encoding (pcrel eh_frame pointer, udata4 count, datarel sdata4
 * table), as libunwind's own dl_iterate_phdr path reads it. */
static int vdso_table(struct rproc *p)
{
    unsigned char img[16384];
    uint64_t len = p->vdso_hi - p->vdso_lo;
    if (len > sizeof(img) || read_remote(p->pid, p->vdso_lo, img, len) != (long)len)
        return -1;
    Elf64_Ehdr eh;
    memcpy(&eh, img, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len)
        return -1;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_GNU_EH_FRAME || ph.p_offset + 12 > len)
            continue;
        const unsigned char *hdr = img + ph.p_offset;
        if (hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b)
            return -1;
        uint32_t count;
        memcpy(&count, hdr + 8, 4);
        memset(&p->vdso_di, 0, sizeof(p->vdso_di));
        p->vdso_di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
        p->vdso_di.start_ip = p->vdso_lo;
        p->vdso_di.end_ip = p->vdso_hi;
        p->vdso_di.u.rti.segbase = p->vdso_lo + ph.p_vaddr;
        p->vdso_di.u.rti.table_data = p->vdso_lo + ph.p_vaddr + 12;
        p->vdso_di.u.rti.table_len = count * 8 / sizeof(unw_word_t);
        p->vdso_ready = true;
        return 0;
    }
    return -1;
}

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need,
                              void *arg)
{
    struct rproc *p = cur->p;
    if (ip >= p->vdso_lo && ip < p->vdso_hi) {
        if (!p->vdso_ready && vdso_table(p) < 0)
            return -UNW_ENOINFO;
        return UNW_OBJ(dwarf_search_unwind_table)(as, ip, &p->vdso_di, pi, need, arg);
    }
    return _UPT_find_proc_info(as, ip, pi, need, p->upt);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    (void)arg;
    _UPT_put_unwind_info(as, pi, cur->p->upt);
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *dil, void *arg)
{
    (void)as, (void)dil, (void)arg;
    return -UNW_ENOINFO;
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
                          void *arg)
{
    (void)as, (void)arg;
    if (write)
        return -UNW_EINVAL;
    struct uctx *u = cur;
    if (addr >= u->stack_lo && addr - u->stack_lo + sizeof(*val) <= u->stack_len) {
        memcpy(val, u->stack + (addr - u->stack_lo), sizeof(*val));
        return 0;
    }
    uint64_t v;
    if (read_word(u->p, addr, &v) < 0)
        return -UNW_EINVAL;
    *val = (unw_word_t)v;
    return 0;
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
                          void *arg)
{
    (void)as, (void)arg;
    if (write || reg < 0 || reg >= 40 || !(cur->known & (1ull << reg)))
        return -UNW_EBADREG;
    *val = (unw_word_t)cur->regs[reg];
    return 0;
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
                            void *arg)
{
    (void)as, (void)reg, (void)val, (void)write, (void)arg;
    return -UNW_EBADREG;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as, (void)c, (void)arg;
    return -UNW_EINVAL;
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                             unw_word_t *off, void *arg)
{
    (void)as, (void)addr, (void)buf, (void)len, (void)off, (void)arg;
    return -UNW_ENOINFO;
}

static unw_accessors_t accessors = {
    .find_proc_info = acc_find_proc_info,
    .put_unwind_info = acc_put_unwind_info,
    .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
    .access_mem = acc_access_mem,
    .access_reg = acc_access_reg,
    .access_fpreg = acc_access_fpreg,
    .resume = acc_resume,
    .get_proc_name = acc_get_proc_name,
};

#if defined(__x86_64__)
#define REG_SP UNW_X86_64_RSP
#define REG_PC UNW_X86_64_RIP
/* user_regs_struct into libunwind's numbering. */
static void regs_from_user(struct uctx *u, const struct user_regs_struct *r)
{
    const unsigned long long v[17] = {r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi,
                                      r->rbp, r->rsp, r->r8,  r->r9,  r->r10, r->r11,
                                      r->r12, r->r13, r->r14, r->r15, r->rip};
    for (int i = 0; i < 17; i++)
        u->regs[i] = v[i];
    u->known = (1ull << 17) - 1;
}
#elif defined(__aarch64__)
#define REG_SP UNW_AARCH64_SP
#define REG_PC UNW_AARCH64_PC
static void regs_from_user(struct uctx *u, const struct user_regs_struct *r)
{
    for (int i = 0; i < 31; i++)
        u->regs[i] = r->regs[i];
    u->regs[UNW_AARCH64_SP] = r->sp;
    u->regs[UNW_AARCH64_PC] = r->pc;
    u->known = (1ull << 33) - 1;
}
#endif

/* Unwinds from the registers and stack copy in u. Returns the frames. */
static uint32_t unwind(struct uctx *u, uint64_t *pcs)
{
    unw_cursor_t c;
    cur = u;
    uint32_t n = 0;
    if (unw_init_remote(&c, u->p->as, u) == 0) {
        do {
            unw_word_t ip = 0;
            if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
                break;
            pcs[n++] = ip;
        } while (n < MAX_FRAMES && unw_step(&c) > 0);
    } else if (u->known & (1ull << REG_PC)) {
        pcs[n++] = u->regs[REG_PC]; /* no unwind info: the leaf alone */
    }
    cur = NULL;
    return n;
}
#endif /* HAVE_REMOTE_UNWIND */

/* ---- modules of a process ---- */

/* The load bias of the mapping [lo, ..) of path at file offset off: lo
 * minus the virtual address the ELF file gives that offset. */
static int elf_bias(const char *path, uint64_t lo, uint64_t off, uint64_t *bias)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = -1;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    size_t n;
    if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            GElf_Phdr ph;
            if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
                continue;
            uint64_t seg_off = ph.p_offset & ~(uint64_t)4095;
            if (off >= seg_off && off < ph.p_offset + ph.p_filesz) {
                uint64_t seg_va = ph.p_vaddr - (ph.p_offset - seg_off);
                *bias = lo - (seg_va + (off - seg_off));
                rc = 0;
                break;
            }
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    return rc;
}

static void free_modules(struct rproc *p)
{
    for (size_t i = 0; i < p->nmods; i++)
        free(p->mods[i].path);
    free(p->mods);
    free(p->ro);
    p->mods = NULL;
    p->ro = NULL;
    p->nmods = p->nro = 0;
}

static int write_modules(struct rproc *p);

/* The vdso has no file to symbolise it from: its image (the same for
 * every process on this kernel) is copied once into our directory as a
 * file named "[vdso]". Returns its path, or "[vdso]" when it cannot. */
static const char *vdso_file(wl_rstacks *r, int pid, uint64_t lo, uint64_t hi)
{
    if (r->vdso_path[0])
        return r->vdso_path;
    unsigned char img[16384];
    uint64_t len = hi - lo;
    if (len > sizeof(img) || read_remote(pid, lo, img, len) != (long)len ||
        memcmp(img, ELFMAG, SELFMAG) != 0)
        return "[vdso]";
    char path[sizeof(r->vdso_path)];
    snprintf(path, sizeof(path), "%s/[vdso]", r->dir);
    FILE *f = fopen(path, "we");
    if (!f)
        return "[vdso]";
    int ok = fwrite(img, 1, len, f) == len;
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        return "[vdso]";
    }
    memcpy(r->vdso_path, path, sizeof(path));
    return r->vdso_path;
}

/* (Re)reads /proc/PID/maps: executable file mappings become modules,
 * read-only file mappings cacheable ranges. */
static int read_maps(wl_rstacks *r, struct rproc *p)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    free_modules(p);
    size_t capm = 0, capr = 0;
    char line[4352];
    while (fgets(line, sizeof(line), f)) {
        unsigned long long lo, hi, off;
        char perms[8];
        int pos = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &lo, &hi, perms, &off, &pos) < 4 ||
            pos == 0)
            continue;
        char *name = line + pos;
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, "[vdso]") == 0) {
            p->vdso_lo = lo;
            p->vdso_hi = hi;
            p->vdso_ready = false;
            /* kernel pages, read-only: cacheable */
            if (reserve((void **)&p->ro, &capr, p->nro, sizeof(*p->ro)) == 0)
                p->ro[p->nro++] = (struct ro_range){lo, hi};
            if (reserve((void **)&p->mods, &capm, p->nmods, sizeof(*p->mods)) == 0 &&
                (p->mods[p->nmods].path = strdup(vdso_file(r, p->pid, lo, hi))) != NULL) {
                p->mods[p->nmods].lo = lo;
                p->mods[p->nmods].hi = hi;
                p->mods[p->nmods++].bias = lo;
            }
            continue;
        }
        if (name[0] != '/')
            continue;
        if (perms[1] != 'w' && reserve((void **)&p->ro, &capr, p->nro, sizeof(*p->ro)) == 0)
            p->ro[p->nro++] = (struct ro_range){lo, hi};
        if (perms[2] != 'x')
            continue;
        uint64_t bias;
        if (elf_bias(name, lo, off, &bias) < 0)
            bias = lo - off;
        if (reserve((void **)&p->mods, &capm, p->nmods, sizeof(*p->mods)) < 0)
            break;
        char *copy = strdup(name);
        if (!copy)
            break;
        p->mods[p->nmods++] = (struct rmod){lo, hi, bias, copy};
    }
    fclose(f);
    p->maps_at = r->now;
    if (p->pages)
        memset(p->pages, 0, PAGE_CACHE * sizeof(*p->pages));
#ifdef HAVE_REMOTE_UNWIND
    if (p->as)
        unw_flush_cache(p->as, 0, 0);
    if (p->upt) { /* its cached ELF image may be of an unmapped file */
        _UPT_destroy(p->upt);
        p->upt = _UPT_create(p->pid);
    }
#endif
    return write_modules(p);
}

static const struct rmod *module_of(const struct rproc *p, uint64_t pc)
{
    for (size_t i = 0; i < p->nmods; i++)
        if (pc >= p->mods[i].lo && pc < p->mods[i].hi)
            return &p->mods[i];
    return NULL;
}

/* ---- the output file (agent/wire.h) ---- */

static int put_rec(struct rproc *p, const void *rec, size_t len)
{
    if (!p->f)
        return -EBADF;
    return fwrite(rec, 1, len, p->f) == len ? 0 : -EIO;
}

static int write_modules(struct rproc *p)
{
    if (!p->f)
        return 0;
    size_t size = 16;
    for (size_t i = 0; i < p->nmods; i++)
        size += (26 + strlen(p->mods[i].path) + 7) & ~(size_t)7;
    unsigned char *buf = calloc(1, size);
    if (!buf)
        return -ENOMEM;
    wl_wire_rec h = {WL_REC_MODULES, 0, (uint32_t)size};
    memcpy(buf, &h, sizeof(h));
    uint32_t count = (uint32_t)p->nmods;
    memcpy(buf + 8, &count, 4);
    size_t off = 16;
    for (size_t i = 0; i < p->nmods; i++) {
        const struct rmod *m = &p->mods[i];
        uint16_t len = (uint16_t)strlen(m->path);
        memcpy(buf + off, &m->bias, 8);
        memcpy(buf + off + 8, &m->lo, 8);
        memcpy(buf + off + 16, &m->hi, 8);
        memcpy(buf + off + 24, &len, 2);
        memcpy(buf + off + 26, m->path, len);
        off += (26 + (size_t)len + 7) & ~(size_t)7;
    }
    int rc = put_rec(p, buf, size);
    free(buf);
    return rc;
}

static void open_file(wl_rstacks *r, struct rproc *p)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/" WL_WIRE_FILE_PREFIX "%d-%u" WL_WIRE_FILE_SUFFIX, r->dir,
             p->pid, p->seq++);
    p->f = fopen(path, "we");
    if (!p->f)
        return;
    wl_wire_header hdr;
    memset(&hdr, 0, sizeof(hdr));
    memcpy(hdr.magic, WL_WIRE_MAGIC, 8);
    hdr.version = WL_WIRE_VERSION;
    hdr.pid = p->pid;
    hdr.hz = r->hz;
    char exe[64];
    snprintf(exe, sizeof(exe), "/proc/%d/exe", p->pid);
    ssize_t n = readlink(exe, hdr.exe, sizeof(hdr.exe) - 1);
    if (n < 0)
        hdr.exe[0] = '\0';
    fwrite(&hdr, sizeof(hdr), 1, p->f);
}

static void write_thread_name(struct rproc *p, struct rthread *t)
{
    wl_wire_thread rec;
    memset(&rec, 0, sizeof(rec));
    rec.h = (wl_wire_rec){WL_REC_THREAD, 0, sizeof(rec)};
    rec.tid = t->tid;
    memcpy(rec.name, t->comm, sizeof(rec.name));
    put_rec(p, &rec, sizeof(rec));
    t->named = true;
}

/* ---- live function table ---- */

static int32_t leaf_for(wl_rstacks *r, const struct rproc *p, uint64_t pc, bool is_return)
{
    uint64_t look = is_return && pc ? pc - 1 : pc;
    const struct rmod *m = module_of(p, look);
    struct leaf key = {UINT32_MAX, look, 0, 0, -1};
    if (m) {
        uint32_t id = (uint32_t)r->npaths;
        int rc = wl__bmap_intern(&r->path_map, m->path, strlen(m->path), &id);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            if (reserve((void **)&r->paths, &r->cappaths, r->npaths, sizeof(*r->paths)) < 0)
                return -1;
            r->paths[r->npaths++] = strdup(m->path);
        }
        key.path = id;
        key.rel = look - m->bias;
    }
    uint64_t k[2] = {key.path, key.rel};
    uint32_t id = (uint32_t)r->nleaves;
    int rc = wl__bmap_intern(&r->leaf_map, k, sizeof(k), &id);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (reserve((void **)&r->leaves, &r->capleaves, r->nleaves, sizeof(*r->leaves)) < 0)
            return -1;
        r->leaves[r->nleaves++] = key;
    }
    return (int32_t)id;
}

int wl_rstacks_functions(wl_rstacks *r, const wl_rstacks_func **out, size_t *n)
{
    if (!r->sym)
        r->sym = wl__sym_new();
    if (!r->sym)
        return -ENOMEM;
    for (size_t i = 0; i < r->nfuncs; i++)
        r->funcs[i].cpu_s = r->funcs[i].wait_s = 0;
    for (size_t i = 0; i < r->nleaves; i++) {
        struct leaf *l = &r->leaves[i];
        if (l->func < 0) {
            char *func = NULL, *file = NULL;
            const char *mod;
            int line;
            if (l->path == UINT32_MAX) {
                char buf[32];
                snprintf(buf, sizeof(buf), "0x%" PRIx64, l->rel);
                func = strdup(buf);
                mod = "?";
            } else {
                const char *path = r->paths[l->path];
                if (wl__sym_lookup(r->sym, path, l->rel, &func, &file, &line) < 0)
                    return -ENOMEM;
                free(file);
                mod = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
            }
            if (!func)
                return -ENOMEM;
            size_t lf = strlen(func), lm = strlen(mod);
            char *key = malloc(lf + lm + 2);
            char *module = strdup(mod);
            if (!key || !module) {
                free(func);
                free(key);
                free(module);
                return -ENOMEM;
            }
            memcpy(key, func, lf + 1);
            memcpy(key + lf + 1, mod, lm + 1);
            uint32_t id = (uint32_t)r->nfuncs;
            int rc = wl__bmap_intern(&r->func_map, key, lf + lm + 2, &id);
            free(key);
            if (rc == 0 &&
                reserve((void **)&r->funcs, &r->capfuncs, r->nfuncs, sizeof(*r->funcs)) == 0) {
                r->funcs[r->nfuncs++] = (wl_rstacks_func){func, module, 0, 0};
            } else {
                free(func);
                free(module);
                if (rc != 1)
                    return -ENOMEM;
            }
            l->func = (int32_t)id;
        }
        r->funcs[l->func].cpu_s += l->cpu_s;
        r->funcs[l->func].wait_s += l->wait_s;
    }
    *out = r->funcs;
    *n = r->nfuncs;
    return 0;
}

/* ---- samples ---- */

static uint16_t call_of(const char *syscall)
{
    static const char *const names[WL_CALL_COUNT] = {
#define WL_CALL_NAME(name) #name,
        WL_WIRE_CALLS(WL_CALL_NAME)
#undef WL_CALL_NAME
    };
    for (int i = 0; i < WL_CALL_COUNT; i++)
        if (strcmp(names[i], syscall) == 0)
            return (uint16_t)i;
    if (strcmp(syscall, "pread64") == 0)
        return WL_CALL_pread;
    if (strcmp(syscall, "pwrite64") == 0)
        return WL_CALL_pwrite;
    return WL_CALL_COUNT; /* futex & co: a wait without a call name */
}

/* Rereads the maps when a pc falls outside every known module (a dlopen,
 * an exec), at most every MAPS_REREAD_S. */
static void check_pcs(wl_rstacks *r, struct rproc *p, const uint64_t *pcs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (module_of(p, pcs[i]))
            continue;
        if (r->now - p->maps_at >= MAPS_REREAD_S)
            read_maps(r, p);
        return;
    }
}

static void emit_cpu(wl_rstacks *r, struct rproc *p, struct rthread *t, const uint64_t *pcs,
                     uint32_t n)
{
    check_pcs(r, p, pcs, n);
    unsigned char buf[sizeof(wl_wire_cpu) + MAX_FRAMES * 8];
    wl_wire_cpu rec;
    memset(&rec, 0, sizeof(rec));
    rec.h = (wl_wire_rec){WL_REC_CPU, (uint16_t)n, (uint32_t)(sizeof(rec) + n * 8)};
    rec.tid = t->tid;
    uint64_t ns = (uint64_t)(t->cpu_acc * 1e9 + 0.5);
    uint64_t ticks = t->du_acc + t->ds_acc;
    rec.cpu_ns = ns;
    rec.user_ns = ticks ? (uint64_t)((double)ns * (double)t->du_acc / (double)ticks) : ns;
    rec.sys_ns = ns - rec.user_ns;
    memcpy(buf, &rec, sizeof(rec));
    memcpy(buf + sizeof(rec), pcs, n * 8);
    if (!t->named)
        write_thread_name(p, t);
    put_rec(p, buf, rec.h.size);
    if (n > 0) {
        int32_t leaf = leaf_for(r, p, pcs[0], false);
        if (leaf >= 0)
            r->leaves[leaf].cpu_s += t->cpu_acc;
    }
    if (r->sample_fn)
        r->sample_fn(r->sample_ctx, t->pid, t->tid, true, t->cpu_acc);
    r->st.cpu_samples++;
    t->cpu_acc = 0;
    t->du_acc = t->ds_acc = 0;
}

static void emit_wait(struct rproc *p, struct rthread *t)
{
    if (!t->waiting)
        return;
    t->waiting = false;
    if (t->wait_acc <= 0)
        return;
    unsigned char buf[sizeof(wl_wire_wait) + MAX_FRAMES * 8];
    wl_wire_wait rec;
    memset(&rec, 0, sizeof(rec));
    rec.h = (wl_wire_rec){WL_REC_WAIT, (uint16_t)t->npcs, (uint32_t)(sizeof(rec) + t->npcs * 8)};
    rec.tid = t->tid;
    rec.call = t->call;
    rec.wait_ns = (uint64_t)(t->wait_acc * 1e9 + 0.5);
    memcpy(buf, &rec, sizeof(rec));
    memcpy(buf + sizeof(rec), t->pcs, t->npcs * 8);
    if (!t->named)
        write_thread_name(p, t);
    put_rec(p, buf, rec.h.size);
}

/* Why ptrace said no to pid (err), in one line into notice. */
static void explain_refusal(int pid, int err, char *notice, size_t nlen)
{
    char buf[64];
    int scope = -1;
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
    if (f) {
        if (fgets(buf, sizeof(buf), f))
            scope = atoi(buf);
        fclose(f);
    }
    int tracer = 0, uid = -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "TracerPid:", 10) == 0)
            tracer = atoi(line + 10);
        else if (strncmp(line, "Uid:", 4) == 0)
            uid = atoi(line + 4);
    }
    if (f)
        fclose(f);
    const char *why;
    if (tracer > 0)
        snprintf(buf, sizeof(buf), "it is already traced by pid %d (a debugger?)", tracer), why = buf;
    else if (uid >= 0 && (uid_t)uid != geteuid() && geteuid() != 0)
        snprintf(buf, sizeof(buf), "it belongs to uid %d", uid), why = buf;
    else if (scope >= 1 && geteuid() != 0)
        snprintf(buf, sizeof(buf), "Yama ptrace_scope is %d", scope), why = buf;
    else if (err == EPERM && geteuid() == 0)
        why = "no CAP_SYS_PTRACE here (a container?)";
    else
        why = strerror(err);
    snprintf(notice, nlen, "cannot trace pid %d (%s): no stacks, /proc sampling only", pid, why);
}

static void refuse(wl_rstacks *r, int pid, int err)
{
    r->st.refused = true;
    if (!r->notice[0])
        explain_refusal(pid, err, r->notice, sizeof(r->notice));
}

int wl_rstacks_probe(int pid, char *notice, size_t nlen)
{
    notice[0] = '\0';
    char path[64], line[256];
    /* Opening mem takes the same access check as PTRACE_ATTACH (Yama too). */
    snprintf(path, sizeof(path), "/proc/%d/mem", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        explain_refusal(pid, errno, notice, nlen);
        return -EPERM;
    }
    close(fd);
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    int tracer = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "TracerPid:", 10) == 0)
            tracer = atoi(line + 10);
    if (f)
        fclose(f);
    if (tracer > 0) {
        explain_refusal(pid, EPERM, notice, nlen);
        return -EPERM;
    }
    return 0;
}

#ifdef HAVE_REMOTE_UNWIND
/* ---- the ptrace worker ----
 *
 * A runnable thread may be waiting for a CPU when we ask it to stop; it
 * stops when it gets one, which on a busy machine can take milliseconds.
 * The sampling loop must not wait for that, and a thread that has stopped
 * must not wait for the loop: so one worker thread does all the ptrace
 * work (ptrace requests must come from the thread that attached), blocked
 * in waitpid until the stop arrives and letting go at once. The loop
 * posts requests into slots and unwinds the copies the worker filled at
 * its next tick. One slot is worked on at a time: never two threads of a
 * target stopped together.
 */

/* Lets a stopped tracee go, delivering the signal it stopped for. */
static void let_go(int tid, int status)
{
    int sig = 0;
    if (WIFSTOPPED(status) && (status >> 16) == 0)
        sig = WSTOPSIG(status); /* a signal-delivery stop: pass it on */
    ptrace(PTRACE_DETACH, tid, NULL, (void *)(intptr_t)sig);
}

static int parent_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *close_paren = strrchr(buf, ')');
    return close_paren ? atoi(close_paren + 4) : -1; /* ") S PPID" */
}

/* The state letter of thread tid of pid (stat's third field), or 0 when
 * the thread is gone. */
static char thread_state(int pid, int tid)
{
    char path[96], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *cp = strrchr(buf, ')');
    return cp && cp[1] == ' ' ? cp[2] : 0;
}

/* Whether the thread is runnable right now (state R). */
static bool thread_runnable(int pid, int tid)
{
    return thread_state(pid, tid) == 'R';
}

/* Whether the stop came at the end of a wait, not in computing: in the
 * middle of a blocking call (it blocked in the microseconds before; the
 * kernel restarts the call, or returns EINTR), or on the way out of a
 * sleeping call (woken, runnable, maybe queued for a CPU for long on a
 * busy machine). Such a sample is dropped: its CPU goes to the next. */
static bool interrupted_wait(const struct user_regs_struct *regs)
{
#if defined(__x86_64__)
    long ax = (long)regs->rax, nr = (long)regs->orig_rax;
    if (nr < 0)
        return false; /* in user space */
    if (ax == -EINTR || (ax <= -512 && ax >= -516))
        return true;
    switch (nr) { /* calls that sleep until an event or a time */
    case 7: case 23: case 34: case 35: case 61: case 202: case 230: case 232: case 247:
    case 270: case 271: case 281: case 441:
        return true; /* poll select pause nanosleep wait4 futex clock_nanosleep epoll_wait
                        waitid pselect6 ppoll epoll_pwait epoll_pwait2 */
    default:
        return false;
    }
#else
    (void)regs;
    return false;
#endif
}

/* Fills slot s (pid, tid set): stop, copy, let go. */
static void worker_sample(struct slot *s)
{
    s->known = 0;
    s->stack_len = 0;
    s->pause = 0;
    s->err = 0;
    /* Seen runnable at the tick; if it has blocked since, stopping it now
     * would cut its wait short: look again, just before. */
    if (!thread_runnable(s->pid, s->tid)) {
        s->err = EAGAIN;
        return;
    }
    if (ptrace(PTRACE_SEIZE, s->tid, NULL, NULL) < 0) {
        s->err = errno;
        return;
    }
    if (ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0) {
        s->err = ESRCH; /* exited between the two calls: the kernel let go */
        return;
    }
    /* Look before taking: if it exited instead of stopping and it is our
     * own child (`wlprof top -- CMD`), its exit status belongs to the
     * session's reaper, not to us. */
    siginfo_t si;
    int rc;
    do {
        memset(&si, 0, sizeof(si));
        rc = waitid(P_PID, (id_t)s->tid, &si, WEXITED | WSTOPPED | __WALL | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        s->err = ESRCH;
        return;
    }
    if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
        s->err = ESRCH;
        if (s->tid != s->pid || parent_of(s->pid) != getpid())
            waitpid(s->tid, NULL, __WALL | WNOHANG); /* ours to take: the parent sees it next */
        return;
    }
    int status;
    pid_t w;
    while ((w = waitpid(s->tid, &status, __WALL)) < 0 && errno == EINTR)
        ;
    if (w != s->tid || !WIFSTOPPED(status)) {
        s->err = ESRCH; /* it exited instead */
        return;
    }
    /* The pause we impose runs from the stop to the detach: before the
     * stop a runnable thread may just be waiting for a CPU. */
    double t0 = mono_now();
    struct user_regs_struct regs;
    struct iovec iov = {&regs, sizeof(regs)};
    if (ptrace(PTRACE_GETREGSET, s->tid, (void *)NT_PRSTATUS, &iov) == 0 &&
        !interrupted_wait(&regs)) {
        struct uctx u = {0};
        regs_from_user(&u, &regs);
        memcpy(s->regs, u.regs, sizeof(s->regs));
        s->known = u.known;
        s->stack_lo = u.regs[REG_SP];
        long got = read_remote(s->pid, s->stack_lo, s->stack, sizeof(s->stack));
        s->stack_len = got > 0 ? (size_t)got : 0;
    }
    let_go(s->tid, status);
    s->pause = mono_now() - t0;
}

static void *worker_main(void *arg)
{
    wl_rstacks *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        struct slot *next = NULL;
        for (size_t i = 0; i < NSLOTS; i++)
            if (r->slots[i].state == SLOT_ASKED && (!next || r->slots[i].seq < next->seq))
                next = &r->slots[i];
        if (!next) {
            if (r->quit)
                break;
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        next->state = SLOT_BUSY;
        pthread_mutex_unlock(&r->mu);
        worker_sample(next);
        pthread_mutex_lock(&r->mu);
        next->state = SLOT_DONE;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Asks the worker to sample t. Returns 0, or -EBUSY when t is already
 * asked for or every slot is taken. */
static int ask_sample(wl_rstacks *r, const struct rthread *t)
{
    if (!r->worker_started) {
        if (pthread_create(&r->worker, NULL, worker_main, r) != 0)
            return -EAGAIN;
        r->worker_started = true;
    }
    int rc = -EBUSY;
    pthread_mutex_lock(&r->mu);
    struct slot *free_slot = NULL;
    bool dup = false;
    for (size_t i = 0; i < NSLOTS; i++) {
        if (r->slots[i].state == SLOT_FREE && !free_slot)
            free_slot = &r->slots[i];
        else if (r->slots[i].state != SLOT_FREE && r->slots[i].tid == t->tid)
            dup = true;
    }
    if (free_slot && !dup) {
        free_slot->pid = t->pid;
        free_slot->tid = t->tid;
        free_slot->seq = ++r->seq;
        free_slot->state = SLOT_ASKED;
        pthread_cond_signal(&r->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Whether thread tid of pid still exists and has not exited. */
static bool thread_alive(int pid, int tid)
{
    char st = thread_state(pid, tid);
    return st && st != 'Z' && st != 'X';
}

/* Counts a done slot's pause and unwinds its copy. Returns the frames. */
static uint32_t unwind_slot(wl_rstacks *r, struct rproc *p, struct slot *s, uint64_t *pcs)
{
    if (s->err == EAGAIN) {
        r->st.skipped++; /* it had blocked: no stop */
        return 0;
    }
    if (s->err) {
        /* EPERM also comes from a thread that is exiting (or mid-exec):
         * only a refusal the probe confirms stops the stacks. */
        char notice[256];
        if ((s->err == EPERM || s->err == EACCES) && thread_alive(s->pid, s->tid) &&
            wl_rstacks_probe(p->pid, notice, sizeof(notice)) < 0)
            refuse(r, p->pid, s->err);
        return 0;
    }
    r->st.stops++;
    r->st.pause_total_s += s->pause;
    if (s->pause > r->st.pause_max_s)
        r->st.pause_max_s = s->pause;
    if (!s->known)
        return 0;
    struct uctx u = {.p = p, .known = s->known, .stack = s->stack, .stack_lo = s->stack_lo,
                     .stack_len = s->stack_len};
    memcpy(u.regs, s->regs, sizeof(u.regs));
    return unwind(&u, pcs);
}

static struct rproc *proc_for(wl_rstacks *r, int pid);
static struct rthread *find_thread(wl_rstacks *r, int pid, int tid);
static void emit_cpu(wl_rstacks *r, struct rproc *p, struct rthread *t, const uint64_t *pcs,
                     uint32_t n);

/* Takes in what the worker finished since the last tick. */
static void collect_samples(wl_rstacks *r)
{
    uint64_t pcs[MAX_FRAMES];
    for (size_t i = 0; i < NSLOTS; i++) {
        struct slot *s = &r->slots[i];
        pthread_mutex_lock(&r->mu);
        int state = s->state;
        pthread_mutex_unlock(&r->mu);
        if (state != SLOT_DONE)
            continue;
        struct rproc *p = proc_for(r, s->pid);
        struct rthread *t = find_thread(r, s->pid, s->tid);
        uint32_t nf = p ? unwind_slot(r, p, s, pcs) : 0;
        if (p && t && nf > 0)
            emit_cpu(r, p, t, pcs, nf);
        pthread_mutex_lock(&r->mu);
        s->state = SLOT_FREE;
        pthread_mutex_unlock(&r->mu);
    }
}

/* Stops the worker once it has nothing in hand; gives up after a second
 * (a stop that never comes: the thread is detached when we exit). */
static void stop_worker(wl_rstacks *r)
{
    if (!r->worker_started)
        return;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < NSLOTS; i++)
        if (r->slots[i].state == SLOT_ASKED)
            r->slots[i].state = SLOT_FREE; /* not started: drop */
    r->quit = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    if (pthread_timedjoin_np(r->worker, NULL, &until) != 0) {
        pthread_detach(r->worker);
        r->worker_stuck = true; /* it still uses r: never freed */
    } else {
        collect_samples(r);
    }
    r->worker_started = false;
}

/* The stack of a thread blocked in a system call, read without stopping
 * it: sp and pc from /proc/PID/task/TID/syscall, the stack in place. If it
 * ran meanwhile (its schedstat count moved) the copy is thrown away. */
static uint32_t sample_blocked(struct rproc *p, struct rthread *t, uint64_t slices,
                               uint64_t *pcs)
{
    static unsigned char stack[SNAP_BYTES];
    char path[96], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", p->pid, t->tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0 || buf[0] < '0' || buf[0] > '9')
        return 0; /* "running", or not in a system call */
    buf[n] = '\0';
    unsigned long long v[9];
    char *s = buf, *end;
    int k = 0;
    strtol(s, &end, 10);
    for (s = end; k < 8; k++, s = end) {
        v[k] = strtoull(s, &end, 16);
        if (end == s)
            break;
    }
    if (k < 8)
        return 0;
    struct uctx u = {.p = p};
    u.regs[REG_SP] = v[6];
    u.regs[REG_PC] = v[7];
    u.known = (1ull << REG_SP) | (1ull << REG_PC);
    u.stack_lo = v[6];
    long got = read_remote(p->pid, u.stack_lo, stack, sizeof(stack));
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", p->pid, t->tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    unsigned long long a, b, c;
    if (n <= 0 || (buf[n] = '\0', sscanf(buf, "%llu %llu %llu", &a, &b, &c) != 3) || c != slices)
        return 0;
    u.stack = stack;
    u.stack_len = got > 0 ? (size_t)got : 0;
    return unwind(&u, pcs);
}

#endif

/* ---- the hooks ---- */

static void proc_init(wl_rstacks *r, struct rproc *p)
{
    p->retired = false;
    p->pages = calloc(PAGE_CACHE, sizeof(*p->pages));
#ifdef HAVE_REMOTE_UNWIND
    p->as = unw_create_addr_space(&accessors, 0);
    if (p->as)
        unw_set_caching_policy(p->as, UNW_CACHE_GLOBAL);
    p->upt = _UPT_create(p->pid);
#endif
    open_file(r, p);
    read_maps(r, p);
}

/* Releases what a process that is gone holds (its file above all: a
 * build forks thousands). A pid seen again gets a new file. */
static void proc_retire(struct rproc *p)
{
    if (p->f)
        fclose(p->f);
    p->f = NULL;
    free_modules(p);
    free(p->pages);
    p->pages = NULL;
#ifdef HAVE_REMOTE_UNWIND
    if (p->as)
        unw_destroy_addr_space(p->as);
    if (p->upt)
        _UPT_destroy(p->upt);
    p->as = NULL;
    p->upt = NULL;
#endif
    p->vdso_lo = p->vdso_hi = 0;
    p->vdso_ready = false;
    p->retired = true;
}

static struct rproc *proc_for(wl_rstacks *r, int pid)
{
    uint32_t id = (uint32_t)r->nprocs;
    int rc = wl__bmap_intern(&r->proc_map, &pid, sizeof(pid), &id);
    if (rc < 0)
        return NULL;
    struct rproc *p;
    if (rc == 1) {
        p = &r->procs[id];
        if (p->retired)
            proc_init(r, p);
    } else {
        if (reserve((void **)&r->procs, &r->capprocs, r->nprocs, sizeof(*r->procs)) < 0)
            return NULL;
        p = &r->procs[r->nprocs++];
        memset(p, 0, sizeof(*p));
        p->pid = pid;
        proc_init(r, p);
    }
    p->last_tick = r->ticks;
    return p;
}

/* Every so often: processes not seen for a while have exited. Their
 * threads' open waits are written, then they are retired. */
static void retire_gone(wl_rstacks *r)
{
    if (r->ticks % 64 != 0)
        return;
    for (size_t i = 0; i < r->nprocs; i++) {
        struct rproc *p = &r->procs[i];
        if (p->retired || p->last_tick + 16 > r->ticks)
            continue;
        for (size_t k = 0; k < r->nthreads; k++)
            if (r->threads[k].pid == p->pid)
                emit_wait(p, &r->threads[k]);
        proc_retire(p);
    }
}

static struct rthread *find_thread(wl_rstacks *r, int pid, int tid)
{
    for (size_t i = r->nthreads; i-- > 0;)
        if (r->threads[i].tid == tid && r->threads[i].pid == pid)
            return &r->threads[i];
    return NULL;
}

static struct rthread *thread_for(wl_rstacks *r, const wl_thread_tick *v)
{
    int32_t key[2] = {v->pid, v->tid};
    uint32_t id = (uint32_t)r->nthreads;
    int rc = wl__bmap_intern(&r->thread_map, key, sizeof(key), &id);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return &r->threads[id];
    if (reserve((void **)&r->threads, &r->capthreads, r->nthreads, sizeof(*r->threads)) < 0)
        return NULL;
    struct rthread *t = &r->threads[r->nthreads++];
    memset(t, 0, sizeof(*t));
    t->pid = v->pid;
    t->tid = v->tid;
    t->utime = v->utime;
    t->stime = v->stime;
    t->leaf = -1;
    return t;
}

static void on_thread(void *ctx, const wl_thread_tick *v)
{
    wl_rstacks *r = ctx;
    if (reserve((void **)&r->pending, &r->cappending, r->npending, sizeof(*r->pending)) < 0)
        return;
    if (r->capstrings < r->cappending) { /* the string buffers follow */
        size_t cap = r->cappending;
        void *s1 = realloc(r->pending_sys, cap * sizeof(*r->pending_sys));
        if (s1)
            r->pending_sys = s1;
        void *s2 = realloc(r->pending_comm, cap * sizeof(*r->pending_comm));
        if (s2)
            r->pending_comm = s2;
        if (!s1 || !s2)
            return;
        r->capstrings = cap;
    }
    size_t i = r->npending++;
    r->pending[i] = *v;
    snprintf(r->pending_sys[i], sizeof(r->pending_sys[i]), "%s", v->syscall ? v->syscall : "");
    snprintf(r->pending_comm[i], sizeof(r->pending_comm[i]), "%s", v->comm ? v->comm : "");
}

static void on_tick(void *ctx, double now)
{
    wl_rstacks *r = ctx;
    double dt = now - r->now;
    r->now = now;
    r->ticks++;
#ifdef HAVE_REMOTE_UNWIND
    collect_samples(r);
#endif
    size_t n = r->npending;
    unsigned stops = 0;
    r->rotate++;
    for (size_t k = 0; k < n; k++) {
        size_t i = (k + r->rotate) % n;
        const wl_thread_tick *v = &r->pending[i];
        struct rproc *p = proc_for(r, v->pid);
        struct rthread *t = thread_for(r, v);
        if (!p || !t)
            continue;
        if (strncmp(t->comm, r->pending_comm[i], sizeof(t->comm) - 1) != 0) {
            snprintf(t->comm, sizeof(t->comm), "%s", r->pending_comm[i]);
            t->named = false;
        }
        double d_run = v->running_s - t->run_s, d_wait = v->waiting_s - t->wait_s;
        t->run_s = v->running_s;
        t->wait_s = v->waiting_s;
        t->cpu_acc += d_run > 0 ? d_run : 0;
        t->du_acc += v->utime - t->utime;
        t->ds_acc += v->stime - t->stime;
        t->utime = v->utime;
        t->stime = v->stime;
        bool ran = !t->have_slices || v->slices != t->slices;
        t->slices = v->slices;
        t->have_slices = true;
        if (d_wait < 0)
            d_wait = 0;
        if (v->state == 'R') {
            if (t->waiting) {
                t->wait_acc += d_wait;
                if (t->leaf >= 0)
                    r->leaves[t->leaf].wait_s += d_wait;
                emit_wait(p, t);
            }
            if (r->st.refused || stops >= STOPS_PER_TICK)
                continue; /* its CPU goes to its next sample */
            /* Stop only a thread that has been getting a CPU (most of the
             * last tick on one), or one whose unsampled CPU has grown: a
             * runnable thread waiting in a busy run queue would stop only
             * once it gets its turn, give that turn up to us and queue
             * again. Its CPU goes to its next sample either way. */
            if (d_run < 0.3 * dt && t->cpu_acc < 1.0 / r->hz)
                continue;
#ifdef HAVE_REMOTE_UNWIND
            if (ask_sample(r, t) == 0)
                stops++;
#endif
            continue;
        }
        if (t->waiting && !ran) {
            t->wait_acc += d_wait;
            if (t->leaf >= 0)
                r->leaves[t->leaf].wait_s += d_wait;
            continue;
        }
        emit_wait(p, t);
        t->waiting = true;
        t->call = call_of(r->pending_sys[i]);
        t->wait_acc = d_wait;
        t->npcs = 0;
        t->leaf = -1;
#ifdef HAVE_REMOTE_UNWIND
        if (!r->st.refused) {
            t->npcs = sample_blocked(p, t, v->slices, t->pcs);
            r->st.blocked_reads++;
        }
#endif
        if (t->npcs > 0) {
            check_pcs(r, p, t->pcs, t->npcs);
            t->leaf = leaf_for(r, p, t->pcs[0], true);
            if (r->sample_fn)
                r->sample_fn(r->sample_ctx, t->pid, t->tid, false, d_wait);
        }
        if (t->leaf >= 0)
            r->leaves[t->leaf].wait_s += d_wait;
    }
    r->npending = 0;
    retire_gone(r);
}

/* ---- life cycle ---- */

int wl_rstacks_new(wl_rstacks **out, double hz, char *notice, size_t nlen)
{
    *out = NULL;
    notice[0] = '\0';
#ifndef HAVE_REMOTE_UNWIND
    (void)hz;
    snprintf(notice, nlen, "no remote stack unwinding on this architecture: /proc sampling only");
    return -ENOTSUP;
#else
    wl_rstacks *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(notice, nlen, "out of memory");
        return -ENOMEM;
    }
    r->hz = hz > 0 ? hz : 100.0;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof(r->dir), "%s/wlprof-rstacks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->dir)) {
        int err = -errno;
        snprintf(notice, nlen, "cannot create %s: %s: no stacks", r->dir, strerror(errno));
        free(r);
        return err;
    }
    *out = r;
    return 0;
#endif
}

void wl_rstacks_hook(wl_rstacks *r, wl_attach_opts *opts)
{
    opts->on_thread = on_thread;
    opts->on_tick = on_tick;
    opts->hook_ctx = r;
}

void wl_rstacks_set_sample_hook(wl_rstacks *r, wl_rstacks_sample_fn fn, void *ctx)
{
    r->sample_fn = fn;
    r->sample_ctx = ctx;
}

const char *wl_rstacks_notice(const wl_rstacks *r)
{
    return r->notice;
}

void wl_rstacks_get_stats(const wl_rstacks *r, wl_rstacks_stats *out)
{
    *out = r->st;
}

static void close_all(wl_rstacks *r)
{
#ifdef HAVE_REMOTE_UNWIND
    stop_worker(r);
#endif
    for (size_t i = 0; i < r->nprocs; i++) {
        struct rproc *p = &r->procs[i];
        if (p->retired)
            continue; /* its waits were written when it was retired */
        for (size_t k = 0; k < r->nthreads; k++)
            if (r->threads[k].pid == p->pid)
                emit_wait(p, &r->threads[k]);
        if (p->f)
            fclose(p->f);
        p->f = NULL;
    }
}

int wl_rstacks_finish(wl_rstacks *r, wl_stacks *out)
{
    close_all(r);
    int rc = wl_stacks_read(r->dir, out);
    if (r->vdso_path[0])
        unlink(r->vdso_path);
    wl_stacks_remove_dir(r->dir);
    r->dir[0] = '\0';
    return rc;
}

void wl_rstacks_free(wl_rstacks *r)
{
    if (!r)
        return;
    if (r->dir[0]) {
        close_all(r);
        if (r->vdso_path[0])
            unlink(r->vdso_path);
        wl_stacks_remove_dir(r->dir);
    }
    if (r->worker_stuck)
        return; /* a stop that never came: the kernel lets go when we exit */
    for (size_t i = 0; i < r->nprocs; i++)
        if (!r->procs[i].retired)
            proc_retire(&r->procs[i]);
    for (size_t i = 0; i < r->npaths; i++)
        free(r->paths[i]);
    for (size_t i = 0; i < r->nfuncs; i++) {
        free((char *)r->funcs[i].name);
        free((char *)r->funcs[i].module);
    }
    free(r->paths);
    free(r->funcs);
    free(r->procs);
    free(r->threads);
    free(r->leaves);
    free(r->pending);
    free(r->pending_sys);
    free(r->pending_comm);
    wl__bmap_free(&r->proc_map);
    wl__bmap_free(&r->thread_map);
    wl__bmap_free(&r->path_map);
    wl__bmap_free(&r->leaf_map);
    wl__bmap_free(&r->func_map);
    wl__sym_free(r->sym);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
