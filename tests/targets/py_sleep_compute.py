"""Waits in one function (a sleep standing in for a download) and computes
in another: each must show on its own side of the split."""
import sys
import time


def wait_for_data(seconds):
    time.sleep(seconds)


def process_data(cpu_seconds):
    total = 0
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        for i in range(1000):
            total += i * i % 7
    return total


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    wait_for_data(seconds)
    process_data(seconds)
