"""Counts primes by trial division in one function of one process, for a
given amount of its own CPU time: the profiler must name
cpu_intensive_task, with this file and a line, as the top self-time
function."""
import sys
import time


def cpu_intensive_task(cpu_seconds):
    count = 0
    n = 2
    end = time.process_time() + cpu_seconds
    while True:
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
        n += 1
        if n % 512 == 0 and time.process_time() >= end:
            return count


if __name__ == "__main__":
    print(cpu_intensive_task(float(sys.argv[1]) if len(sys.argv) > 1 else 0.5))
