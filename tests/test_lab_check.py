"""The pure helpers of scripts/check_lab.py (the JupyterLab check itself runs in `make check-lab`)."""

import json
import socket
import subprocess
import sys
import time

import pytest
from _scripts import load_script
from jupyter_server.services.kernels.connection.base import (
    serialize_binary_message,
)

check_lab = load_script("check_lab")


def _message(buffers):
    return {
        "header": {
            "msg_id": "m1",
            "msg_type": "comm_msg",
            "date": "2026-01-01T00:00:00Z",
        },
        "parent_header": {"msg_id": "p0"},
        "metadata": {},
        "content": {
            "comm_id": "c1",
            "data": {
                "method": "update",
                "state": {},
                "buffer_paths": [["value"]],
            },
        },
        "channel": "iopub",
        "buffers": buffers,
    }


@pytest.mark.parametrize(
    "buffers", [[b"\x89PNG\r\n\x1a\nabc"], [b"one", b"", b"three" * 1000]]
)
def test_decode_binary_frame_matches_jupyter_server_serializer(buffers):
    frame = serialize_binary_message(
        _message(buffers)
    )  # the server's own encoder is the reference
    decoded = check_lab.decode_ws_message(frame)
    assert decoded["buffers"] == buffers
    assert decoded["content"] == _message(buffers)["content"]
    assert decoded["parent_header"] == {"msg_id": "p0"}


def test_decode_text_frame_has_no_buffers():
    message = _message([])
    del message["buffers"]
    decoded = check_lab.decode_ws_message(json.dumps(message))
    assert decoded["buffers"] == []
    assert decoded["channel"] == "iopub"


def test_new_message_is_a_protocol_5_request_with_a_fresh_id():
    a = check_lab.new_message("execute_request", {"code": "1"}, session="s")
    b = check_lab.new_message("execute_request", {"code": "1"}, session="s")
    assert a["header"]["msg_id"] != b["header"]["msg_id"]
    assert a["header"]["msg_type"] == "execute_request" and a["header"][
        "version"
    ].startswith("5.")
    assert a["header"]["session"] == "s" and a["channel"] == "shell"
    json.dumps(a)  # goes over the websocket as JSON


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            {
                "_model_name": "FloatLogSliderModel",
                "value": 1.0,
                "base": 10,
                "min": -1,
                "max": 1,
            },
            10.0,
        ),
        (
            {
                "_model_name": "FloatLogSliderModel",
                "value": 10.0,
                "base": 10,
                "min": -1,
                "max": 1,
            },
            0.1,
        ),
        (
            {"_model_name": "IntSliderModel", "value": 3, "min": 0, "max": 8},
            8,
        ),
        (
            {
                "_model_name": "FloatSliderModel",
                "value": 8.0,
                "min": 0.5,
                "max": 8.0,
            },
            0.5,
        ),
    ],
)
def test_slider_target_is_another_accepted_value(state, expected):
    assert check_lab.slider_target(state) == pytest.approx(expected)


def test_free_port_can_be_bound():
    port = check_lab.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_is_alive_follows_a_process_to_its_end():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"]
    )
    try:
        assert check_lab.is_alive(child.pid)
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while check_lab.is_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not check_lab.is_alive(
        child.pid
    )  # dead, though not reaped yet (a zombie)
    child.wait()
    assert not check_lab.is_alive(child.pid)
