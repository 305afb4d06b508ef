"""JupyterLab check: run a chapter through a real JupyterLab server and see its widgets made.

The idea: nbval proves a notebook's outputs, but not that it works where readers run it —
a JupyterLab server talking to its kernel over a websocket, with ipywidgets models living
on both sides. This check does what the JupyterLab front end does, without a browser:

1. start ``jupyter lab`` on 127.0.0.1 (a free port, a random token, no browser, private
   config/runtime folders),
2. open a notebook session with a ``python3`` kernel (REST ``/api/sessions``),
3. run every code cell over the kernel websocket (``/api/kernels/<id>/channels``, the
   Jupyter messaging protocol: JSON text frames, binary frames when a message has buffers),
4. verify that ipywidgets models are created (``comm_open`` with target ``jupyter.widget``;
   the expected model names, e.g. FloatLogSliderModel, ImageModel, VBoxModel), that every
   displayed widget view refers to one of them, and that an ``ImageModel`` carries a PNG,
5. move a slider as the front end would (a ``comm_msg`` "update") and verify the kernel
   redraws: the ImageModel receives a new PNG,
6. shut the kernel and the server down — always, even on failure — and verify that no
   process is left (the kernel runs in its own session, so it is checked by its pid).

Usage::

    python scripts/check_lab.py [notebooks/01_attention.ipynb] [--expect-models A,B,C]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = ROOT / "notebooks" / "01_attention.ipynb"
DEFAULT_MODELS = ("FloatLogSliderModel", "ImageModel", "VBoxModel")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SERVER_START_S = 60
CELL_TIMEOUT_S = 300


class LabCheckFailed(Exception):
    """A verification failed; the message says what was expected."""


# ---------------------------------------------------------------- pure helpers (tested)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def decode_ws_message(frame: str | bytes) -> dict:
    """A Jupyter message from a kernel-websocket frame (jupyter_server's default protocol).

    Text frames are the message as JSON. Binary frames carry buffers: a big-endian uint32
    count n, then n uint32 offsets (from the start of the frame), then the parts — the first
    part is the JSON message, the others its ``buffers``.
    """
    if isinstance(frame, str):
        message = json.loads(frame)
        message.setdefault("buffers", [])
        return message
    (count,) = struct.unpack("!I", frame[:4])
    offsets = list(
        struct.unpack(f"!{count}I", frame[4 : 4 * (count + 1)])
    ) + [len(frame)]
    parts = [
        frame[start:stop] for start, stop in zip(offsets[:-1], offsets[1:])
    ]
    message = json.loads(parts[0].decode("utf-8"))
    message["buffers"] = parts[1:]
    return message


def new_message(
    msg_type: str, content: dict, session: str, channel: str = "shell"
) -> dict:
    """A client message of the Jupyter messaging protocol (v5.3), as JSON for the websocket."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "check-lab",
            "session": session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": channel,
        "buffers": [],
    }


def slider_target(state: dict):
    """A value, different from the current one, that the slider with this model state accepts.

    ``FloatLogSlider`` keeps exponents in min/max (value = base ** exponent); other sliders
    keep values.
    """
    if state["_model_name"] == "FloatLogSliderModel":
        low, high = (
            state["base"] ** state["min"],
            state["base"] ** state["max"],
        )
    else:
        low, high = state["min"], state["max"]
    return low if state["value"] == high else high


def is_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return (
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            != "Z"
        )
    except (OSError, IndexError):
        return True


# ---------------------------------------------------------------- the server and the kernel


