"""Private means this app's own page (issue 19, item 5): another page served from the same
machine (another port of 127.0.0.1) is a visitor, so what it asks that changes state is
refused: crafted requests naming its origin, and a real page in chromium whose script
posts to the app's queue (Gradio allows any localhost origin to). Each test fails against
the app before the own-origin rule: the operator's model was deleted."""

from __future__ import annotations

import json

import pytest

from tests.test_attacks import REFUSED, queue_call
from tests.test_browser import browser, page  # noqa: F401  (the shared chromium fixtures)
from tests.ui_helpers import event_id, local_server, running_app

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

    def respond(path: str) -> tuple[int, str, bytes]:
        body = pages.get(path, "").encode()
        return 200 if body else 404, "text/html; charset=utf-8", body

    with local_server(respond) as port:
        yield f"http://127.0.0.1:{port}", pages


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


@pytest.mark.browser
@pytest.mark.parametrize("shared", [False, True], ids=["private", "shared"])
def test_the_pages_own_upload_reaches_a_vision_model(page, fake_ollama, tmp_path,  # noqa: F811
                                                     shared):
    """The gate's record of who uploaded what follows the page's own upload and message
    (the visitor cookie the browser sends with both)."""
    from contextpilot.policy import AccessPolicy
    from tests.test_attacks import VISION
    from tests.test_ui_api import _png

    fake_ollama.add_installed(VISION)
    png = tmp_path / "dot.png"
    png.write_bytes(_png())
    policy = AccessPolicy(shared=True, host=fake_ollama.url) if shared else None
    with running_app(fake_ollama.url, policy=policy) as url:
        page.goto(url)
        page.locator("#ollama-status").get_by_text("Ollama").first.wait_for()
        page.locator("#model-dropdown input").fill("llava:latest")
        page.locator("#model-dropdown input").press("Enter")
        page.locator("#chat-input input[type=file]").set_input_files(str(png))
        page.locator("#chat-input textarea").fill("what is this?")
        page.wait_for_timeout(500)  # the upload
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot").get_by_text("1 image(s)").wait_for(timeout=30_000)
        shown = page.locator("#chatbot img").evaluate_all(
            "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])")
    from gradio.utils import get_upload_folder

    assert shown and all("uploads/" in src and width > 0 for src, width in shown), shown
    assert not any(str(get_upload_folder()) in src for src, _ in shown)
    assert len([m for b in fake_ollama.chat_requests for m in b["messages"]
                if m.get("images")]) == 1
