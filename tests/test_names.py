"""Model names are parsed, validated and compared as Ollama does."""

import pytest

from contextpilot import InvalidModelName, parse_name, same_model


@pytest.mark.parametrize("a,b", [
    ("llama3.2", "llama3.2:latest"),
    ("llama3.2", "registry.ollama.ai/library/llama3.2:latest"),
    ("LLAMA3.2:Latest", "llama3.2"),
    ("hf.co/User/Repo:Q4_K_M", "hf.co/user/repo:q4_k_m"),
    ("user/model:tag", "registry.ollama.ai/user/model:tag"),
])
def test_same_model(a, b):
    assert same_model(a, b)


@pytest.mark.parametrize("a,b", [
    ("llama3.2:1b", "llama3.2"),
    ("user/model", "model"),
    ("hf.co/user/repo", "user/repo"),
])
def test_different_models(a, b):
    assert not same_model(a, b)


HOSTILE = [
    "", "   ", "\t\n", "a" * 10_000, "../../etc/passwd", "../x", "a;rm -rf /", "$(reboot)",
    "model:tag:extra", "a/b/c/d", "llama3.2\x00", "модель", "x y", "-leading-dash",
    ":latest", "llama:", "/llama", "a" * 81, "llama:" + "t" * 81, "name@sha256:abc",
    "<script>alert(1)</script>", "llama|cat", None, 42,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_invalid_names_are_refused_with_a_message(name):
    with pytest.raises(InvalidModelName) as info:
        parse_name(name)
    text = str(info.value)
    assert text.startswith("Invalid model name")
    assert "llama3.2" in text  # shows what a valid name looks like
    assert len(text) < 400  # a 10,000-character name is not echoed back whole


def test_limits_follow_ollama():
    assert parse_name("a" * 80).model == "a" * 80
    assert parse_name("m:" + "t" * 80).tag == "t" * 80
    assert parse_name("_under/score_:x").namespace == "_under"
