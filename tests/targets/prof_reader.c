/* prof_reader: reads stdin until EOF with blocking read(2) and prints the
 * byte count; fed slowly through a pipe it spends its life waiting on it. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    char buf[4096];
    long total = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof(buf))) > 0)
        total += n;
    printf("%ld\n", total);
    return n < 0;
}