class Lab:
    """A JupyterLab server started for this check, and one notebook session on it."""

    def __init__(self, root: Path, workdir: Path):
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"
        env = {
            **os.environ,
            "JUPYTER_TOKEN": self.token,  # not on the command line, where `ps` shows it
            "JUPYTER_CONFIG_DIR": str(
                workdir / "config"
            ),  # no user settings, nothing written to ~
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        }
        self.log_path = workdir / "server.log"
        self.log = self.log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if (
            os.geteuid() == 0
        ):  # CI containers run as root; the server refuses that unless told
            command.append("--allow-root")
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.session_id: str | None = None
        self.kernel_id: str | None = None
        self.kernel_pid: int | None = None
        self.client_session = uuid.uuid4().hex
        self.ws: websocket.WebSocket | None = None

    def wait_ready(self) -> str:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LabCheckFailed(
                    f"jupyter lab exited with code {self.process.returncode} (its log is above)"
                )
            try:
                response = self.http.get(f"{self.url}/api/status", timeout=2)
                if response.status_code == 200:
                    return self.http.get(f"{self.url}/api", timeout=5).json()[
                        "version"
                    ]
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise LabCheckFailed(
            f"jupyter lab did not answer within {SERVER_START_S} s (its log is above)"
        )

    def lab_page_ok(self) -> bool:
        """The JupyterLab application page itself is served (what a reader's browser opens)."""
        response = self.http.get(f"{self.url}/lab", timeout=10)
        return (
            response.status_code == 200
            and "jupyter-config-data" in response.text
        )

    def open_session(self, notebook: Path, root: Path) -> None:
        body = {
            "path": notebook.relative_to(root).as_posix(),
            "name": notebook.name,
            "type": "notebook",
            "kernel": {"name": "python3"},
        }
        response = self.http.post(
            f"{self.url}/api/sessions", json=body, timeout=30
        )
        response.raise_for_status()
        session = response.json()
        self.session_id, self.kernel_id = (
            session["id"],
            session["kernel"]["id"],
        )
        ws_url = (
            self.url.replace("http", "ws", 1)
            + f"/api/kernels/{self.kernel_id}/channels"
        )
        self.ws = websocket.create_connection(
            f"{ws_url}?session_id={self.client_session}",
            header=[f"Authorization: token {self.token}"],
            timeout=CELL_TIMEOUT_S,
        )

    def send(self, msg_type: str, content: dict) -> str:
        message = new_message(msg_type, content, self.client_session)
        self.ws.send(json.dumps(message))
        return message["header"]["msg_id"]

    def run(self, msg_type: str, content: dict, on_message) -> dict | None:
        """Send one request; pass every message it causes to ``on_message`` until the kernel is idle.

        Returns the reply on the shell channel (None for requests without one, like comm_msg).
        """
        msg_id = self.send(msg_type, content)
        reply, idle = None, False
        expects_reply = msg_type.endswith("_request")
        deadline = time.monotonic() + CELL_TIMEOUT_S
        while not (idle and (reply or not expects_reply)):
            if time.monotonic() > deadline:
                raise LabCheckFailed(
                    f"no answer to {msg_type} within {CELL_TIMEOUT_S} s"
                )
            message = decode_ws_message(self.ws.recv())
            on_message(message)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["channel"] == "shell":
                reply = message
            elif (
                message["channel"] == "iopub"
                and message["msg_type"] == "status"
            ):
                idle = message["content"]["execution_state"] == "idle"
        return reply

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(
            self.log_path.read_text(errors="replace").splitlines()[-lines:]
        )

    def shutdown(self) -> list[str]:
        """Shut the kernel and the server down; return what had to be killed (empty when clean)."""
        killed = []
        if self.ws is not None:
            self.ws.close()
        if self.session_id and self.process.poll() is None:
            try:
                self.http.delete(
                    f"{self.url}/api/sessions/{self.session_id}", timeout=20
                )
            except requests.RequestException:
                pass
        if self.process.poll() is None:
            try:
                self.http.post(f"{self.url}/api/shutdown", timeout=10)
            except requests.RequestException:
                pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()  # our own child, by its pid
            self.process.wait(timeout=5)
            killed.append(f"jupyter lab server (pid {self.process.pid})")
        if self.kernel_pid is not None:
            deadline = time.monotonic() + 10
            while is_alive(self.kernel_pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if is_alive(self.kernel_pid):
                os.kill(
                    self.kernel_pid, signal.SIGKILL
                )  # the kernel this check started, by its pid
                killed.append(f"kernel (pid {self.kernel_pid})")
        self.log.close()
        return killed


# ---------------------------------------------------------------- the check


def check(notebook: Path, expected_models: tuple[str, ...]) -> None:
    start = time.perf_counter()
    models: dict[
        str, dict
    ] = {}  # comm id -> {"name": model name, "state": model state when opened}
    views: list[str] = []  # model ids of displayed widget views
    image_pngs: dict[
        str, list[bytes]
    ] = {}  # ImageModel comm id -> every PNG it was sent, in order
    errors: list[str] = []

    def on_message(message: dict) -> None:
        msg_type, content = (
            message.get("msg_type"),
            message.get("content", {}),
        )
        if (
            msg_type == "comm_open"
            and content.get("target_name") == "jupyter.widget"
        ):
            state = content["data"]["state"]
            models[content["comm_id"]] = {
                "name": state.get("_model_name"),
                "state": state,
            }
            if state.get("_model_name") == "ImageModel":
                image_pngs[content["comm_id"]] = [
                    b for b in message["buffers"] if b.startswith(PNG_MAGIC)
                ]
        elif msg_type == "comm_msg" and content.get("comm_id") in image_pngs:
            if content.get("data", {}).get("method") == "update":
                image_pngs[content["comm_id"]] += [
                    b for b in message["buffers"] if b.startswith(PNG_MAGIC)
                ]
        elif msg_type in ("display_data", "execute_result"):
            view = content.get("data", {}).get(
                "application/vnd.jupyter.widget-view+json"
            )
            if view:
                views.append(view["model_id"])
        elif msg_type == "error":
            errors.append(
                "\n".join(content.get("traceback", []))
                or content.get("evalue", "")
            )

    cells = [
        c
        for c in nbformat.read(notebook, as_version=4).cells
        if c.cell_type == "code"
    ]
    with tempfile.TemporaryDirectory(prefix="check-lab-") as workdir:
        lab = Lab(ROOT, Path(workdir))
        try:
            version = lab.wait_ready()
            print(
                f"JupyterLab server {version} at {lab.url} (token auth), ready in {time.perf_counter() - start:.1f} s"
            )
            if not lab.lab_page_ok():
                raise LabCheckFailed(
                    "the JupyterLab page /lab was not served"
                )
            print("  /lab serves the JupyterLab application page")

            lab.open_session(notebook, ROOT)
            probe = lab.run(
                "execute_request",
                {
                    "code": "",
                    "silent": True,
                    "store_history": False,
                    "user_expressions": {
                        "pid": "__import__('os').getpid()",
                        "python": "__import__('sys').executable",
                    },
                },
                on_message,
            )
            found = probe["content"]["user_expressions"]
            lab.kernel_pid = int(found["pid"]["data"]["text/plain"])
            print(
                f"  kernel python3 (pid {lab.kernel_pid}, {ast.literal_eval(found['python']['data']['text/plain'])})"
            )

            for number, cell in enumerate(cells, 1):
                reply = lab.run(
                    "execute_request",
                    {
                        "code": cell.source,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                    },
                    on_message,
                )
                if reply["content"]["status"] != "ok":
                    detail = errors[-1] if errors else reply["content"]
                    raise LabCheckFailed(
                        f"code cell {number} of {notebook.name} failed:\n{detail}"
                    )
            print(
                f"  ran {len(cells)} code cells of {notebook.relative_to(ROOT)} without errors"
            )

            verify_widgets(models, views, image_pngs, expected_models)
            verify_redraw(lab, models, image_pngs, on_message)
        except Exception:
            print(
                f"--- jupyter lab log (tail) ---\n{lab.log_tail()}",
                file=sys.stderr,
            )
            raise
        finally:
            killed = lab.shutdown()
        if killed:
            raise LabCheckFailed(
                f"shutdown was not clean; had to kill: {', '.join(killed)}"
            )
        print("  kernel and server shut down cleanly; no process left")
    print(f"check-lab: passed in {time.perf_counter() - start:.1f} s")


def verify_widgets(
    models: dict,
    views: list[str],
    image_pngs: dict,
    expected_models: tuple[str, ...],
) -> None:
    names = sorted({m["name"] for m in models.values()})
    missing = [name for name in expected_models if name not in names]
    if missing:
        raise LabCheckFailed(
            f"widget models not created: {missing}; created: {names}"
        )
    print(
        f"  {len(models)} widget models created (comm_open, target jupyter.widget): {', '.join(names)}"
    )
    if not views:
        raise LabCheckFailed(
            "no cell displayed a widget view (application/vnd.jupyter.widget-view+json)"
        )
    unknown = [v for v in views if v not in models]
    if unknown:
        raise LabCheckFailed(
            f"displayed widget views refer to models that were never opened: {unknown}"
        )
    shown = ", ".join(models[v]["name"] for v in views)
    print(
        f"  {len(views)} widget view(s) displayed, each backed by an opened model: {shown}"
    )
    if image_pngs:
        if not all(image_pngs.values()):
            raise LabCheckFailed("an ImageModel was never sent a PNG figure")
        print(f"  every ImageModel ({len(image_pngs)}) was sent a PNG figure")


def verify_redraw(
    lab: Lab, models: dict, image_pngs: dict, on_message
) -> None:
    """Move the first slider as the front end would and expect a new PNG in an ImageModel."""
    sliders = [
        (cid, m)
        for cid, m in models.items()
        if m["name"].endswith("SliderModel")
    ]
    if not sliders or not image_pngs:
        print("  (no slider and image pair: redraw not checked)")
        return
    comm_id, slider = sliders[0]
    value = slider_target(slider["state"])
    before = {cid: list(pngs) for cid, pngs in image_pngs.items()}
    lab.run(
        "comm_msg",
        {
            "comm_id": comm_id,
            "data": {
                "method": "update",
                "state": {"value": value},
                "buffer_paths": [],
            },
        },
        on_message,
    )
    new_pngs = [
        png
        for cid, pngs in image_pngs.items()
        for png in pngs[len(before[cid]) :]
        if png not in before[cid]
    ]
    if not new_pngs:
        raise LabCheckFailed(
            f"moving {slider['name']} to {value} did not redraw any ImageModel"
        )
    print(
        f"  moving {slider['name']} from {slider['state']['value']:g} to {value:g} (a comm_msg update, as the "
        f"front end sends) redrew the figure: a new PNG of {len(new_pngs[0])} bytes"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebook", type=Path, nargs="?", default=DEFAULT_NOTEBOOK
    )
    parser.add_argument(
        "--expect-models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated ipywidgets model names the notebook must create",
    )
    args = parser.parse_args(argv)
    notebook = args.notebook.resolve()
    if not notebook.is_file() or ROOT not in notebook.parents:
        print(
            f"check-lab: {args.notebook} is not a notebook inside {ROOT}",
            file=sys.stderr,
        )
        return 1

    # `make` stops us with SIGTERM: turn it into an exception so the server is shut down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        check(notebook, tuple(n for n in args.expect_models.split(",") if n))
    except LabCheckFailed as failure:
        print(f"check-lab FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
