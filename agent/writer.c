/*
 * writer.c -- the consumer side: the output file (one per process image,
 * wire.h), draining every ring into it with the module list and thread
 * names, and the writer thread that does so every 50-200 ms ("Drain
 * period").
 * Design: agent.c, "Threading rules".
 */
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "agent_core.h"
#include "pyagent.h"

/* ---- output (holder of wl__drain_lock only) ---- */

static unsigned char g_out[WL_OUTBUF_BYTES]; /* consumer's batch, under wl__drain_lock */
static size_t g_out_len;

/* The writer thread keeps its own descriptor of the file: it lives in the
 * writer's private fd table (writer_leave_fd_table), where the target can
 * neither see nor close it. Opening, appending and closing by path on every
 * drain cost the writer ~60 us a cycle on ext4 (perf trace: openat ~20 us,
 * close, and the path walk), most of its CPU on a CPU-bound target. Every
 * other drainer (exit, exec, stop: a target thread in the shared table)
 * still opens by path. */
static __thread int tl_writer; /* this thread is the writer, in its own fd table */

static int out_fd(int *keep)
{
    *keep = tl_writer;
    if (tl_writer && wl__agent.writer_fd >= 0)
        return wl__agent.writer_fd;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, wl__agent.path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0 && tl_writer)
        wl__agent.writer_fd = fd;
    return fd;
}

