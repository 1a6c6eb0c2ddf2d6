/*
 * lifecycle.c -- the process's life as the agent follows it: threads
 * starting (the pthread_create trampoline) and exiting, fork (the child
 * records into its own file), exec (flush, disarm, drop a pending SIGPROF)
 * and _exit (flush). Design: agent.c, "Fork".
 */
#include <stdlib.h>
#include <sys/prctl.h>

#include "agent_core.h"
#include "pyagent.h"

/* ---- threads ---- */

struct tramp {
    void *(*start)(void *);
    void *arg;
};

void wl__on_thread_exit(void *p)
{
    struct wl_slot *s = p;
    int counted = s && wl__t.slot == s;
    if (counted) {
        wl__t.slot = NULL; /* a late SIGPROF now finds no slot */
        wl__timer_teardown(s);
        prctl(PR_GET_NAME, s->name);
        s->name[15] = '\0';
        atomic_store(&s->state, SLOT_EXITED);
    }
    wl__last_thread_exit(counted);
}

static void *trampoline(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    if (atomic_load(&wl__g.active) && wl__agent.pid == getpid()) {
        struct wl_slot *s = wl__register_self();
        if (s && wl__agent.key_ok)
            pthread_setspecific(wl__agent.key, s);
    }
    return t.start(t.arg);
}

int wl__agent_wrap_thread(void *(*start)(void *), void *arg, void *(**start_out)(void *), void **arg_out)
{
    if (!atomic_load(&wl__g.active) || wl__t.inside)
        return -1;
    struct tramp *t = malloc(sizeof(*t));
    if (!t)
        return -1;
    t->start = start;
    t->arg = arg;
    *start_out = trampoline;
    *arg_out = t;
    return 0;
}

void wl__agent_unwrap_thread(void *arg)
{
    free(arg);
}

/* ---- fork / exec / exit ---- */

void wl__atfork_prepare(void)
{
    lock_drain();
}

void wl__atfork_parent(void)
{
    unlock_drain();
}

void wl__atfork_child(void)
{
    atomic_flag_clear(&wl__drain_lock);
    if (!atomic_load(&wl__g.active))
        return;
    struct wl_slot *mine = wl__t.slot;
    int used = wl__slots_used();
    for (int i = 0; i < used; i++) {
        struct wl_slot *s = &wl__slots[i];
        atomic_store(&s->has_timer, 0); /* timers are not inherited */
        if (s != mine)
            atomic_store(&s->state, SLOT_FREE);
    }
    atomic_fetch_add(&wl__g.gen, 1);
    wl__agent.writer_running = 0;
    wl__py_agent_after_fork();
    atomic_store(&wl__agent.live_threads, mine ? 1 : 0); /* the forking thread only */
    if (wl__begin_image() != 0) {
        atomic_store(&wl__agent.cpu_on, 0);
        atomic_store(&wl__g.active, 0);
        return;
    }
    if (mine) {
        atomic_store(&mine->head, 0);
        atomic_store(&mine->tail, 0);
        atomic_store(&mine->dropped, 0);
        mine->dropped_sent = 0;
        mine->tid = sys_gettid();
        mine->tid_sent = 0;
        wl__t.gen = atomic_load(&wl__g.gen);
        wl__timer_setup(mine, mine->tid, 1);
    } else {
        wl__register_self();
    }
    wl__writer_start();
}

static void discard_pending_sigprof(void)
{
    struct sigaction ign, old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    /* Setting SIG_IGN discards a pending SIGPROF; then put ours back (exec
     * resets it to the default, which is what the new image expects). */
    if (wl__agent.real_sigaction(SIGPROF, &ign, &old) == 0)
        wl__agent.real_sigaction(SIGPROF, &old, NULL);
}

void wl__agent_before_exec(void)
{
    if (!atomic_load(&wl__g.active) || wl__agent.pid != getpid())
        return; /* also: a vfork child shares our memory but is not us */
    wl__drain_all(1);
    struct wl_slot *s = current_slot();
    if (s && atomic_load(&s->has_timer))
        wl__timer_arm(s, 0);
    discard_pending_sigprof();
}

void wl__agent_exec_failed(void)
{
    if (!atomic_load(&wl__g.active) || wl__agent.pid != getpid())
        return;
    struct wl_slot *s = current_slot();
    if (s && atomic_load(&s->has_timer) && atomic_load(&wl__agent.cpu_on))
        wl__timer_arm(s, wl__next_interval(s));
}

void wl__agent_before_exit(void)
{
    if (!atomic_load(&wl__g.active) || wl__agent.pid != getpid())
        return;
    wl__stop_timers();
    wl__drain_all(1);
}

void wl__agent_yield_sigprof(void)
{
    if (atomic_load(&wl__agent.cpu_on) && wl__agent.pid == getpid())
        wl__stop_timers();
}
