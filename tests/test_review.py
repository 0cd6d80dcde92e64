"""Hostile and odd input found in review: each reaches the user as one readable sentence."""

from __future__ import annotations

import pytest

import contextpilot as cp
from contextpilot import cli

HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("messages", [None, "hi", [1], {"role": "user", "content": "x"}])
def test_messages_that_are_not_a_list_of_dicts_are_an_invalid_request(ollama_env, messages):
    with pytest.raises(cp.InvalidRequest, match="messages must be a list of chat messages"):
        list(cp.chat_stream("llama3.2", messages))


@pytest.mark.parametrize("kw, words", [
    ({"messages": [{"content": "x"}]}, "role: Field required."),
    ({"options": "notadict"}, "options: Input should be a valid dictionary."),
    ({"messages": [{"role": "user", "content": "x", "images": ["nob64"]}]},
     "Invalid image data, expected base64 string or path to image file"),
])
def test_a_client_validation_error_is_one_line_without_pydantic_noise(ollama_env, kw, words):
    kw.setdefault("messages", HELLO)
    with pytest.raises(cp.InvalidRequest) as info:
        list(cp.chat_stream("llama3.2", **kw))
    text = str(info.value)
    assert words in text and "\n" not in text
    assert "pydantic" not in text and "type=" not in text and "serialize_model" not in text


@pytest.mark.parametrize("host", ["http://[::1", "http://x:99999", "http://x:abc"])
def test_a_malformed_host_is_an_invalid_request(host, capsys):
    with pytest.raises(cp.InvalidRequest, match="is not an Ollama address"):
        cp.list_models(host)
    assert cli.main(["--ollama-host", host, "list"]) == 1
    err = capsys.readouterr().err
    assert "is not an Ollama address" in err and "Please report it" not in err


class _NotOllama:
    """A real HTTP server on 127.0.0.1 that answers every request with one fixed response:
    what a user reaches when OLLAMA_HOST points at a proxy or another web app."""

    def __init__(self, status: int, ctype: str, body: bytes) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status, ctype, body", [
    (200, "text/html", b"<html><body>Welcome to nginx</body></html>"),
    (200, "application/json", b"[1, 2]"),
    (200, "application/json", b'{"models": [{"name": 5, "size": "x"}]}'),
])
@pytest.mark.parametrize("call", ["ps", "pull", "chat"])
def test_a_server_that_is_not_ollama_says_to_check_the_address(status, ctype, body, call):
    if call == "pull" and body.startswith(b"{"):
        pytest.skip("a JSON object without a status is a pull that ended before success")
    srv = _NotOllama(status, ctype, body)
    try:
        with pytest.raises(cp.ContextPilotError) as info:
            if call == "ps":
                cp.running_models(srv.url)
            elif call == "pull":
                list(cp.pull_model("llama3.2", host=srv.url))
            else:
                list(cp.chat_stream("qwen3:cloud", HELLO, host=srv.url))
    finally:
        srv.close()
    text = str(info.value)
    assert not isinstance(info.value, cp.InvalidRequest)  # the request was fine
    assert f"The server at {srv.url}" in text or f"the server at {srv.url}" in text
    assert "Check that OLLAMA_HOST (or --ollama-host) points at Ollama" in text
    assert "Error" not in text.replace("Error:", "") and "pydantic" not in text


