/*
 * parse.c -- whole numbers from the command line, one convention for every
 * subcommand: decimal digits only, the whole string, within a range.
 */
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int wl__parse_count(const char *s, long min, long max, long *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -EINVAL; /* also no leading space or '+' (strtol would take them) */
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}
