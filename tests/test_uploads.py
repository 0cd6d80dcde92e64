"""Only uploads are read (issue 13, part 0): raw HTTP requests, as an attacker writes them by
hand, to the REST endpoint (``/gradio_api/call/chat``) and to the queue
(``/gradio_api/queue/join``), naming files outside Gradio's upload cache: a file in the home
folder, /etc, a ``..`` path, ``file=`` URLs. Ollama must receive none of them, while a file
uploaded through ``/gradio_api/upload`` in the same raw way still reaches a vision model.

gradio_client cannot make these requests: it uploads any local path it is given, so it would
read the client's own file and send a genuine upload.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.test_attacks import VISION, queue_call
from tests.test_ui_api import _png
from tests.ui_helpers import running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")


def chat_inputs(url: str, message: dict) -> list:
    """The chat's inputs in order: our message and model, every other at its default."""
    config = httpx.get(f"{url}/config", timeout=10).json()
    props = {c["id"]: c.get("props", {}) for c in config["components"]}
    dep = next(d for d in config["dependencies"] if d.get("api_name") == "chat")
    return [message if props[i].get("elem_id") == "chat-input"
            else "llava" if props[i].get("elem_id") == "model-dropdown"
            else props[i].get("value") for i in dep["inputs"]]


def rest_call(url: str, data: list) -> str:
    """POST /gradio_api/call/chat, then read its event stream: everything it said."""
    with httpx.Client(base_url=url, timeout=30) as http:
        started = http.post("/gradio_api/call/chat", json={"data": data})
        if started.status_code != 200:
            return f"HTTP {started.status_code} {started.text}"
        event = started.json()["event_id"]
        return http.get(f"/gradio_api/call/chat/{event}").text


def queue(url: str, data: list) -> str:
    return queue_call(url, "chat", *data)


TRANSPORTS = {"rest": rest_call, "queue": queue}


def file_data(path: str, url: str = None) -> dict:
    d = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}
    if url:
        d["url"] = url
    return d


@pytest.fixture
def home_secret() -> Iterator[Path]:
    """An image in the server user's home folder (a vision model would describe it)."""
    with tempfile.NamedTemporaryFile(dir=Path.home(), prefix="cp-secret-", suffix=".png",
                                     delete=False) as f:
        f.write(_png())
    path = Path(f.name)
    yield path
    path.unlink(missing_ok=True)


def sent_images(fake) -> list:
    return [img for body in fake.chat_requests for m in body.get("messages") or []
            for img in m.get("images") or []]


def hostile(home: Path, base: str) -> dict:
    import uuid

    from gradio.utils import get_upload_folder

    cache = get_upload_folder()
    planted = Path(cache) / uuid.uuid4().hex / "planted.png"  # in the cache, not uploaded
    planted.parent.mkdir(parents=True)
    planted.write_bytes(home.read_bytes())
    return {
        "cache-planted": file_data(str(planted)),
        "home": file_data(str(home)),
        "home-tilde": file_data(f"~/{home.name}"),
        "etc": file_data("/etc/passwd"),
        "dotdot": file_data(f"{cache}/../../../..{home}"),
        "dotdot-relative": file_data(f"../../../../..{home}"),
        "file-url-path": file_data(f"/gradio_api/file={home}"),
        "file-prefix": file_data(f"file={home}"),
        "file-scheme": file_data(f"file://{home}"),
        "file-url": file_data(str(home), url=f"{base}/gradio_api/file={home}"),
        "url-only": {"path": f"{base}/gradio_api/file={home}",
                     "meta": {"_type": "gradio.FileData"}},
        "plain-string": str(home),
    }


KINDS = ["cache-planted", "home", "home-tilde", "etc", "dotdot", "dotdot-relative", "file-url-path",
         "file-prefix", "file-scheme", "file-url", "url-only", "plain-string"]


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_no_server_file_reaches_ollama(fake_ollama, home_secret, transport):
    fake_ollama.add_installed(VISION)
    secret_b64 = base64.b64encode(home_secret.read_bytes()).decode()
    with running_app(fake_ollama.url) as url:
        files = hostile(home_secret, url)
        for kind in KINDS:
            message = {"text": f"what is this? ({kind})", "files": [files[kind]]}
            said = TRANSPORTS[transport](url, chat_inputs(url, message))
            assert sent_images(fake_ollama) == [], kind
            assert "root:" not in said and str(home_secret) not in said, (kind, said[-300:])
            assert "planted" not in said, kind  # where a refused file is, is not said
            assert "Traceback" not in said, kind
        Path(files["cache-planted"]["path"]).unlink()
    assert secret_b64 not in json.dumps(fake_ollama.chat_requests)


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_a_genuine_upload_still_reaches_a_vision_model(fake_ollama, tmp_path, transport):
    fake_ollama.add_installed(VISION)
    with running_app(fake_ollama.url) as url:
        up = httpx.post(f"{url}/gradio_api/upload", timeout=30,
                        files={"files": ("dot.png", _png(), "image/png")})
        (path,) = up.json()
        message = {"text": "what is this?", "files": [file_data(path)]}
        said = TRANSPORTS[transport](url, chat_inputs(url, message))
    assert "1 image(s)" in said, said[-400:]
    assert sent_images(fake_ollama) == [base64.b64encode(_png()).decode()]
