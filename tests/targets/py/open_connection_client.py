# An asyncio downloader: N concurrent HTTP GETs with asyncio.open_connection
# against a local server (argv[1] = port) run by another process. Correct
# asyncio: every wait is awaited. Label: not the pitfall.
import asyncio
import sys


async def download(port, i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /img/{i} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return len(data)


async def main(port, n):
    sizes = await asyncio.gather(*(download(port, i) for i in range(n)))
    return sum(sizes)


total = asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 12))
print(total)
