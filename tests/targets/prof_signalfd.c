/* prof_signalfd: blocks SIGTERM and waits for it on a signalfd, as daemons
 * that shut down gracefully do; a child sends it after 0.2 s. Exits 0 only
 * if the signal arrived through the signalfd (and was not delivered with
 * its default action to some thread that did not block it). */
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        usleep(200000);
        kill(getppid(), SIGTERM);
        _exit(0);
    }
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 100000000UL; i++)
        x += i;
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof(si));
    waitpid(child, NULL, 0);
    return n == (ssize_t)sizeof(si) && si.ssi_signo == SIGTERM ? 0 : 1;
}
