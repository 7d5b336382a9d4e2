"""Request body limit: a body over `max_bytes` is refused with 413 before it is all read.

A declared `Content-Length` over the limit is answered at once; a chunked body is counted
as it arrives and `BodyTooLarge` is raised from `receive` the moment it passes the limit
(the app's handler turns it into the 413).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ServingError

__all__ = ["BodyLimitMiddleware", "BodyTooLarge"]


class BodyTooLarge(ServingError):  # noqa: N818 - names the condition (413)
    """A request body is larger than the API accepts."""

    def __init__(self, limit: int, got: int | None) -> None:
        self.limit = limit
        self.got = got
        size = f"{got} bytes" if got is not None else "more"
        super().__init__(f"request body: expected at most {limit} bytes, got {size}")


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, BodyTooLarge(self.max_bytes, declared))
            return
        limit = self.max_bytes
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, None)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, error: BodyTooLarge) -> None:
    document = {"error": "payload too large", "message": str(error)}
    body = json.dumps({**document, "limit": error.limit, "got": error.got}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
