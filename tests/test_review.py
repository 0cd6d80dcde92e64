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
