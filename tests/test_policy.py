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
    ({}, {"GRADIO_SHARE": "True"}, True),
    ({}, {"SPACE_ID": "x/y"}, True),
    ({"server_name": "127.0.0.1"}, {}, False),
])
def test_when_an_app_is_shared(monkeypatch, loopback_only, kw, env, shared):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    p = AccessPolicy.from_env(**kw)
    assert p.shared  # nothing to ask yet (no request): shared
    p.visit = lambda: Visit(**LOCAL)  # a plain request from this machine
    assert p.shared is shared


def test_an_explicit_policy_wins(loopback_only):
    public = Visit(**{**LOCAL, "served": True})
    assert AccessPolicy(shared=False, visit=lambda: public).shared is False
    assert AccessPolicy(shared=True, visit=lambda: Visit(**LOCAL)).shared is True
    assert AccessPolicy(visit=lambda: public).shared is True
    assert AccessPolicy().shared is True  # cannot tell: shared


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


# -- per request: a Visit ---------------------------------------------------------------------

from contextpilot.policy import UNKNOWN_VISIT, Visit, hosted_environment  # noqa: E402

LOCAL = dict(client="127.0.0.1", headers={"host": "127.0.0.1:7860"}, port=None)


@pytest.fixture
def loopback_only(monkeypatch):
    """The server's socket table says: bound to loopback only."""
    from contextpilot import policy

    monkeypatch.setattr(policy, "listens_beyond_loopback", lambda port: False)


@pytest.mark.parametrize("change,why", [
    ({}, None),
    ({"headers": {"host": "localhost:7860", "origin": "http://localhost:7860"}}, None),
    ({"client": "192.168.1.20"}, "another machine"),
    ({"client": None}, "another machine"),
    ({"headers": {"host": "127.0.0.1:7860", "x-forwarded-for": "203.0.113.9"}}, "proxy"),
    ({"headers": {"host": "127.0.0.1:7860", "via": "1.1 nginx"}}, "proxy"),
    ({"headers": {"host": "contextpilot.example.com"}}, "another host"),
    ({"headers": {}}, "another host"),
    ({"headers": {"host": "127.0.0.1:7860", "origin": "https://evil.example"}}, "another site"),
    ({"headers": {"host": "127.0.0.1:7860", "origin": "null"}}, "another site"),
    ({"headers": {"host": "127.0.0.1:7860", "sec-fetch-site": "cross-site"}}, "another site"),
    # another page of this machine: another port, another name for it, another scheme
    ({"headers": {"host": "127.0.0.1:7860", "origin": "http://127.0.0.1:8000"}}, "another page"),
    ({"headers": {"host": "127.0.0.1:7860", "origin": "http://localhost:7860"}}, "another page"),
    ({"headers": {"host": "localhost:7860", "origin": "http://localhost"}}, "another page"),
    ({"headers": {"host": "127.0.0.1:7860", "origin": "https://127.0.0.1:7860"}}, "another page"),
    ({"headers": {"host": "127.0.0.1:7860", "sec-fetch-site": "same-site"}}, "another page"),
    ({"headers": {"host": "127.0.0.1:7860", "sec-fetch-site": "same-origin",
                  "origin": "http://127.0.0.1:7860"}}, None),
    ({"headers": {"host": "127.0.0.1:7860", "sec-fetch-site": "none"}}, None),
    ({"root_path": "/cp"}, "proxy path"),
    ({"served": True}, "public"),
])
def test_what_makes_a_request_a_visitors(loopback_only, change, why):
    said = Visit(**{**LOCAL, **change}).why_shared()
    assert (said is None) if why is None else (why in said), said


def test_a_socket_bound_beyond_loopback_makes_it_shared():
    import socket

    with socket.socket() as wide, socket.socket() as narrow:
        wide.bind(("0.0.0.0", 0))
        narrow.bind(("127.0.0.1", 0))
        wide.listen()
        narrow.listen()
        assert "beyond" in Visit(**{**LOCAL, "port": wide.getsockname()[1]}).why_shared()
        assert Visit(**{**LOCAL, "port": narrow.getsockname()[1]}).why_shared() is None


def test_the_policy_asks_the_request_and_fails_closed(loopback_only, fake_ollama):
    visits = [Visit(**LOCAL)]
    p = AccessPolicy(allowed_models=["llama3.2"], host=fake_ollama.url,
                     visit=lambda: visits[-1])
    p.check_action("delete", "llama3.2")  # this machine, no proxy: the operator
    visits.append(UNKNOWN_VISIT)  # a request nobody could describe
    with pytest.raises(NotAllowed):
        p.check_action("delete", "llama3.2")


@pytest.mark.parametrize("env,place", [
    ({"SPACE_ID": "me/app"}, "Space"), ({"COLAB_RELEASE_TAG": "release-colab"}, "Colab"),
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "Kaggle"),
    ({"DATABRICKS_RUNTIME_VERSION": "15.4"}, "Databricks"), ({}, None),
])
def test_hosted_notebooks_are_shared(monkeypatch, env, place):
    for k in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE",
              "DATABRICKS_RUNTIME_VERSION", "SYSTEM"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    found = hosted_environment()
    assert (found is None) if place is None else (place in found)
    assert AccessPolicy.from_env().explicit is (place is not None)  # shared at build time


def test_cloud_models_need_the_allowlist_to_name_them(fake_ollama):
    implicit = AccessPolicy(shared=True, host=fake_ollama.url)  # the installed models
    assert not implicit.may_pull("gpt-oss:120b-cloud") and not implicit.may_pull("qwen3:cloud")
    with pytest.raises(NotAllowed, match="ollama.com account"):
        implicit.check_chat("qwen3:cloud")
    implicit.check_chat("llama3.2")
    named = AccessPolicy(shared=True, allowed_models=["qwen3:cloud"])
    named.check_chat("qwen3:cloud")
    AccessPolicy(shared=False).check_chat("qwen3:cloud")  # the operator's own app
