"""Every row of the error table reaches the user as one readable message in the CLI (a real
subprocess: exit 1, no traceback) and in the app (gradio_client /chat); think levels and
cloud models through both front ends."""

from __future__ import annotations

import html
import subprocess

import pytest

import contextpilot as cp
from contextpilot import _client
from contextpilot.ui.safe_chatbot import SafeChatbot
from tests.conftest import ROOT
from tests.fake_ollama import CLOUD_DISABLED, RUNNER_STOPPED, SIGNIN_URL, FakeModel
from tests.test_cli import _cli, _env
from tests.test_ui_api import answers

GPT_OSS = FakeModel(name="gpt-oss:120b", family="gptoss", capabilities=["completion", "thinking"])
MID = "an error was encountered while running the model: CUDA error"


def _busy(s):
    s.faults.busy = 100


def _signed_out(s):
    s.signed_in = False


def _no_cloud(s):
    s.cloud_disabled = True


def _not_found_line(s):
    s.faults.pull_error_line = {"code": "not_found", "error": 'model "mistral" not found'}


def _fail(status, reason):
    def setup(s):
        s.faults.chat_fail = (status, reason)
    return setup


def _mid(s):
    s.faults.chat_error_after = (2, MID)


# (id, model, setup, words the user must see)
ROWS = [
    ("busy", "llama3.2", _busy, ["Ollama is busy", "OLLAMA_MAX_QUEUE"]),
    ("runner", "llama3.2", _fail(500, RUNNER_STOPPED), ["stopped unexpectedly", "smaller model"]),
    ("oom", "llama3.2", _fail(500, "unable to load full model on GPU"),
     ["does not fit in the memory", "num_ctx"]),
    ("mid-answer", "llama3.2", _mid, ["stopped in the middle of its answer"]),
    ("499", "llama3.2", _fail(499, "request canceled"), ["cancelled the request"]),
    ("401", "gpt-oss:120b:cloud", _signed_out, ["`ollama signin`", SIGNIN_URL]),
    ("403", "gpt-oss:120b:cloud", _no_cloud, ["switched off", CLOUD_DISABLED]),
    ("not_found", "mistral", _not_found_line, ["the Ollama registry has no such model"]),
    ("both sources", "qwen3:cloud:local", lambda s: None, ["use either :local or :cloud"]),
]


@pytest.fixture
def srv(fake_ollama):
    fake_ollama.add_cloud(GPT_OSS)
    return fake_ollama


