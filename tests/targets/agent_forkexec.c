/* agent_forkexec: forks; the child execs this program again with "child",
 * which burns ~0.3 s of CPU in agent_child_compute; the parent waits.
 * Usage: agent_forkexec [child]. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "burn.h"

static volatile double sink;

__attribute__((noinline)) static void agent_child_compute(void)
{
    sink = burn_cpu_for(0.3);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        agent_child_compute();
        return 0;
    }
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return 3;
    return WEXITSTATUS(st);
}
