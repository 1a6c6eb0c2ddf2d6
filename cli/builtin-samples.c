/*
 * builtin-samples.c -- `wlprof samples`: the built-in sample workloads that
 * `wlprof run --sample NAME` runs, with their forms and default job count.
 */
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "wlprof/run.h"
#include "wlprof/samples.h"

int cmd_samples(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: wlprof samples\n\nLists the sample workloads of 'wlprof run --sample "
               "NAME'.\nThe same tasks are in build/libwlprof-samples.so for --lib "
               "(--task sample_NAME).\n");
        return WL_EXIT_OK;
    }
    if (argc > 1) {
        wl__cli_error("samples", "takes no arguments (see --help)");
        return WL_EXIT_USAGE;
    }
    size_t n;
    const wl_sample *s = wl_samples(&n);
    printf("%-14s %-16s %5s  %s\n", "NAME", "FORMS", "JOBS", "WHAT");
    for (size_t i = 0; i < n; i++) {
        const char *forms = s[i].task.blocking && s[i].task.async ? "blocking, async"
                            : s[i].task.async                     ? "async"
                                                                  : "blocking";
        printf("%-14s %-16s %5d  %s\n", s[i].name, forms, s[i].default_jobs, s[i].summary);
    }
    printf("\nRun one: wlprof run --sample NAME [--jobs N] [--executor E] [--json FILE]\n");
    return WL_EXIT_OK;
}
