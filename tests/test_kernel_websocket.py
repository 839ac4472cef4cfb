"""TCP_NODELAY on the kernel websocket (widgets/kernel_websocket.py): the class, its config, a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from conftest import REPO
from widgets.kernel_websocket import CLASS_NAME, NoDelayWebsocketConnection, install_config


def test_the_connection_sets_nodelay_before_connecting(monkeypatch):
    calls = []

    class Handler:
        def set_nodelay(self, value):
            calls.append(("set_nodelay", value))

    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect", lambda self: calls.append(("connect",)))
    fake = type("Connection", (), {"websocket_handler": Handler()})()
    NoDelayWebsocketConnection.connect(fake)
    assert calls == [("set_nodelay", True), ("connect",)], f"expected nodelay then connect, found {calls}"


def test_install_config_keeps_other_settings(tmp_path):
    path = tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"ServerApp": {"port": 9999}, "FileContentsManager": {"delete_to_trash": False}}))
    assert install_config(tmp_path) == path
    config = json.loads(path.read_text())
    assert config == {
        "ServerApp": {"port": 9999, "kernel_websocket_connection_class": CLASS_NAME},
        "FileContentsManager": {"delete_to_trash": False},
    }, f"found {config}"


def test_install_config_refuses_a_broken_file(tmp_path):
    path = tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="jupyter_server_config.json: not valid JSON"):
        install_config(tmp_path)


@pytest.mark.slow
def test_a_real_server_uses_the_installed_config(tmp_path):
    install_config(tmp_path / "prefix")
    code = (
        "from jupyter_server.serverapp import ServerApp\n"
        "app = ServerApp()\n"
        "app.initialize(argv=['--ServerApp.port=0', '--ServerApp.ip=127.0.0.1', '--ServerApp.open_browser=False',"
        " '--ServerApp.allow_root=True', '--ServerApp.jpserver_extensions={}'])\n"
        "c = app.kernel_websocket_connection_class\n"
        "print('CLASS', c.__module__ + '.' + c.__name__)\n"
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_path / "user"),
        JUPYTER_CONFIG_PATH=str(tmp_path / "prefix" / "etc" / "jupyter"),
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    found = [line for line in proc.stdout.splitlines() if line.startswith("CLASS ")]
    assert found == [f"CLASS {CLASS_NAME}"], (
        f"expected the server to use {CLASS_NAME}; found {found}\n{proc.stderr[-2000:]}"
    )
