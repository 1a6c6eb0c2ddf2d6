/*
 * inproc.c -- wl_agent_region_start/stop: the agent driven from inside the
 * program (library wl_agent). Start makes a private directory under
 * $TMPDIR and starts libwlprof-agent.so recording into it; stop flushes,
 * reads and symbolises the files (wl_stacks_read) and removes them.
 *
 * The region state is one static: only one region at a time per process
 * (the agent itself records one process image at a time).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/agent.h"

static char region_dir[4096];

int wl_agent_region_start(const wl_agent_region_opts *opts)
{
    if (region_dir[0] || wl_agent_active())
        return -EBUSY;
    const char *tmp = getenv("TMPDIR");
    snprintf(region_dir, sizeof(region_dir), "%s/wlprof-region-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(region_dir)) {
        int err = -errno;
        region_dir[0] = '\0';
        return err;
    }
    double hz = opts && opts->hz > 0 ? opts->hz : 100.0;
    double wait = opts && opts->wait_threshold_s > 0 ? opts->wait_threshold_s : 0;
    int err = wl_agent_start(region_dir, hz, wait);
    if (err) {
        wl_stacks_remove_dir(region_dir);
        region_dir[0] = '\0';
    }
    return err;
}

int wl_agent_region_stop(wl_stacks *out)
{
    memset(out, 0, sizeof(*out));
    if (!region_dir[0])
        return -EINVAL;
    int err = wl_agent_stop();
    if (err == 0)
        err = wl_stacks_read(region_dir, out);
    wl_stacks_remove_dir(region_dir);
    region_dir[0] = '\0';
    return err;
}

/* The old names (include/wlprof/agent.h): thin wrappers for one release. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int wlprof_profile_start(const wl_agent_region_opts *opts)
{
    return wl_agent_region_start(opts);
}

int wlprof_profile_stop(wl_stacks *out)
{
    return wl_agent_region_stop(out);
}
#pragma GCC diagnostic pop
