"""The kernel websocket with TCP_NODELAY, so that the live webcam's small replies are not held back.

Why: tornado leaves Nagle's algorithm on for websockets (``WebSocketHandler.set_nodelay`` is off by default,
https://www.tornadoweb.org/en/stable/websocket.html). A kernel's small reply written just after a previous one can
then wait until the browser ACKs, and Linux browsers delay ACKs by up to ~40 ms: in ``benchmarks/live_webcam.py``
an empty message there and back took 45-55 ms with Nagle on and 4-12 ms with TCP_NODELAY; on an idle 2-core
machine the widget's end-to-end latency (camera frame to painted bars) fell from a 63 ms to a 42 ms median
(18.7 → 19.0 frames/s), and under load from 93 to 56 ms (8.4 → 14.0 frames/s)
(``benchmarks/results/live_webcam.json``).

How: jupyter_server's configurable ``ServerApp.kernel_websocket_connection_class`` names the class that joins a
browser's kernel websocket to the kernel; :class:`NoDelayWebsocketConnection` is the default one with the
socket's TCP_NODELAY set when it connects. ``python -m widgets.kernel_websocket`` (run by ``make bootstrap``; the
student bundle's install steps and docs/deployment.md's hub image run it too) sets it in the environment's server
config, ``PREFIX/etc/jupyter/jupyter_server_config.json``, keeping whatever else that file holds. (A
``jupyter_server_config.d/*.json`` file would not do: jupyter_server reads only the extension list from those.)
One-off, without installing: ``jupyter lab
--ServerApp.kernel_websocket_connection_class=widgets.kernel_websocket.NoDelayWebsocketConnection``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

#: The class, by the name a server config gives it.
CLASS_NAME = "widgets.kernel_websocket.NoDelayWebsocketConnection"


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):
    """jupyter_server's ZMQ channels connection, with TCP_NODELAY on the browser's websocket."""

    def connect(self):
        """Set TCP_NODELAY on the (open) websocket, then connect as jupyter_server does."""
        self.websocket_handler.set_nodelay(True)
        return ZMQChannelsWebsocketConnection.connect(self)


def install_config(prefix: str | Path = sys.prefix) -> Path:
    """Set ``ServerApp.kernel_websocket_connection_class`` to :data:`CLASS_NAME` in
    ``PREFIX/etc/jupyter/jupyter_server_config.json`` (created when missing; other settings there are kept).

    Returns the file written. Raises ``ValueError`` naming the file when it exists but is not a JSON object, and
    ``OSError`` when it cannot be written.
    """
    path = Path(prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    config = {}
    if path.is_file():
        try:
            config = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); fix or remove it, then run this again") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path}: expected a JSON object, found {type(config).__name__}")
    config.setdefault("ServerApp", {})["kernel_websocket_connection_class"] = CLASS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(f"Jupyter servers of {sys.prefix} now use TCP_NODELAY on kernel websockets: {install_config()}")
