# The tutorial's Example 3: create_task schedules both coroutines on the
# loop, they wait concurrently. Label: not the pitfall.
import asyncio


async def fetch_data(param):
    await asyncio.sleep(param)
    return f"Result of {param}"


async def main():
    task1 = asyncio.create_task(fetch_data(0.5))
    task2 = asyncio.create_task(fetch_data(1.0))
    result1 = await task1
    result2 = await task2
    return [result1, result2]


asyncio.run(main())
