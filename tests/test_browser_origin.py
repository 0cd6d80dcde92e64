"""Private means this app's own page (issue 19, item 5): another page served from the same
machine (another port of 127.0.0.1) is a visitor, so what it asks that changes state is
refused: crafted requests naming its origin, and a real page in chromium whose script
posts to the app's queue (Gradio allows any localhost origin to). Each test fails against
the app before the own-origin rule: the operator's model was deleted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_attacks import REFUSED, queue_call
from tests.test_browser import browser, page  # noqa: F401  (the shared chromium fixtures)
from tests.ui_helpers import event_id, running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")

ATTACK = """<!doctype html><title>another local page</title><script>
(async () => {
  const app = %(app)s, session = "attack" + Math.random();
  const join = await fetch(app + "/gradio_api/queue/join", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({data: %(data)s, fn_index: %(fn)d, session_hash: session})});
  let said = "join: " + join.status + " " + await join.text();
  if (join.ok) {
    const stream = await fetch(app + "/gradio_api/queue/data?session_hash=" + session);
    said += await stream.text();
  }
  window.said = said;
})().catch(e => { window.said = "error: " + e; });
</script>"""


@pytest.fixture
def other_page():
    """A second local web server (another port of 127.0.0.1) serving ``pages[path]``."""
    pages: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


def test_a_crafted_request_from_another_local_page_is_a_visitors(fake_ollama, other_page):
    origin, _ = other_page
    fake_ollama.chunk_size = 10_000
    with running_app(fake_ollama.url) as url:
        for headers in ({"Origin": origin, "Sec-Fetch-Site": "same-site"}, {"Origin": origin},
                        {"Sec-Fetch-Site": "same-site"}):
            for api_name, data in (("delete_model", ["qwen3:0.6b"]),
                                   ("unload_model", ["qwen3:0.6b"]),
                                   ("cancel_download", ["mistral"]),
                                   ("download", ["mistral", True]),
                                   ("make_room", ["mistral"])):
                said = queue_call(url, api_name, *data, headers=headers)
                if api_name != "make_room":  # nothing to make room for: silent either way
                    assert REFUSED in said, (headers, api_name, said[-300:])
        # the operator's own page may
        own = {"Origin": url, "Sec-Fetch-Site": "same-origin"}
        assert "Deleted qwen3:0.6b." in queue_call(url, "delete_model", "qwen3:0.6b",
                                                     headers=own)
    assert fake_ollama.pull_requests == {}
    assert fake_ollama.installed_names() == ["llama3.2:latest"]


@pytest.mark.browser
def test_another_local_page_in_the_browser_cannot_delete_a_model(page, fake_ollama,  # noqa: F811
                                                                other_page):
    origin, pages = other_page
    with running_app(fake_ollama.url) as url:
        pages["/"] = ATTACK % {"app": json.dumps(url), "data": json.dumps(["qwen3:0.6b"]),
                               "fn": event_id(url, "delete_model")}
        page.goto(origin + "/")
        page.wait_for_function("window.said !== undefined", timeout=30_000)
        said = page.evaluate("window.said")
    assert "qwen3:0.6b" in fake_ollama.installed_names(), said
    assert REFUSED in said, said
