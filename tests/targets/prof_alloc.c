/* prof_alloc MB: touches MB mebibytes of memory, then exits: a known peak
 * resident set. */
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 100;
    char *p = malloc(mb << 20);
    if (!p)
        return 1;
    memset(p, 1, mb << 20);
    return p[mb] == 1 ? 0 : 2;
}
