# The tutorial's Example 2: coroutines awaited as soon as they are made --
# no concurrency, but no blocking call inside the loop either. Label: not
# the pitfall.
import asyncio


async def fetch_data(param):
    await asyncio.sleep(param)
    return f"Result of {param}"


async def main():
    task1 = fetch_data(0.4)
    task2 = fetch_data(0.8)
    result1 = await task1
    result2 = await task2
    return [result1, result2]


asyncio.run(main())
