"""The app served over real HTTP on loopback, for tests that need a socket (concurrent clients,
webhooks posted by a fake, a browser): one helper so every such test starts and stops it alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def serve(app: Any, *, quiet: bool = False, name: str | None = None) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server on a free loopback port; yields its base URL
    (``http://127.0.0.1:PORT``). ``quiet`` drops werkzeug's line per request."""
    handler = _QuietHandler if quiet else WSGIRequestHandler
    server = make_server(HOST, 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
