# Two sequential sleeps of 0.5 s and 1.0 s: no executor can make this run
# faster than its longest wait, so every prediction is <= 2x.
import time


def first():
    time.sleep(0.5)


def second():
    time.sleep(1.0)


first()
second()
