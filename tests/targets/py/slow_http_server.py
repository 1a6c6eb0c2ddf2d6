# A local HTTP server for the downloader tests, run outside the profiled
# tree: binds an ephemeral port, prints it, answers every GET after a delay
# (argv[1] seconds) with 64 KiB. Exits when stdin closes.
import asyncio
import sys

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
BODY = b"x" * 65536


async def handle(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(DELAY)
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    sys.stdout.write("%d\n" % server.sockets[0].getsockname()[1])
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: done.done() or done.set_result(None))
    await done


asyncio.run(main())
