"""moto's S3 server, metered: how many bytes of each object the local stack's clients read.

What a function reads of an object is what it costs on AWS (time, and money for a large video):
``video_split`` must refuse a video over a limit from its header alone. The meter counts the body
bytes of every ``GET`` of an object (a whole object or a byte range) that moto's server answers,
per ``bucket/key``, and answers ``GET /_posepipe/s3-reads`` with them as JSON
(``{"reads": {"bucket/key": bytes}}``), which moto's S3 never serves (no bucket is named
``_posepipe``: bucket names start with a letter or digit).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote

READS_PATH = "/_posepipe/s3-reads"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class S3ReadMeter:
    """WSGI middleware over moto's server app (see the module docstring)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._reads: dict[str, int] = {}

    def reads(self) -> dict[str, int]:
        with self._lock:
            return dict(self._reads)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        if path == READS_PATH:
            body = json.dumps({"reads": self.reads()}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        bucket, _, key = unquote(path.lstrip("/")).partition("/")
        if not bucket or not key:  # a listing, not an object
            return self.app(environ, start_response)
        return self._counted(f"{bucket}/{key}", self.app(environ, start_response))

    def _counted(self, name: str, body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for piece in body:
                with self._lock:
                    self._reads[name] = self._reads.get(name, 0) + len(piece)
                yield piece
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


def metered_moto_server(host: str, port: int) -> Any:
    """moto's ``ThreadedMotoServer`` on ``host:port``, its app behind an :class:`S3ReadMeter`."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    meter = S3ReadMeter(DomainDispatcherApplication(create_backend_app))

    class MeteredMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # ThreadedMotoServer's, with the meter around the app
            self._server = make_server(
                self._ip_address, self._port, meter, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return MeteredMotoServer(ip_address=host, port=port, verbose=False)
