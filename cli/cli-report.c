/*
 * cli-report.c -- the steps the subcommands that read saved reports share
 * (report, recommend, diff): the one REPORT.json operand, the output rules
 * checked before any work, and loading a report into a profile.
 */
#include <getopt.h>
#include <string.h>

#include "builtin.h"

int wl__cli_one_report(const char *cmd, int argc, char **argv, const char **path)
{
    if (optind >= argc) {
        wl__cli_error(cmd, "no report given (usage: wlprof %s [OPTIONS] REPORT.json)", cmd);
        return CLI_PARSE_ERROR;
    }
    if (optind + 1 < argc) {
        wl__cli_error(cmd, "one report at a time ('%s' is extra)", argv[optind + 1]);
        return CLI_PARSE_ERROR;
    }
    *path = argv[optind];
    return CLI_PARSE_OK;
}

int wl__cli_check_outputs(const char *cmd, const wl_outputs *paths)
{
    char err[1024];
    if (wl_outputs_check(paths, err, sizeof(err)) < 0) {
        wl__cli_error(cmd, "%s", err);
        return -1;
    }
    return 0;
}

int wl__cli_load_report(const char *cmd, const char *path, json_t **root, wl_profile *prof)
{
    char err[512];
    *root = NULL;
    memset(prof, 0, sizeof(*prof));
    if (wl_report_load(path, root, err, sizeof(err)) < 0) {
        wl__cli_error(cmd, "%s", err);
        return -1;
    }
    if (wl_report_from_json(*root, prof, err, sizeof(err)) < 0) {
        wl__cli_error(cmd, "%s: %s", path, err);
        json_decref(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}
