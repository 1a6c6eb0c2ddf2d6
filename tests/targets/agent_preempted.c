/* agent_preempted [CPU_SECONDS]: quick reads of /dev/zero that never block
 * but are preempted all the time: this process and a spinning child share
 * one CPU (both pinned to the CPU this process started on). Runs until its
 * own CPU time reaches CPU_SECONDS (default 0.6), then kills the child. A
 * correct agent records (almost) no waiting in agent_preempted_reads: being
 * switched out involuntarily is run-queue time, not a blocking call. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static int agent_preempted_reads(double seconds)
{
    int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char b[64];
    while (cpu_s() < seconds)
        for (int i = 0; i < 1000; i++)
            if (read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
                return -1;
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.6;
    cpu_set_t one;
    CPU_ZERO(&one);
    int cpu = sched_getcpu();
    CPU_SET(cpu >= 0 ? cpu : 0, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        return 77;
    pid_t spinner = fork();
    if (spinner < 0)
        return 2;
    if (spinner == 0) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    }
    int rc = agent_preempted_reads(seconds);
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
    return rc == 0 ? 0 : 3;
}
