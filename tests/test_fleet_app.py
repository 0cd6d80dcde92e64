"""The app on several Ollama hosts (issue 18, item 5), through the running app: gradio_client,
crafted queue requests and a real browser, against two fake Ollama servers on their own
ports, each with its own models and faults."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

import contextpilot as cp
from contextpilot.policy import AccessPolicy
from tests.conftest import SMALL
from tests.ui_helpers import Client, call_event, running_app, wait_until

FAST_PROBES = (0.05,)  # a host that comes back takes traffic again at once


@pytest.fixture(scope="module")
def fleet(gpus):
    a, b = gpus
    with cp.Fleet({"gpu1": a.url, "gpu2": b.url}, probe_backoff=FAST_PROBES) as f:
        yield f


@pytest.fixture(scope="module")
def app(fleet):
    with running_app(fleet, policy=AccessPolicy(shared=False), preload=False) as url:
        yield url


@pytest.fixture
def client(app, gpus, fleet):
    for srv in gpus:  # each test starts with both hosts up and no fault
        srv.faults.reset()
    wait_until(lambda: all(s.reachable for s in fleet.status()), 5, "both hosts up")
    return Client(app, verbose=False)


def chat(client, text, model, host="auto"):
    job = client.submit({"text": text, "files": []}, model, "", 0.7, 4096, True, False,
                        "medium", host, api_name="/chat")
    list(job)
    return job.outputs()[-1][0]  # the assistant's messages


def titles(messages) -> list[str]:
    return [(m.get("metadata") or {}).get("title", "") for m in messages]


def answer(messages) -> str:
    return "".join(m["content"] for m in messages if not m.get("metadata"))


def test_list_models_returns_each_host_and_where_each_model_is(client):
    data = client.predict(api_name="/list_models")
    hosts = {h["name"]: h for h in data["hosts"]}
    assert list(hosts) == ["gpu1", "gpu2"]
    assert all(h["reachable"] and h["version"] == "0.33.0" for h in hosts.values())
    assert set(hosts["gpu1"]["installed"]) == {"llama3.2:latest", "qwen3:0.6b"}
    assert hosts["gpu2"]["installed"] == ["llama3.2:latest"]


def test_each_answer_says_which_host_wrote_it_and_how_fast(client, gpus):
    messages = chat(client, "hello", "qwen3:0.6b")  # only gpu1 has it
    assert "You said: hello" in answer(messages)
    footer = [t for t in titles(messages) if t.startswith("gpu")]
    assert len(footer) == 1 and re.fullmatch(r"gpu1 · \d+ tok/s", footer[0]), titles(messages)


def test_a_chosen_host_answers(client, gpus):
    a, b = gpus
    before = len(b.chat_requests)
    messages = chat(client, "hi there", "llama3.2", host="gpu2")
    assert any(t.startswith("gpu2 · ") for t in titles(messages))
    assert len(b.chat_requests) == before + 1


def test_a_host_that_does_not_answer_is_skipped_and_the_answer_says_so(client, gpus):
    a, _ = gpus
    a.faults.refuse = True  # gpu1, first in order for llama3.2, refuses connections
    try:
        messages = chat(client, "anyone?", "llama3.2")
    finally:
        a.faults.refuse = False
    assert "You said: anyone?" in answer(messages)
    assert "gpu1 did not answer; answered by gpu2" in titles(messages)


@pytest.mark.parametrize("host", ["http://127.0.0.1:1", "../gpu1", "gpu3", "gpu1,gpu2",
                                  "127.0.0.1", "all"])
def test_a_hostile_host_is_refused_before_any_request(client, gpus, host):
    def sent():  # what the chat would ask a host: nothing may reach one
        return [(len(g.chat_requests), sum(g.pull_requests.values())) for g in gpus]

    before = sent()
    said = answer(chat(client, "hi", "llama3.2", host=host))
    assert "There is no host" in said and "gpu1, gpu2" in said, said
    assert "Traceback" not in said
    assert sent() == before


def test_download_on_every_host(client, app, gpus):
    try:
        call_event(app, "download", "mistral", False, "auto", True)
        assert all("mistral:latest" in g.installed_names() for g in gpus)
    finally:
        for g in gpus:
            cp.delete_model("mistral", g.url)


def test_download_on_every_host_waits_when_one_host_may_not_fit(client, app, gpus,
                                                                monkeypatch):
    from contextpilot.ui.host import Host

    real = Host.fit

    def fit(self, name, *args, **kw):  # gpu2's disk is too small for it
        v = real(self, name, *args, **kw)
        if self.name != "gpu2":
            return v
        return dataclasses.replace(v, fits_disk=False, message="No room on gpu2's disk.")

    monkeypatch.setattr(Host, "fit", fit)
    before = [g.pull_requests.get("mistral:latest", 0) for g in gpus]
    said = call_event(app, "download", "mistral", False, "auto", True)[0]
    assert "gpu2: No room on gpu2" in said and "gpu1:" not in said, said
    assert not any("mistral:latest" in g.installed_names() for g in gpus)
    assert [g.pull_requests.get("mistral:latest", 0) for g in gpus] == before


def test_the_models_tab_deletes_on_one_host(client, app, gpus):
    a, b = gpus
    try:
        said = call_event(app, "delete_model", "llama3.2:latest", "gpu2")[1]
        assert said == "Deleted llama3.2:latest on gpu2."
        assert "llama3.2:latest" in a.installed_names()
        assert "llama3.2:latest" not in b.installed_names()
    finally:
        b.add_installed(SMALL)


# -- a shared app: host names, never an address --------------------------------------------

@pytest.fixture(scope="module")
def shared(gpus):
    a, b = gpus
    with cp.Fleet([a.url, b.url], probe_backoff=FAST_PROBES) as bare:
        policy = AccessPolicy(shared=True, allowed_models=["llama3.2", "qwen3:0.6b"])
        with running_app(bare, policy=policy, preload=False) as url:
            yield url, bare


def _addresses(gpus) -> list[str]:
    return [g.url.rsplit(":", 1)[1] for g in gpus] + ["127.0.0.1"]


def test_a_shared_app_names_hosts_by_label_and_shows_no_address(shared, gpus):
    url, _ = shared
    client = Client(url, verbose=False)
    data = client.predict(api_name="/list_models")
    assert [h["name"] for h in data["hosts"]] == ["host 1", "host 2"]
    assert all("url" not in h for h in data["hosts"])
    messages = chat(client, "hello", "llama3.2", host="host 2")
    assert any(t.startswith("host 2 · ") for t in titles(messages)), messages
    text = json.dumps([data, messages])
    assert not [a for a in _addresses(gpus) if a in text]


def test_a_shared_app_refuses_an_address_as_a_host(shared, gpus):
    url, bare = shared
    client = Client(url, verbose=False)
    real_name = bare.names[1]  # "127.0.0.1:PORT": a name the shared page never showed
    said = answer(chat(client, "hi", "llama3.2", host=real_name))
    assert "There is no host" in said
    assert not [a for a in _addresses(gpus) if a in said], said


def test_a_shared_apps_errors_name_no_address(shared, gpus):
    url, _ = shared
    a, b = gpus
    a.faults.refuse = b.faults.refuse = True
    try:
        said = answer(chat(Client(url, verbose=False), "hi", "llama3.2"))
    finally:
        a.faults.refuse = b.faults.refuse = False
    assert "No Ollama host answers" in said and "host 1" in said and "host 2" in said, said
    assert not [x for x in _addresses(gpus) if x in said], said


# -- the page ----------------------------------------------------------------------------

@pytest.mark.browser
def test_the_page_shows_the_hosts_the_chooser_and_where_models_are(app, client, artifacts):
    from tests.test_browser import CHROMIUM, FLAGS

    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.set_default_timeout(15_000)
        page.goto(app)
        status = page.locator("#ollama-status")
        status.get_by_text("2 hosts · 2 up").wait_for()
        assert "gpu1 · Ollama 0.33.0 · up" in status.locator("summary").get_attribute("title")
        page.locator("#host-select input").click()
        options = [o.split("\n")[-1] for o in page.get_by_role("option").all_inner_texts()]
        assert options[:3] == ["Auto", "gpu1", "gpu2"], options
        page.keyboard.press("Escape")
        page.locator("#model-dropdown input").click()
        labels = page.get_by_role("option").all_inner_texts()
        labels = [x.split("\n")[-1] for x in labels]  # the chosen one has a check mark
        llama = next(x for x in labels if x.startswith("Installed · llama3.2:latest"))
        qwen = next(x for x in labels if x.startswith("Installed · qwen3:0.6b"))
        assert " · on gpu1, gpu2" in llama and " · on gpu1" in qwen, (llama, qwen)
        page.keyboard.press("Escape")
        page.locator("#chat-input textarea").fill("which host?")
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot").get_by_text("You said: which host?").wait_for()
        page.locator("#chatbot").get_by_text(re.compile(r"gpu\d · \d+ tok/s")).wait_for()
        page.screenshot(path=str(artifacts / "fleet-chat.png"), full_page=True)
        browser.close()