def run_cli(srv, *args, host=None):
    return subprocess.run(_cli(*args), env=_env(host or srv.url), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("row, model, setup, words", ROWS, ids=[r[0] for r in ROWS])
def test_cli_shows_each_row_as_one_message(srv, row, model, setup, words):
    setup(srv)
    done = run_cli(srv, "chat", model, "hi there")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("Error: ") == 1
    err = done.stderr.strip().splitlines()[-1]  # a download bar may come before it
    assert err.startswith("Error: ")
    for w in words:
        assert w in err
    assert "Try again; the download resumes" not in err
    if row == "mid-answer":
        assert done.stdout.startswith("You said:")  # the partial answer stays on stdout


def test_cli_tls_and_think_and_insecure(srv):
    done = run_cli(srv, "list", host=srv.url.replace("http://", "https://"))
    assert done.returncode == 1 and "TLS" in done.stderr and "Traceback" not in done.stderr
    done = run_cli(srv, "chat", "gpt-oss:120b:cloud", "hi", "--think", "high")
    assert done.returncode == 0 and srv.chat_requests[-1]["think"] == "high"
    done = run_cli(srv, "chat", "qwen3:0.6b", "hi", "--no-think")
    assert done.returncode == 0 and srv.chat_requests[-1]["think"] is False
    done = run_cli(srv, "chat", "qwen3:0.6b", "hi", "--think", "hard")
    assert done.returncode == 2 and "expected one of low, medium, high, max" in done.stderr
    done = run_cli(srv, "pull", "http://127.0.0.1:5000/me/tiny")
    assert done.returncode == 1 and "--insecure" in done.stderr
    assert not [r for r in srv.requests if r[1] == "/api/pull"]
    done = run_cli(srv, "pull", "http://127.0.0.1:5000/me/tiny", "--insecure")
    assert done.returncode == 1 and "not found" in done.stderr
    assert [b["insecure"] for m, p, b in srv.requests if p == "/api/pull"] == [True]


# --------------------------------------------------------------------------- the app

@pytest.fixture
def app(srv, monkeypatch):
    from tests.ui_helpers import Client, running_app

    monkeypatch.setattr(_client, "BUSY_DELAYS", (0.0, 0.0, 0.0))
    with running_app(srv.url) as url:
        yield Client(url, verbose=False)


def app_chat(client, model, think=True, level="medium"):
    job = client.submit({"text": "hi there", "files": []}, model, "", 0.7, 4096, think, False,
                        level, api_name="/chat")
    list(job)
    return job.outputs()[-1][0]


def test_app_shows_each_row_as_one_message(app, srv):
    for row, model, setup, words in ROWS:
        srv.faults.reset()
        srv.signed_in, srv.cloud_disabled = True, False
        setup(srv)
        messages = app_chat(app, model)
        last = messages[-1]["content"]
        assert last.startswith("⚠️ "), (row, messages)
        assert "Traceback" not in last and "Something went wrong" not in last, row
        shown = SafeChatbot().postprocess(messages).root[-1].content[0].text
        for w in words:
            assert w in last, (row, last)  # plain text; the page gets it escaped
            assert html.escape(w) in shown, (row, shown)
        if row == "mid-answer":
            assert answers(messages)[0] == "You said:"  # the partial answer stays


def test_app_sends_think_levels_to_models_that_take_them(app, srv):
    messages = app_chat(app, "gpt-oss:120b:cloud", level="high")
    assert srv.chat_requests[-1]["think"] == "high" and answers(messages)[-1].startswith("You")
    app_chat(app, "gpt-oss:120b:cloud", level="low")
    assert srv.chat_requests[-1]["think"] == "low"
    app_chat(app, "qwen3:0.6b", think=False, level="high")  # on/off only for qwen3
    assert srv.chat_requests[-1]["think"] is False
    assert srv.pull_requests == {}  # the cloud model was never downloaded
    sent = len(srv.chat_requests)
    job = app.submit({"text": "hi", "files": []}, "gpt-oss:120b:cloud", "", 0.7, 4096, True,
                     False, "hard", api_name="/chat")  # a crafted level: not a choice
    with pytest.raises(Exception):
        job.result()
    assert len(srv.chat_requests) == sent  # refused before anything reached Ollama


def test_cloud_models_get_a_badge_and_no_fit_check(srv, monkeypatch):
    from contextpilot.policy import AccessPolicy
    from contextpilot.ui import render
    from contextpilot.ui.service import Service

    srv.add_cloud(FakeModel(name="gpt-oss:20b", family="gptoss"))
    list(cp.pull_model("gpt-oss:20b-cloud", srv.url))  # the stub Ollama writes
    service = Service(srv.url, AccessPolicy(shared=False), False)
    labels = dict((v, k) for k, v in service.models().choices())
    assert labels["gpt-oss:20b-cloud"].startswith("Cloud · gpt-oss:20b-cloud")
    assert labels["llama3.2:latest"].startswith("Installed · ")

    def no_fit(*a, **k):
        raise AssertionError("a cloud model was fit-checked")

    monkeypatch.setattr(cp, "check_fit", no_fit)
    note = service.note("gpt-oss:120b:cloud")
    assert "runs on ollama.com" in note and "nothing is downloaded" in note
    line = service.status_html()
    assert "cloud models available" in line
    srv.cloud_disabled = True
    assert "cloud models switched off" in service.status_html()
    assert render.thought_title(4.2) == "Thought for 4 s"


def test_an_image_for_a_cloud_model_never_downloads_it(app, srv, tmp_path):
    from gradio_client import handle_file

    from tests.test_ui_api import _png

    png = tmp_path / "dot.png"
    png.write_bytes(_png())
    srv.add_cloud(FakeModel(name="gemma3:27b", family="gemma3",
                            capabilities=["completion", "vision"]))
    job = app.submit({"text": "what is this?", "files": [handle_file(str(png))]},
                     "gemma3:27b:cloud", api_name="/chat")
    list(job)
    messages = job.outputs()[-1][0]
    assert answers(messages) == ["You said: what is this?"]  # ollama.com said: vision
    assert srv.chat_requests[-1]["messages"][-1]["images"] and srv.pull_requests == {}
    srv.signed_in = False  # nobody can say what it can do: the chat itself says why
    job = app.submit({"text": "and this?", "files": [handle_file(str(png))]},
                     "gpt-oss:120b:cloud", api_name="/chat")
    list(job)
    assert "`ollama signin`" in job.outputs()[-1][0][-1]["content"]
    assert srv.pull_requests == {}
