"""An aiohttp application on a TCP port, on the running event loop: how `serve` runs the HTTP
API and the console beside the relay (several relay processes share each port)."""

from __future__ import annotations

from aiohttp import web


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int, *, reuse_port: bool) -> None:
        self.runner = web.AppRunner(app, access_log=None)
        self.host, self.port, self.reuse_port = host, port, reuse_port

    async def start(self) -> int:
        """Listen; the port bound (the one asked for, or the kernel's choice for 0)."""
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        return int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        await self.runner.cleanup()
