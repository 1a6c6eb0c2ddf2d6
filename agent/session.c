/*
 * session.c -- injecting the agent into a command run by `wlprof profile`.
 *
 * begin: decides whether the command can take the agent (dynamically
 * linked, not setuid/setgid), makes a private directory, and puts
 * LD_PRELOAD, WLPROF_AGENT_DIR and WLPROF_AGENT_HZ into the profiler's own
 * environment so the child (and every descendant, through exec) inherits
 * them; end: restores the environment, reads and symbolises the files, and
 * removes them. The profiler itself never loads the agent: LD_PRELOAD only
 * acts at the next exec.
 *
 * The agent library is looked up in $WLPROF_AGENT_LIB, then next to the
 * running wlprof binary (the build and install layouts both put it there).
 *
 * The directory outlives a wlprof killed with SIGKILL; whoever comes next
 * cleans it up. While a session runs it holds flock(LOCK_EX) on the
 * directory (close-on-exec, so the target does not inherit it); begin
 * removes every wlprof-stacks-* directory of ours in the same TMPDIR whose
 * lock is free and which is older than a second (so a directory between
 * mkdtemp and flock in another wlprof is never taken for stale).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wlprof/stacks.h"

static int find_agent(char *out, size_t len)
{
    const char *env = getenv("WLPROF_AGENT_LIB");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -ENOENT;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    /* Beside the binary (a build tree), then where `cmake --install` puts it. */
    int w = snprintf(out, len, "%s/libwlprof-agent.so", exe);
    if (w < 0 || (size_t)w >= len)
        return -ENAMETOOLONG;
    if (access(out, R_OK) == 0)
        return 0;
    w = snprintf(out, len, "%s/%s/libwlprof-agent.so", exe, WL_AGENT_RELDIR);
    if (w < 0 || (size_t)w >= len)
        return -ENAMETOOLONG;
    return access(out, R_OK) == 0 ? 0 : -ENOENT;
}

/* PATH lookup the way execvp does it, for inspection only. */
static int resolve_command(const char *cmd, char *out, size_t len)
{
    if (strchr(cmd, '/')) {
        snprintf(out, len, "%s", cmd);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dl = end ? (size_t)(end - path) : strlen(path);
        snprintf(out, len, "%.*s/%s", (int)dl, dl ? path : ".", cmd);
        if (access(out, X_OK) == 0)
            return 0;
        if (!end)
            break;
        path = end + 1;
    }
    return -ENOENT;
}

#define STACKS_DIR_PREFIX "wlprof-stacks-"
#define STALE_AGE_S 1

/* Removes what a killed wlprof left in tmp: our wlprof-stacks-* directories
 * nobody holds locked. Best effort. */
static void sweep_stale_dirs(const char *tmp)
{
    int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0)
        return;
    DIR *d = fdopendir(tfd);
    if (!d) {
        close(tfd);
        return;
    }
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, STACKS_DIR_PREFIX, strlen(STACKS_DIR_PREFIX)) != 0)
            continue;
        int fd = openat(tfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && now - st.st_mtime >= STALE_AGE_S &&
            flock(fd, LOCK_EX | LOCK_NB) == 0) {
            DIR *sub = fdopendir(dup(fd));
            if (sub) {
                struct dirent *f;
                while ((f = readdir(sub)) != NULL)
                    if (strcmp(f->d_name, ".") != 0 && strcmp(f->d_name, "..") != 0)
                        unlinkat(fd, f->d_name, 0);
                closedir(sub);
            }
            unlinkat(tfd, e->d_name, AT_REMOVEDIR);
        }
        close(fd);
    }
    closedir(d);
}

