"""Small HTTP servers of the local stack, run in background threads on loopback."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class BackgroundServer:
    """A WSGI app served by a thread; ``port=0`` picks a free port."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def serve_in_background(
    app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server"
) -> BackgroundServer:
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"posepipe-{name}", daemon=True)
    thread.start()
    return BackgroundServer(server=server, thread=thread)
