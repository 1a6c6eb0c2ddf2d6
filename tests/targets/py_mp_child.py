"""Computes in a multiprocessing child (start method from argv: fork,
spawn, forkserver; or "pool": a ProcessPoolExecutor worker): the child's
Python function must be named too."""
import multiprocessing
import sys
import time


def child_compute(cpu_seconds):
    total = 0
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        for i in range(1000):
            total += i * i % 7
    return total


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "pool":
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1) as pool:
            pool.submit(child_compute, 0.4).result()
        sys.exit(0)
    ctx = multiprocessing.get_context(sys.argv[1] if len(sys.argv) > 1 else "fork")
    p = ctx.Process(target=child_compute, args=(0.4,))
    p.start()
    p.join()
    sys.exit(p.exitcode)
