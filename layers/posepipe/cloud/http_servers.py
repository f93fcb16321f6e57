"""Small HTTP servers of the local stack (and of the endpoint's in-process mode), in threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class BackgroundServer:
    """A WSGI app served by a thread; ``stop()`` lets requests in flight finish."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        return str(self.server.host)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # joins the request threads (they are not daemons)
        self.thread.join(timeout=30)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server"
) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve ``app`` (WSGI) from a daemon thread; ``port=0`` picks a free port."""
    server = make_server(host, port, app, threaded=True)
    server.daemon_threads = False  # type: ignore[attr-defined]  # ThreadingMixIn: stop() waits for them
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"posepipe-{name}", daemon=True
    )
    thread.start()
    return server, thread


def serve_in_background(
    app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server"
) -> BackgroundServer:
    return BackgroundServer(*start_server_thread(app, host, port, name))
