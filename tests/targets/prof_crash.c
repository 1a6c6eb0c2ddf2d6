/* prof_crash [SECONDS]: computes for SECONDS of its CPU time (default 0.2),
 * then dies of SIGSEGV, like a buggy program. CPU time, not wall time, so a
 * loaded machine does not shrink the computing it does before the crash. */
#include <signal.h>
#include <stdlib.h>

#include "burn.h"

static volatile double sink;

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    sink = burn_cpu_for(seconds);
    raise(SIGSEGV);
    return 0;
}
