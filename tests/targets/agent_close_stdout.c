/* agent_close_stdout: closes its stdout (a pipe to the test), then blocks
 * reading stdin until the test closes it. The reader of the pipe must see
 * EOF as soon as stdout is closed -- no other copy of the descriptor may
 * hold it open (such as one kept by the agent's writer thread). Under the
 * agent it first waits (up to 10 s) for the writer thread to exist, so the
 * writer has set up its descriptors before stdout is closed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int writer_exists(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d)) != NULL) {
        char path[300], name[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, name, sizeof(name) - 1);
        close(fd);
        found = n > 0 && strncmp(name, "wlprof-agent", 12) == 0;
    }
    if (d)
        closedir(d);
    return found;
}

int main(void)
{
    if (getenv("WLPROF_AGENT_DIR")) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        for (int i = 0; i < 2000 && !writer_exists(); i++)
            nanosleep(&ts, NULL);
        ts.tv_nsec = 50 * 1000 * 1000; /* it leaves the fd table right after naming itself */
        nanosleep(&ts, NULL);
    }
    if (write(1, "x", 1) != 1)
        return 2;
    close(1);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}
