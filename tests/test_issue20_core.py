"""Issue 20, in the library: what a user felt against a real Ollama, item by item.

Each test names its item. The texts asserted are what a user reads (the CLI's stderr, the
chat's message, the Downloads panel's outcome)."""

from __future__ import annotations

import pytest

import contextpilot as cp
from contextpilot import pull as pull_engine

MSG = [{"role": "user", "content": "hi"}]
# What a real Ollama says when the registry's storage host went away mid-blob: the blob's
# signed URL, 400 characters of it (server/download.go, "max retries exceeded").
SIGNED = ('https://dd20bb891979d25aebc8bec07b2b3bbc.r2.cloudflarestorage.com/ollama/docker/'
          'registry/v2/blobs/sha256/d5/sha256-{hex}/data?X-Amz-Algorithm=AWS4-HMAC-SHA256'
          '&X-Amz-Credential=66898800fa6fd9b1b2ea8b9d5d1aaa26%2F20261207%2Fauto%2Fs3%2Faws4_'
          'request&X-Amz-Date=20261207T101530Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host'
          '&X-Amz-Signature=3c0d1c1c7f0b8a1f2ae1b3f1d36aa8f6f0e3b1aa94d2f1d4e0c0a8a5a5b1c2d3')
REGISTRY_GONE = (f'max retries exceeded: Get "{SIGNED}": dial tcp 104.18.8.90:443: connect: '
                 f'connection refused')
DIGEST = ("digest mismatch, file must be downloaded again: want sha256:{hex}, got "
          "sha256:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b")


@pytest.fixture(autouse=True)
def _fresh_engine():
    pull_engine._outcomes.clear()
    yield


def _chat_error(fake) -> cp.ContextPilotError:
    with pytest.raises(cp.ContextPilotError) as info:
        list(cp.chat_stream("mistral", MSG, host=fake.url))
    return info.value


def _pull_error(fake) -> cp.ContextPilotError:
    with pytest.raises(cp.ContextPilotError) as info:
        list(cp.pull_model("mistral", host=fake.url))
    return info.value


# -- item 2: the chat says what the library says ---------------------------------------------

@pytest.mark.parametrize("setup, kind, advice", [
    (lambda f: f.faults.disk_full(), "disk full", "Free some disk space"),
    (lambda f: setattr(f.faults, "pull_error", REGISTRY_GONE), "registry unreachable",
     "could not reach the model registry"),
    (lambda f: setattr(f.faults, "pull_error", DIGEST), "digest mismatch",
     "starts over from the beginning"),
], ids=["disk full", "registry gone", "digest mismatch"])
def test_item2_a_failed_auto_download_keeps_its_kind_and_advice(fake_ollama, setup, kind,
                                                                  advice):
    setup(fake_ollama)
    in_chat = _chat_error(fake_ollama)
    by_hand = _pull_error(fake_ollama)
    assert isinstance(in_chat, cp.PullFailed) and in_chat.auto
    assert in_chat.kind == by_hand.kind == kind
    assert "not found" not in str(in_chat)
    assert str(in_chat).startswith("Model 'mistral:latest' is not installed, and downloading "
                                   "it failed (")
    # the same reason and advice as pull_model's: only the lead differs
    assert str(in_chat).split(" failed ", 1)[1] == str(by_hand).split(" failed ", 1)[1]
    assert advice in str(in_chat)


def test_item2_a_signed_blob_url_reaches_no_text(fake_ollama):
    fake_ollama.faults.pull_error = REGISTRY_GONE
    error = _chat_error(fake_ollama)
    texts = [str(error), error.reason, *(o.message for o in cp.recent_pulls())]
    for text in texts:
        assert "X-Amz" not in text and "sha256" not in text and "?" not in text, text
    assert ('max retries exceeded: Get "https://dd20bb891979d25aebc8bec07b2b3bbc.r2.'
            'cloudflarestorage.com/…": dial tcp 104.18.8.90:443: connect: connection refused'
            ) in str(error)
    assert len(str(error)) < 500


# -- item 7: the advice fits the failure -----------------------------------------------------

def test_item7_a_digest_mismatch_starts_over_it_does_not_resume(fake_ollama):
    fake_ollama.faults.pull_error = DIGEST
    error = _pull_error(fake_ollama)
    assert error.kind == "digest mismatch"
    assert str(error) == (
        "Downloading model 'mistral:latest' failed (digest mismatch: the downloaded file was "
        "corrupt). The downloaded file did not match its checksum, so Ollama deleted it: try "
        "again, and the download starts over from the beginning (if it happens again, the "
        "registry or a proxy between it and Ollama is corrupting the file).")
    assert "resume" not in str(error)


@pytest.mark.parametrize("kind", [k for k in cp.errors.KINDS if k != "other"])
def test_item7_no_failure_with_its_own_advice_says_pull_it_manually(kind):
    error = cp.PullFailed("mistral:latest", "why", kind=kind)
    assert "pull it manually" not in str(error) and "ollama pull" not in str(error)


def test_item7_only_an_unknown_failure_points_at_ollamas_own_output():
    error = cp.PullFailed("mistral:latest", "something new", kind="other")
    assert str(error).endswith("If it keeps failing, pull it in a terminal to see Ollama's "
                               "own output: ollama pull mistral:latest")


def test_item7_a_cancel_the_user_pressed_is_not_a_failure(fake_ollama):
    fake_ollama.chunk_size, fake_ollama.event_delay = 50_000, 0.02
    values = cp.pull_model("mistral", host=fake_ollama.url)
    next(values)
    assert cp.cancel_pull("mistral", host=fake_ollama.url)
    with pytest.raises(cp.PullCancelled) as info:
        list(values)
    text = str(info.value)
    assert text == ("The download of 'mistral:latest' was cancelled. What was downloaded is "
                    "kept: starting it again resumes where it stopped.")
    assert "failed" not in text and "ollama pull" not in text
