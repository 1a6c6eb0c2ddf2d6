/*
 * primes.h -- the brief's cpu_intensive_task, shared by the primes sample
 * and the process-pool benchmark: count primes by trial division up to
 * sqrt(i), deliberately naive so it is pure CPU work.
 */
#ifndef WL_SAMPLES_PRIMES_H
#define WL_SAMPLES_PRIMES_H

/* Primes p with lo <= p < hi. */
static inline long count_primes_range(long lo, long hi)
{
    long count = 0;
    for (long i = lo < 2 ? 2 : lo; i < hi; i++) {
        int prime = 1;
        for (long j = 2; j * j <= i; j++) {
            if (i % j == 0) {
                prime = 0;
                break;
            }
        }
        count += prime;
    }
    return count;
}

/* Primes below n. */
static inline long count_primes(long n)
{
    return count_primes_range(2, n);
}

#endif
