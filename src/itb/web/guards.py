"""The app's outermost ASGI layers: the request-body limit and the security headers.

Theory of operation: both wrap the whole Starlette stack, outside its ServerErrorMiddleware, so
that they apply to every answer, a 500 included (a middleware added with ``app.middleware`` runs
inside it and never sees the 500 it sends). The body limit counts bytes as they arrive, before
FastAPI reads or parses anything: a declared ``Content-Length`` over the limit is refused at
once, and a streamed (chunked) body is cut off as soon as it crosses the limit; either way the
answer is 413 and no route runs. (A 1 GB body to /api/login took the server to 5.2 GB.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "SecurityHeaders"]


async def _send_413(send: Send, max_body_bytes: int, scope: Scope) -> None:
    # the API answers JSON; a page (a form posted from a browser) answers in words
    kib = max_body_bytes // 1024
    if str(scope.get("path", "")).startswith("/api"):
        body = json.dumps({"detail": f"request body: allowed at most {max_body_bytes} bytes"})
        content_type = b"application/json"
    else:
        body = (
            "<!doctype html><title>Too much sent</title><main><h1>Too much sent</h1>"
            f"<p>The form sent more than {kib} KiB, the most a page accepts. Nothing was "
            "saved: go back, shorten what you typed and send it again.</p></main>"
        )
        content_type = b"text/html; charset=utf-8"
    encoded = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(encoded)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": encoded})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Refuse (413) any HTTP request whose body is over ``max_body_bytes``, before parsing."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send_413(send, self.max_body_bytes, scope)
            return
        over = False
        started = False
        received = 0

        async def counted_receive() -> Message:
            nonlocal over, received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over = True  # the app sees a client that went away; we answer 413
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app makes of the cut body, the answer is ours
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _send_413(send, self.max_body_bytes, scope)


class SecurityHeaders:
    """Add ``headers`` (those a response did not set itself) to every HTTP answer; over HTTPS
    also Strict-Transport-Security."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(self.headers)
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", b"max-age=31536000"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