/* $TMPDIR as an absolute path (the target may change directory), or /tmp. */
static int temp_root(char *out, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (tmp[0] == '/') {
        snprintf(out, len, "%s", tmp);
        return 0;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return -errno;
    int w = snprintf(out, len, "%s/%s", cwd, tmp);
    return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

static char *save_env(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

int wl_stacks_session_begin(wl_stacks_session *s, const char *cmd, double hz, char *notice,
                            size_t nlen)
{
    memset(s, 0, sizeof(*s));
    notice[0] = '\0';
    char agent[PATH_MAX], target[PATH_MAX];
    if (find_agent(agent, sizeof(agent)) != 0) {
        snprintf(notice, nlen, "agent library libwlprof-agent.so not found: no stacks (/proc only)");
        return 0;
    }
    if (resolve_command(cmd, target, sizeof(target)) != 0)
        return 0; /* the profiler reports a missing command itself */
    wl_agent_target t;
    if (wl_agent_inspect_target(target, &t) != 0 || !t.dynamic) {
        snprintf(notice, nlen, "%s is statically linked: no stacks (/proc only)", cmd);
        return 0;
    }
    if (t.setid) {
        snprintf(notice, nlen, "%s is setuid/setgid, the loader ignores LD_PRELOAD: no stacks (/proc only)",
                 cmd);
        return 0;
    }
    char tmp[PATH_MAX];
    int rc = temp_root(tmp, sizeof(tmp));
    if (rc < 0) {
        snprintf(notice, nlen, "cannot find the temporary directory: %s: no stacks (/proc only)",
                 strerror(-rc));
        return rc;
    }
    sweep_stale_dirs(tmp);
    int w = snprintf(s->dir, sizeof(s->dir), "%s/" STACKS_DIR_PREFIX "XXXXXX", tmp);
    if (w < 0 || (size_t)w >= sizeof(s->dir) - 64 || !mkdtemp(s->dir)) {
        int err = w < 0 || (size_t)w >= sizeof(s->dir) - 64 ? -ENAMETOOLONG : -errno;
        snprintf(notice, nlen, "cannot create %s: %s: no stacks (/proc only)", s->dir,
                 strerror(-err));
        s->dir[0] = '\0';
        return err;
    }
    s->lock_fd_ = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lock_fd_ >= 0 && flock(s->lock_fd_, LOCK_EX | LOCK_NB) == 0) {
        s->locked_ = true;
    } else if (s->lock_fd_ >= 0) {
        close(s->lock_fd_);
    }
    s->saved_preload_ = save_env("LD_PRELOAD");
    s->saved_dir_ = save_env("WLPROF_AGENT_DIR");
    s->saved_hz_ = save_env("WLPROF_AGENT_HZ");
    s->saved_asan_ = save_env("ASAN_OPTIONS");
    char buf[3 * PATH_MAX];
    if (s->saved_preload_ && *s->saved_preload_)
        snprintf(buf, sizeof(buf), "%s:%s", agent, s->saved_preload_);
    else
        snprintf(buf, sizeof(buf), "%s", agent);
    setenv("LD_PRELOAD", buf, 1);
    setenv("WLPROF_AGENT_DIR", s->dir, 1);
    snprintf(buf, sizeof(buf), "%g", hz > 0 ? hz : 100.0);
    setenv("WLPROF_AGENT_HZ", buf, 1);
    if (t.asan) {
        /* An ASan target wants its runtime first in the library list; the
         * agent is not instrumented and does not mind coming first. */
        snprintf(buf, sizeof(buf), "%s%sverify_asan_link_order=0",
                 s->saved_asan_ ? s->saved_asan_ : "",
                 s->saved_asan_ && *s->saved_asan_ ? ":" : "");
        setenv("ASAN_OPTIONS", buf, 1);
    }
    s->active = true;
    return 0;
}

void wl_stacks_session_restore_env(wl_stacks_session *s)
{
    if (!s->active || s->env_restored_)
        return;
    restore_env("LD_PRELOAD", s->saved_preload_);
    restore_env("WLPROF_AGENT_DIR", s->saved_dir_);
    restore_env("WLPROF_AGENT_HZ", s->saved_hz_);
    restore_env("ASAN_OPTIONS", s->saved_asan_);
    s->saved_preload_ = s->saved_dir_ = s->saved_hz_ = s->saved_asan_ = NULL;
    s->env_restored_ = true;
}

int wl_stacks_session_end(wl_stacks_session *s, wl_stacks *out)
{
    memset(out, 0, sizeof(*out));
    if (!s->active)
        return -ENOENT;
    wl_stacks_session_restore_env(s);
    int err = wl_stacks_read(s->dir, out);
    wl_stacks_remove_dir(s->dir);
    if (s->locked_)
        close(s->lock_fd_);
    s->locked_ = false;
    s->active = false;
    return err;
}