def test_an_html_error_page_is_named_as_such_not_quoted(capsys):
    srv = _NotOllama(502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    try:
        code = cli.main(["--ollama-host", srv.url, "list"])
    finally:
        srv.close()
    err = capsys.readouterr().err
    assert code == 1 and "answered HTTP 502 with a web page, not Ollama's JSON" in err
    assert "<html>" not in err and "Traceback" not in err


@pytest.mark.parametrize("line, kind, advice", [
    ('pull model manifest: Get "https://registry.ollama.ai/v2/library/mistral/manifests/'
     'latest": dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: no such host',
     "registry unreachable", "could not reach the model registry"),
    ('max retries exceeded: Get "https://example.r2.cloudflarestorage.com/x": net/http: '
     'TLS handshake timeout', "registry unreachable", "could not reach the model registry"),
    ("pull model manifest: 412: \n\nThe model you are attempting to pull requires a newer "
     "version of Ollama.\n\nPlease download the latest version at:\n\n\t"
     "https://ollama.com/download\n\n", "update ollama", "needs a newer version of Ollama"),
    ("this model requires MLX support, but the MLX runtime is not available", "unsupported",
     "choose a GGUF build of the model instead"),
    ("open /root/.ollama/models/blobs/sha256-ab-partial-0: permission denied", "permission",
     "Ollama cannot write where it keeps its models"),
])
def test_pull_errors_from_the_server_side_say_what_to_fix(fake_ollama, capsys, line, kind,
                                                         advice):
    fake_ollama.faults.pull_error_line = {"error": line}
    with pytest.raises(cp.PullFailed) as info:
        list(cp.pull_model("mistral", host=fake_ollama.url))
    assert info.value.kind == kind and advice in str(info.value)
    assert "\n" not in str(info.value)
    assert cli.main(["--ollama-host", fake_ollama.url, "pull", "mistral"]) == 1
    err = capsys.readouterr().err
    assert advice in err and "Traceback" not in err


def test_an_option_of_the_wrong_type_is_ollamas_500_and_an_invalid_request(ollama_env):
    with pytest.raises(cp.InvalidRequest) as info:
        list(cp.chat_stream("llama3.2", HELLO, options={"num_ctx": "abc"}))
    assert 'Ollama refused an option: option "num_ctx" must be of type integer' in str(info.value)
    assert ollama_env.chat_requests[-1]["options"] == {"num_ctx": "abc"}


@pytest.mark.parametrize("name, shown", [("gpt-oss:120b:cloud", "gpt-oss:120b-cloud"),
                                         ("mistral", "mistral:latest")])
def test_removing_a_model_that_is_not_here_says_nothing_to_delete(ollama_env, capsys, name,
                                                                  shown):
    with pytest.raises(cp.ModelNotFound) as info:
        cp.delete_model(name)
    assert str(info.value) == f"Model '{shown}' is not installed, so there is nothing to delete."
    assert cli.main(["rm", name]) == 1
    err = capsys.readouterr().err
    assert "ollama.com" not in err and "pull it first" not in err


@pytest.mark.parametrize("argv, think, prompt", [
    (["--think", "why is the sky blue?"], True, "why is the sky blue?"),
    (["--think", "high", "a prompt"], "high", "a prompt"),
    (["--system", "be brief", "a prompt"], None, "a prompt"),
    (["a prompt", "--think"], True, "a prompt"),
])
def test_chat_takes_the_prompt_wherever_the_options_are(ollama_env, capsys, argv, think, prompt):
    assert cli.main(["chat", "qwen3:0.6b", *argv]) == 0
    sent = ollama_env.chat_requests[-1]
    assert sent.get("think") == think and sent["messages"][-1]["content"] == prompt
    assert f"You said: {prompt}" in capsys.readouterr().out


def test_a_bad_think_level_before_a_prompt_is_still_a_usage_error(ollama_env, capsys):
    assert cli.main(["chat", "qwen3:0.6b", "--think", "bogus", "a prompt"]) == 2
    err = capsys.readouterr().err
    assert "argument --think: expected one of low, medium, high, max (or on/off), not 'bogus'" \
        in err and ollama_env.chat_requests == []


def test_a_hub_file_with_a_broken_size_is_unknown_not_a_zero_byte_fit(monkeypatch):
    from huggingface_hub import constants

    from tests.fake_hub import FakeHub, FakeRepo

    hub = FakeHub()
    hub.add(FakeRepo("odd/Broken-GGUF", files={"m-Q4_K_M.gguf": -5, "m-Q8_0.gguf": 10**20}))
    hub.start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        quants = cp.model_files("odd/Broken-GGUF")
        verdict = cp.check_fit("hf.co/odd/Broken-GGUF:Q4_K_M", host="http://127.0.0.1:9")
    finally:
        hub.stop()
    assert [(q.tag, q.size, q.fit) for q in quants] == [("Q4_K_M", 0, None), ("Q8_0", 0, None)]
    assert not any(q.recommended for q in quants)
    assert verdict.fits_memory is None and "0 B" not in verdict.message
    assert "did not give the size" in verdict.message


def test_an_answer_cut_at_num_predict_says_so(ollama_env):
    import io

    from contextpilot import console

    out, note = io.StringIO(), io.StringIO()
    answer = console.print_chat("llama3.2", "one two three four five six", file=out,
                                progress_file=note, options={"num_predict": 3})
    assert answer == "You said: one" and out.getvalue().startswith("You said: one")
    assert note.getvalue().strip() == console.LENGTH_NOTE
    long = [{"role": "user", "content": "one two three four"}]
    done = list(cp.chat_stream("llama3.2", long, options={"num_predict": 3}))[-1]
    assert done.done_reason == "length"
    out, note = io.StringIO(), io.StringIO()
    console.print_chat("llama3.2", "hi", file=out, progress_file=note)
    assert note.getvalue() == ""


@pytest.mark.parametrize("name, where", [
    ("hf.co/bartowski/nope:Q4_K_M", "was not found on Hugging Face (hf.co)."),
    ("127.0.0.1:5000/library/nope", "was not found on the registry 127.0.0.1:5000."),
])
def test_a_model_missing_from_another_registry_does_not_point_at_ollamas_library(
        fake_ollama, name, where):
    with pytest.raises(cp.ModelNotFound) as info:
        list(cp.pull_model(name, host=fake_ollama.url))
    text = str(info.value)
    assert where in text and "ollama.com/library" not in text and "ollama pull" not in text


def test_a_missing_library_model_still_points_at_the_library(fake_ollama):
    with pytest.raises(cp.ModelNotFound, match="was not found in the Ollama registry. Check the "
                       "name and tag \\(see https://ollama.com/library\\)"):
        list(cp.pull_model("someone/nope", host=fake_ollama.url))




def test_an_absurd_manifest_size_is_not_a_size(registry, dead_host):
    registry.add("library/huge:1", [10**30])
    v = cp.check_fit("huge:1", host=dead_host)
    assert v.download_size is None and v.fits_memory is None
    assert "sent something that is not a manifest" in v.message and "TB" not in v.message


def test_a_registry_error_page_is_not_quoted(registry, dead_host):
    registry.add("library/paged:1", [1000])
    registry.faults["library/paged:1"] = "html-502"
    v = cp.check_fit("paged:1", host=dead_host)
    assert "answered 502." in v.message and "<" not in v.message


@pytest.mark.parametrize("call", ["ps", "chat"])
def test_a_bare_500_says_where_to_look(call):
    srv = _NotOllama(500, "application/json", b"")
    try:
        with pytest.raises(cp.OllamaError) as info:
            if call == "ps":
                cp.running_models(srv.url)
            else:
                list(cp.chat_stream("qwen3:cloud", HELLO, host=srv.url))
    finally:
        srv.close()
    assert str(info.value) == (
        "Ollama reported an error: HTTP 500. Try again; if it persists, Ollama's log says why "
        "(the 'ollama serve' output, or ~/.ollama/logs/server.log).")


@pytest.mark.parametrize("limit", [0, -1, 101, 10**9, "5", None])
def test_a_search_limit_outside_its_range_is_refused_before_the_hub(limit, capsys):
    with pytest.raises(cp.InvalidRequest, match="limit must be a whole number from 1 to 100"):
        cp.search_models("llama", limit=limit)
    if isinstance(limit, int):
        assert cli.main(["search", "llama", "--limit", str(limit)]) == 1
        assert "limit must be a whole number from 1 to 100" in capsys.readouterr().err
