"""Four pure-Python threads counting primes, each for a given amount of its
own CPU time: they take turns on the GIL, so nearly all the time a thread
does not run it waits for the GIL, not for I/O or a lock of the program."""
import sys
import threading
import time


def count_primes(cpu_seconds):
    count = 0
    n = 2
    end = time.thread_time() + cpu_seconds
    while True:
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
        n += 1
        if n % 256 == 0 and time.thread_time() >= end:
            return count


if __name__ == "__main__":
    cpu = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3
    threads = [threading.Thread(target=count_primes, args=(cpu,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
