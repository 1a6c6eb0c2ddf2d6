/*
 * corpus_sleep_loop.c -- label: I/O-bound, thread pool (blocking sleeps).
 *
 * The brief's Example 1: fetch_data() that calls time.sleep(). Twelve
 * 100 ms sleeps with a sliver of work between them, about 1.2 s in all.
 */
#include <stdio.h>
#include <time.h>

int main(void)
{
    unsigned long acc = 0;
    for (int i = 0; i < 12; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0)
            ;
        for (int j = 0; j < 10000; j++)
            acc = acc * 31 + (unsigned long)j;
    }
    printf("sleep_loop: done (%lu)\n", acc % 1000);
    return 0;
}
