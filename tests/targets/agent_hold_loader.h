/* What agent_first_handler_dlsym and libagent_hold_loader.so share: the
 * executable's exported wl_test_hold, found by the library's constructor. */
#ifndef WL_TESTS_AGENT_HOLD_LOADER_H
#define WL_TESTS_AGENT_HOLD_LOADER_H

struct wl_test_hold {
    _Atomic int entered;   /* the constructor runs (the loader's lock held) */
    _Atomic int done;      /* the main thread computed its share */
    _Atomic int timed_out; /* the constructor gave up waiting for it */
    _Atomic int failed;    /* the constructor found no wl_test_hold */
};

#endif
