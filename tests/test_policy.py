"""The rules of a shared app, from Python."""

import pytest

from contextpilot import AccessPolicy, InvalidModelName, NotAllowed


def test_private_app_allows_everything(fake_ollama):
    p = AccessPolicy(shared=False, host=fake_ollama.url)
    p.check_pull("anything:tag")
    for action in ("delete", "unload", "cancel"):
        p.check_action(action, "llama3.2")
    assert fake_ollama.requests == []  # no allowlist was needed


def test_shared_allowlist_defaults_to_installed_models(fake_ollama):
    p = AccessPolicy(shared=True, host=fake_ollama.url)
    p.check_pull("llama3.2")
    with pytest.raises(NotAllowed) as info:
        p.check_pull("mistral")
    assert str(info.value).startswith(
        "Downloads of 'mistral:latest' are not allowed on this shared app.")


def test_shared_refuses_operator_actions_unless_enabled(monkeypatch, fake_ollama):
    p = AccessPolicy(shared=True, allowed_models=["llama3.2"], host=fake_ollama.url)
    with pytest.raises(NotAllowed, match="Delete of 'llama3.2:latest' is not allowed"):
        p.check_action("delete", "llama3.2")
    monkeypatch.setenv("CONTEXTPILOT_ALLOW_DELETE", "1")
    monkeypatch.setenv("SPACE_ID", "me/space")
    q = AccessPolicy.from_env(host=fake_ollama.url)
    assert q.shared
    q.check_action("delete", "llama3.2")
    with pytest.raises(NotAllowed):
        q.check_action("unload", "llama3.2")


@pytest.mark.parametrize("kw,env,shared", [
    ({}, {}, False),
    ({"share": True}, {}, True),
    ({"server_name": "0.0.0.0"}, {}, True),
    ({}, {"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ({}, {"SPACE_ID": "x/y"}, True),
    ({"server_name": "127.0.0.1"}, {}, False),
])
def test_when_an_app_is_shared(monkeypatch, kw, env, shared):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert AccessPolicy.from_env(**kw).shared is shared


def test_allowlist_from_env(monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_ALLOWED_MODELS", "qwen3:0.6b, mistral")
    p = AccessPolicy.from_env(share=True)
    assert p.may_pull("Mistral:latest") and p.may_pull("qwen3:0.6b")
    assert not p.may_pull("llama3.2")


def test_message_limits():
    p = AccessPolicy(shared=True, allowed_models=[])
    p.check_message("hello")
    with pytest.raises(NotAllowed, match="too long"):
        p.check_message("x" * 100_001)
    with pytest.raises(InvalidModelName):
        p.check_pull("../../etc/passwd")