void wl__out_flush(void)
{
    if (!g_out_len)
        return;
    int keep;
    int fd = out_fd(&keep);
    if (fd >= 0) {
        size_t off = 0;
        while (off < g_out_len) {
            ssize_t w = syscall(SYS_write, fd, g_out + off, g_out_len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (!keep)
            syscall(SYS_close, fd);
    }
    g_out_len = 0;
}

static void out_put(const void *p, size_t n)
{
    if (g_out_len + n > sizeof(g_out))
        wl__out_flush();
    if (n > sizeof(g_out)) /* cannot happen: records are < 2 KiB, modules capped */
        return;
    memcpy(g_out + g_out_len, p, n);
    g_out_len += n;
}

struct mod_walk {
    unsigned char buf[64 * 1024];
    size_t len;
    uint32_t count;
    int changed_only;
    int unchanged;
};

static int mod_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct mod_walk *w = arg;
    (void)size;
    if (w->changed_only) {
        w->changed_only = 0;
        if (wl__agent.mods_written && info->dlpi_adds == wl__agent.mod_adds && info->dlpi_subs == wl__agent.mod_subs) {
            w->unchanged = 1;
            return 1;
        }
        wl__agent.mod_adds = info->dlpi_adds;
        wl__agent.mod_subs = info->dlpi_subs;
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (hi == 0)
        return 0;
    const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : wl__agent.exe;
    size_t plen = strlen(name);
    if (plen > 1000)
        plen = 1000;
    size_t ent = (26 + plen + 7) & ~(size_t)7;
    if (w->len + ent > sizeof(w->buf))
        return 1;
    unsigned char *p = w->buf + w->len;
    memset(p, 0, ent);
    uint64_t bias = info->dlpi_addr;
    uint16_t l16 = (uint16_t)plen;
    memcpy(p, &bias, 8);
    memcpy(p + 8, &lo, 8);
    memcpy(p + 16, &hi, 8);
    memcpy(p + 24, &l16, 2);
    memcpy(p + 26, name, plen);
    w->len += ent;
    w->count++;
    return 0;
}

void wl__emit_modules(int changed_only)
{
    static struct mod_walk w; /* under wl__drain_lock */
    w.len = 16; /* header + count + pad */
    w.count = 0;
    w.changed_only = changed_only;
    w.unchanged = 0;
    dl_iterate_phdr(mod_cb, &w);
    if (w.unchanged)
        return;
    wl_wire_rec h = {.type = WL_REC_MODULES, .nframes = 0, .size = (uint32_t)w.len};
    memcpy(w.buf, &h, sizeof(h));
    memcpy(w.buf + 8, &w.count, 4);
    memset(w.buf + 12, 0, 4);
    out_put(w.buf, w.len);
    wl__agent.mods_written = 1;
}

static void emit_thread(struct wl_slot *s)
{
    wl_wire_thread r;
    memset(&r, 0, sizeof(r));
    r.h.type = WL_REC_THREAD;
    r.h.size = sizeof(r);
    r.tid = s->tid;
    memcpy(r.name, s->name, 16);
    r.name[15] = '\0';
    out_put(&r, sizeof(r));
    memcpy(s->name_sent, s->name, 16);
    s->tid_sent = s->tid;
}

static uint64_t g_max_pending; /* largest backlog of a ring in this drain */

static void drain_slot(struct wl_slot *s, int refresh_name, int final)
{
    int st = atomic_load(&s->state);
    if (st != SLOT_LIVE && st != SLOT_EXITED)
        return;
    if (refresh_name && st == SLOT_LIVE)
        wl__read_task_name(s->tid, s->name);
    if (s->tid_sent != s->tid || memcmp(s->name, s->name_sent, 16) != 0)
        emit_thread(s);
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    if (head - tail > g_max_pending)
        g_max_pending = head - tail;
    while (tail < head) {
        uint64_t pos = tail % WL_RING_BYTES;
        const wl_wire_rec *r = (const wl_wire_rec *)(s->ring + pos);
        if (r->size < sizeof(*r) || r->size > WL_RING_BYTES - pos)
            break; /* corrupt: give up on this batch rather than loop */
        /* A sample's Python frames follow it in the same reservation; the
         * code objects they name are described before both, so that the
         * two stay adjacent in the file. */
        const wl_wire_rec *next = (const wl_wire_rec *)(s->ring + pos + r->size);
        if ((r->type == WL_REC_CPU || r->type == WL_REC_WAIT) && tail + r->size < head &&
            pos + r->size + sizeof(*next) <= WL_RING_BYTES && next->type == WL_REC_PYFRAMES &&
            next->size <= WL_RING_BYTES - pos - r->size)
            wl__py_agent_describe(next, out_put, final);
        if (r->type != WL_REC_PAD)
            out_put(r, r->size);
        tail += r->size;
    }
    atomic_store_explicit(&s->tail, head, memory_order_release);
    uint64_t d = atomic_load(&s->dropped);
    if (d != s->dropped_sent) {
        wl_wire_dropped r;
        memset(&r, 0, sizeof(r));
        r.h.type = WL_REC_DROPPED;
        r.h.size = sizeof(r);
        r.tid = s->tid;
        r.count = d - s->dropped_sent;
        out_put(&r, sizeof(r));
        s->dropped_sent = d;
    }
    if (st == SLOT_EXITED)
        atomic_store(&s->state, SLOT_FREE);
}

/* Whether any ring has something for the file: records or a drop. */
static int anything_to_write(void)
{
    int used = wl__slots_used();
    for (int i = 0; i < used; i++) {
        struct wl_slot *s = &wl__slots[i];
        int st = atomic_load(&s->state);
        if ((st == SLOT_LIVE || st == SLOT_EXITED) &&
            (atomic_load_explicit(&s->head, memory_order_acquire) != atomic_load(&s->tail) ||
             atomic_load(&s->dropped) != s->dropped_sent))
            return 1;
    }
    return 0;
}

/* A lazy image with no file yet: exited threads' slots are free again. */
static void free_exited_slots(void)
{
    int used = wl__slots_used();
    for (int i = 0; i < used; i++)
        if (atomic_load(&wl__slots[i].state) == SLOT_EXITED)
            atomic_store(&wl__slots[i].state, SLOT_FREE);
}

/* A lazy image announces itself in the tally file (wire.h) when it starts:
 * one O_APPEND write, so it is counted even when it records nothing or is
 * killed before its final flush. */
static void tally_image(void)
{
    char path[sizeof(wl__agent.dir) + 32];
    snprintf(path, sizeof(path), "%s/" WL_WIRE_TALLY_FILE, wl__agent.dir);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    wl_wire_empty e = {.pid = wl__agent.pid, .pad = 0, .start_mono_ns = wl__agent.start_ns};
    (void)!syscall(SYS_write, fd, &e, sizeof(e));
    syscall(SYS_close, fd);
}

/* Drains every ring to the file (made now when lazy and first needed).
 * Caller holds wl__drain_lock. */
void wl__drain_all_locked(int final)
{
    if (!wl__agent.file_open) {
        if (!anything_to_write()) {
            free_exited_slots();
            return;
        }
        int err = wl__open_file();
        if (err) {
            /* The directory went away or filled up: nothing can be kept. */
            wl__notice(wl__agent.dir, -err);
            atomic_store(&wl__agent.cpu_on, 0);
            atomic_store(&wl__g.active, 0);
            return;
        }
    }
    uint64_t now = mono_ns();
    int refresh = final || now - wl__agent.names_ns >= WL_NAME_REFRESH_NS;
    if (refresh)
        wl__agent.names_ns = now;
    wl__emit_modules(1);
    int used = wl__slots_used();
    for (int i = 0; i < used; i++)
        drain_slot(&wl__slots[i], refresh, final);
    wl__out_flush();
}

void wl__drain_all(int final)
{
    lock_drain();
    if (atomic_load(&wl__g.active) && wl__agent.pid == getpid())
        wl__drain_all_locked(final);
    unlock_drain();
}

/* Whether any thread of the process is alive besides the caller and, when
 * it is not the caller, the writer (excluded: how many of those two are
 * running). The writer is an ordinary thread, so when the target's last
 * thread leaves through pthread_exit (main included), the writer would
 * keep the process alive for ever: glibc ends a process only when its last
 * thread exits.
 *
 * One read of /proc/self/stat tells: num_threads counts every thread,
 * including a leader that has exited (pthread_exit in main) and stays a
 * zombie until the whole group ends; the state field is the leader's. The
 * writer keeps the file open in its own table and preads it: one system
 * call a cycle, where a walk of /proc/self/task cost an opendir, a
 * getdents and an open/read/close per thread. fd < 0: open it by path. */
static int others_alive(int fd, int excluded)
{
    char buf[512];
    int own = fd < 0;
    if (own)
        fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1; /* when /proc cannot tell, assume the target still runs */
    ssize_t n = syscall(SYS_pread64, fd, buf, sizeof(buf) - 1, (off_t)0);
    if (own)
        syscall(SYS_close, fd);
    if (n <= 0)
        return 1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 1;
    char state = p[2];
    /* after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads(20) */
    p += 2;
    for (int field = 3; field < 20; field++) {
        p = strchr(p, ' ');
        if (!p)
            return 1;
        p++;
    }
    long threads = strtol(p, NULL, 10);
    if (threads <= 0)
        return 1;
    /* A zombie leader is never the caller (it runs this) nor the writer. */
    long alive = threads - excluded - (state == 'Z' || state == 'X' ? 1 : 0);
    return alive > 0;
}

/* The writer's own file-descriptor table.
 *
 * A thread shares the process's fd table (CLONE_FILES), and while a table
 * has more than one user the kernel can no longer take the light path of
 * fdget() on every read/write/...: each call then takes and drops a
 * reference on the file (two atomic RMWs on a shared cache line). For a
 * single-threaded target, the writer alone made its table shared. Measured
 * (dd bs=64 of /dev/zero to /dev/null, 4 M calls, 2-vCPU KVM guest, CPU
 * time, median of 5): bare 0.55 s; plus one idle thread 0.76-0.93 s
 * (glibc's cancellation wrapper in user space + fget in the kernel); the
 * same idle thread after close_range(CLOSE_RANGE_UNSHARE) 0.61-0.67 s, all
 * of it user time: system time back to the bare 0.30 s. The interposers'
 * direct syscalls (interpose.c) remove the user half; this removes the
 * kernel half.
 *
 * So the writer leaves the shared table as soon as it runs, closing its
 * copies of every descriptor (a copy of a pipe's write end would keep the
 * reader from seeing EOF). It opens its output file by path on every drain
 * and needs no descriptor of the target. WLPROF_AGENT_SHARED_FDS=1 keeps
 * the table shared (to measure the difference).
 *
 * The price: the process's table is now released when its last target
 * thread exits, not when the process does. When the target's last thread
 * leaves through pthread_exit (main included), glibc would have called
 * exit(0) in that thread; with the writer alive it does not, and the
 * writer's exit(0) below would run atexit handlers and flush stdio with no
 * descriptors. wl__last_thread_exit() (the thread-exit destructor) therefore
 * calls exit(0) itself, in the last thread, while its descriptors are
 * still open. */
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
static void writer_leave_fd_table(void)
{
#ifdef SYS_close_range
    const char *keep = getenv("WLPROF_AGENT_SHARED_FDS");
    if (keep && strcmp(keep, "1") == 0)
        return;
    if (syscall(SYS_close_range, 0u, ~0u, CLOSE_RANGE_UNSHARE) == 0)
        atomic_store(&wl__agent.writer_private_fds, 1);
#endif
}

/* Thread-exit path of a target thread: when no other target thread is
 * alive, end the process as glibc would have (see above). */
void wl__last_thread_exit(int counted)
{
    /* Only the last counted thread looks at /proc (threads the agent did
     * not register are found there), so thread exits stay O(1). */
    if (counted && atomic_fetch_sub(&wl__agent.live_threads, 1) > 1)
        return;
    int writer = atomic_load(&wl__agent.writer_tid);
    if (!atomic_load(&wl__agent.writer_private_fds) || !writer || wl__agent.pid != getpid() ||
        !atomic_load(&wl__g.active))
        return;
    if (!others_alive(-1, writer == sys_gettid() ? 1 : 2))
        exit(0);
}

/* Drain period. Every drain costs the writer a wake-up and an append to the
 * file (~25 us of system time on ext4, most of it the write and its mtime
 * update), whether it moves 200 bytes or 20 KiB. A CPU-bound thread at
 * 100 Hz fills ~2 KiB of its 64 KiB ring in 50 ms, so the writer starts at
 * WL_DRAIN_PERIOD_NS and doubles its sleep while every ring it drains held
 * under 1/16 of a ring, up to WL_DRAIN_MAX_PERIOD_NS; a ring over 1/4 full
 * brings it back to the shortest. A producer whose ring passes half full
 * wakes it at once (ring_commit: a futex), so a burst does not wait for
 * the long sleep. Measured (the writer's own CPU from its schedstat, 0.75 s
 * CPU-bound target at 100 Hz, 3 runs each): 2.96-3.11 ms with 50 ms drains
 * that reopened the file and walked /proc/self/task; 1.36-1.58 ms keeping
 * its descriptors; 0.57-0.61 ms with this period.
 * The price of the long sleep: a target killed by a signal it does not
 * catch (SIGKILL, or a default SIGINT) loses up to 200 ms of records
 * instead of 50 ms; one that exits, execs or is stopped loses nothing. */
static uint64_t next_period(uint64_t period, int nudged)
{
    if (nudged || g_max_pending > WL_RING_BYTES / 4)
        return WL_DRAIN_PERIOD_NS;
    if (g_max_pending < WL_RING_BYTES / 16 && period < WL_DRAIN_MAX_PERIOD_NS)
        return period * 2 < WL_DRAIN_MAX_PERIOD_NS ? period * 2 : WL_DRAIN_MAX_PERIOD_NS;
    return period;
}

/* Sleeps period ns or until nudged; returns whether it was nudged. */
static int writer_sleep(uint64_t period)
{
    struct timespec ts = {(time_t)(period / 1000000000ull), (long)(period % 1000000000ull)};
    if (!atomic_load(&wl__agent.writer_wake))
        syscall(SYS_futex, &wl__agent.writer_wake, 0 /* FUTEX_WAIT */ | 128 /* _PRIVATE */, 0, &ts, NULL, 0);
    return atomic_exchange(&wl__agent.writer_wake, 0);
}

static void *writer_main(void *arg)
{
    (void)arg;
    wl__t.inside = 1; /* our own calls are never recorded */
    prctl(PR_SET_NAME, "wlprof-agent");
    writer_leave_fd_table();
    tl_writer = atomic_load(&wl__agent.writer_private_fds);
    /* Only in a table of its own may the writer keep descriptors open. */
    int stat_fd = tl_writer ? (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC) : -1;
    atomic_store(&wl__agent.writer_tid, sys_gettid());
    uint64_t period = WL_DRAIN_PERIOD_NS;
    unsigned cycle = 0;
    while (!atomic_load(&wl__agent.writer_stop)) {
        int nudged = writer_sleep(period);
        if (atomic_load(&wl__agent.writer_stop))
            break;
        wl__clock_calibrate();
        g_max_pending = 0;
        wl__drain_all(0);
        period = next_period(period, nudged);
        /* While a thread the agent counted is alive, its own exit looks
         * (wl__last_thread_exit); this is the backstop for threads that
         * left without it (a raw exit system call), so it may be slower. */
        if ((atomic_load(&wl__agent.live_threads) <= 0 || ++cycle % WL_LIVENESS_CYCLES == 0) &&
            !others_alive(stat_fd, 1))
            exit(0); /* what the last thread's pthread_exit would have done */
    }
    return NULL;
}

void wl__writer_start(void)
{
    atomic_store(&wl__agent.writer_stop, 0);
    atomic_store(&wl__agent.writer_tid, 0);
    atomic_store(&wl__agent.writer_private_fds, 0);
    wl__agent.writer_fd = -1; /* a descriptor of an earlier writer's table is not ours */
    atomic_store(&wl__agent.writer_wake, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    /* The writer blocks every signal (it inherits the mask at creation):
     * otherwise the kernel may hand it a process-directed signal the target
     * keeps blocked on purpose (to read it from a signalfd or sigwait), and
     * the default action kills the target. */
    sigset_t all, old;
    sigfillset(&all);
    wl__agent.real_sigmask(SIG_SETMASK, &all, &old);
    wl__t.inside++;
    wl__agent.writer_running = wl__agent.real_pthread_create(&wl__agent.writer, &attr, writer_main, NULL) == 0;
    wl__t.inside--;
    wl__agent.real_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* ---- file ---- */

int wl__open_file(void)
{
    static unsigned seq;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(wl__agent.path, sizeof(wl__agent.path), "%s/" WL_WIRE_FILE_PREFIX "%d-%llu-%u" WL_WIRE_FILE_SUFFIX,
                 wl__agent.dir, wl__agent.pid, (unsigned long long)mono_ns(), seq++);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, wl__agent.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -errno;
        wl_wire_header h;
        memset(&h, 0, sizeof(h));
        memcpy(h.magic, WL_WIRE_MAGIC, 8);
        h.version = WL_WIRE_VERSION;
        h.pid = wl__agent.pid;
        h.ppid = wl__agent.ppid;
        h.hz = wl__agent.hz;
        h.wait_threshold_s = (double)wl__g.threshold_ns * 1e-9;
        h.start_mono_ns = wl__agent.start_ns;
        memcpy(h.exe, wl__agent.exe, sizeof(h.exe));
        ssize_t w = syscall(SYS_write, fd, &h, sizeof(h));
        int err = w == (ssize_t)sizeof(h) ? 0 : (w < 0 ? -errno : -EIO);
        syscall(SYS_close, fd);
        wl__agent.mods_written = 0;
        wl__agent.file_open = err == 0;
        wl__py_agent_new_file();
        return err;
    }
    return -EEXIST;
}

int wl__begin_image(void)
{
    wl__agent.pid = getpid();
    wl__agent.ppid = getppid(); /* a lazy file may come after a reparenting */
    wl__agent.start_ns = mono_ns();
    wl__agent.file_open = 0;
    if (!wl__agent.lazy)
        return wl__open_file();
    tally_image();
    return 0;
}
