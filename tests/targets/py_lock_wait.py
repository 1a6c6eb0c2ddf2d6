"""A thread holds a threading.Lock while it sleeps; the main thread waits
for that lock: a wait on the program's own lock, which must not be taken
for the GIL."""
import sys
import threading
import time

lock = threading.Lock()
held = threading.Event()


def holder(seconds):
    with lock:
        held.set()
        time.sleep(seconds)


def wait_for_lock():
    with lock:
        pass


if __name__ == "__main__":
    t = threading.Thread(target=holder, args=(float(sys.argv[1]) if len(sys.argv) > 1 else 0.6,))
    t.start()
    held.wait()
    wait_for_lock()
    t.join()
