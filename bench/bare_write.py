"""The floor of an HTTP write on this machine: a bare aiohttp handler that only parses the body
and CAS-publishes it to JetStream (``Nats-Msg-Id``, ``Nats-Expected-Last-Subject-Sequence``),
on the same nats-server, the same event loop (``ledger.event_loop``) and the same HTTP interface
as the API (``POST /api/v1/config/{service}``). No auth, validation, hashing, schema, rollout
guard, metrics, stream follower or logging: what Config Ledger's write costs beyond this is ours.

    python -m bench.bare_write <nats_url> <port>
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import nats
import orjson
from aiohttp import web

from ledger import event_loop
from ledger.nats_io import EXPECTED_LAST_SUBJECT_SEQ, MSG_ID

STREAM, PREFIX = "BENCH_BARE", "bench.bare"


async def serve(nats_url: str, port: int) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=[f"{PREFIX}.>"])
    last: dict[str, int] = {}

    async def post(request: web.Request) -> web.Response:
        service = request.match_info["service"]
        doc = orjson.loads(await request.read())
        headers = {MSG_ID: str(uuid.uuid4()), EXPECTED_LAST_SUBJECT_SEQ: str(last.get(service, 0))}
        ack = await js.publish(f"{PREFIX}.{service}", orjson.dumps({"service": service, "config": doc}),
                               headers=headers)
        last[service] = ack.seq
        return web.Response(body=orjson.dumps({"status": "success", "seq": ack.seq}), content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/v1/config/{service}", post)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    event_loop.run(serve(sys.argv[1], int(sys.argv[2])))
