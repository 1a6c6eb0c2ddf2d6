# Four pure-Python threads counting primes: CPU demand the GIL serialises.
# Label: CPU-bound, process pool; a thread pool gains nothing (<= 1.3x).
import threading
import sys


def cpu_intensive_task(limit):
    count = 0
    for n in range(2, limit):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
    return count


limit = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
threads = [threading.Thread(target=cpu_intensive_task, args=(limit,)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
