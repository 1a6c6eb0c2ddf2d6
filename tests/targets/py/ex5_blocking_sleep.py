# The tutorial's Example 5: time.sleep inside create_task'd coroutines
# blocks the whole event loop. Label: the pitfall, in fetch_data, calling
# time.sleep.
import asyncio
import time


def log(msg):
    pass


async def fetch_data(param):
    log(f"Do something with {param}...")
    time.sleep(param)
    log(f"Done with {param}")
    return f"Result of {param}"


async def main():
    task1 = asyncio.create_task(fetch_data(0.4))
    task2 = asyncio.create_task(fetch_data(0.8))
    result1 = await task1
    result2 = await task2
    return [result1, result2]


asyncio.run(main())
