"""Hugging Face GGUF search, quantisations and their fit, through the real huggingface_hub
client against a fake Hub on 127.0.0.1; and the CLI's search and fit commands."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

import contextpilot as cp
from contextpilot import cli, hub as hubmod, machine as hardware
from tests.fake_hub import sample_hub

GiB = 2**30
BARTOWSKI = "bartowski/Llama-3.2-1B-Instruct-GGUF"




@pytest.fixture
def hub(monkeypatch):
    """The fake Hub as HF_ENDPOINT, with huggingface_hub's offline switch (set by
    scripts/test.sh) turned off for these tests."""
    from huggingface_hub import constants

    srv = sample_hub().start()
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield srv
    srv.stop()


def test_search_finds_gguf_repositories_most_downloaded_first(hub):
    found = cp.search_models("llama 3.2 1b", limit=5)
    assert [m.id for m in found] == [BARTOWSKI, "unsloth/Llama-3.2-1B-Instruct-GGUF"]
    top = found[0]
    assert (top.downloads, top.likes) == (250_000, 120)
    assert isinstance(top.last_modified, datetime)
    query = hub.requests[0]
    assert query.startswith("/api/models?")
    for part in ("search=llama+3.2+1b", "filter=gguf", "sort=downloads", "limit=5"):
        assert part in query, query


@pytest.mark.parametrize("query, words", [("", "Type a few words"), ("   ", "Type a few words"),
                                          ("x" * 201, "The search is too long"),
                                          (None, "Type a few words")])
def test_bad_queries_are_refused_before_any_request(hub, query, words):
    with pytest.raises(cp.InvalidRequest, match=words):
        cp.search_models(query)
    assert hub.requests == []


def test_quantisations_with_sizes_fit_and_the_recommended_one(hub, machine):
    quants = cp.model_files(BARTOWSKI)
    assert [q.tag for q in quants] == ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0",
                                       "F16"]
    q4 = quants[2]
    assert (q4.size, q4.name, q4.pullable) == (807_694_464, f"hf.co/{BARTOWSKI}:Q4_K_M", True)
    assert q4.fit.fits_memory and q4.fit.size_source == "hub"
    assert [q.tag for q in quants if q.recommended] == ["Q4_K_M"]  # several fit: Q4_K_M


def test_on_a_small_machine_the_largest_that_fits_is_recommended(hub, machine):
    machine["ram"] = 1_100_000_000  # the file + 134 MB of KV cache at 4k tokens
    machine["free"] = 50_000_000_000
    quants = cp.model_files(BARTOWSKI)
    fitting = [q.tag for q in quants if q.fit.fits_memory]
    assert fitting == ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M"]
    machine["ram"] = 900_000_000  # Q4_K_M (942 MB) no longer fits: the largest that does
    quants = cp.model_files(BARTOWSKI)
    assert [q.tag for q in quants if q.recommended] == ["Q3_K_M"]


def test_a_vision_projector_is_listed_as_such(hub, machine):
    quants = cp.model_files("hf.co/ggml-org/gemma-3-4b-it-GGUF")
    proj = [q for q in quants if q.projector]
    assert [q.tag for q in proj] == ["mmproj-model-f16"]
    assert not proj[0].pullable and "vision projector" in proj[0].reason
    assert proj[0].fit is None and not proj[0].recommended


def test_sharded_quants_cannot_be_pulled_and_say_so(hub, machine):
    quants = {q.tag: q for q in cp.model_files("someone/Huge-405B-GGUF")}
    sharded = quants["Q4_K_M"]
    assert sharded.size == 5 * 49_000_000_000 and len(sharded.files) == 5
    assert not sharded.pullable
    assert "Ollama cannot pull a sharded GGUF" in sharded.reason
    assert quants["IQ1_S"].pullable and quants["IQ1_S"].fit.fits_memory is False
    assert not any(q.recommended for q in quants.values())


@pytest.mark.parametrize("repo, words", [
    ("someone/nothing-here", "does not exist or it is private"),
    ("someone/secret-GGUF", "does not exist or it is private"),  # the Hub answers 401
    ("someone/llama-safetensors", "has no GGUF files"),
])
def test_missing_private_and_non_gguf_repositories(hub, repo, words):
    with pytest.raises(cp.HubNotFound, match=words):
        cp.model_files(repo)


@pytest.mark.parametrize("repo", ["../x", "a/../b", "%2e%2e/x", "/abs/path", "a//b", "a/b/c",
                                  "", "a", "a/b.git", "ü/x", "a/b?x=1", "a/ b", 42])
def test_repo_ids_with_path_tricks_are_refused_before_any_request(hub, repo):
    with pytest.raises(cp.InvalidRequest, match="is not a Hugging Face repository id"):
        cp.model_files(repo)
    assert hub.requests == []


def test_a_quant_not_in_the_repo(hub, machine):
    with pytest.raises(cp.HubNotFound) as info:
        cp.model_files(BARTOWSKI, quant="Q9_K")
    assert str(info.value).startswith(f"hf.co/{BARTOWSKI} has no Q9_K quantisation. Choose "
                                      f"one it has: Q2_K, Q3_K_M, Q4_K_M")
    assert [q.tag for q in cp.model_files(BARTOWSKI, quant="q8_0")] == ["Q8_0"]


def test_a_slow_hub_times_out_quickly_and_is_not_retried(hub, monkeypatch):
    monkeypatch.setattr(hubmod, "HUB_TIMEOUT", 0.3)
    hub.slow = 5
    started = time.monotonic()
    with pytest.raises(cp.HubUnavailable, match="did not answer within 0.3 s"):
        cp.search_models("llama")
    assert time.monotonic() - started < 2.5
    assert len(hub.requests) == 1


def test_a_hub_that_is_down_or_failing(hub):
    hub.status = 500
    with pytest.raises(cp.HubUnavailable, match="answered HTTP 500"):
        cp.search_models("llama")
    assert len(hub.requests) == 1  # no back-off retries
    hub.stop()
    started = time.monotonic()
    with pytest.raises(cp.HubUnavailable, match="cannot be reached"):
        cp.model_files(BARTOWSKI)
    assert time.monotonic() - started < 2.5


def test_offline_mode_is_a_clear_sentence(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(cp.HubUnavailable, match=r"offline mode is on \(HF_HUB_OFFLINE=1\)"):
        cp.search_models("llama")
    assert hub.requests == []


# -- check_fit for hf.co names ---------------------------------------------------------------

@pytest.fixture
def lookups(monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")


def test_check_fit_sizes_an_hf_quant_from_the_hub(hub, machine, lookups):
    v = cp.check_fit(f"hf.co/{BARTOWSKI}:Q4_K_M", host="http://127.0.0.1:9")
    assert (v.size_source, v.download_size) == ("hub", 807_694_464)
    assert v.fits_disk and v.fits_memory
    assert cp.check_fit(f"hf.co/{BARTOWSKI}", host="http://127.0.0.1:9").download_size == \
        807_694_464  # no tag: Q4_K_M, as Ollama picks
    assert cp.check_fit(f"hf.co/{BARTOWSKI}:q8_0",
                        host="http://127.0.0.1:9").download_size == 1_321_082_528


def test_check_fit_of_a_missing_quant_or_sharded_file(hub, machine, lookups, fake_ollama):
    v = cp.check_fit(f"hf.co/{BARTOWSKI}:Q9_K", host=fake_ollama.url)
    assert v.download_size is None and "has no Q9_K quantisation" in v.message
    v = cp.check_fit("hf.co/someone/Huge-405B-GGUF:Q4_K_M", host=fake_ollama.url)
    assert "Ollama cannot pull a sharded GGUF" in v.message
    assert fake_ollama.pull_requests == {}  # no probe for what the Hub already answered


# -- the CLI ---------------------------------------------------------------------------------

def test_cli_search_lists_repositories(hub, capsys):
    assert cli.main(["search", "llama", "3.2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED"]
    assert out[1].startswith(BARTOWSKI) and "250,000" in out[1]


def test_cli_search_shows_quants_of_a_repo(hub, machine, capsys):
    assert cli.main(["search", "--files", BARTOWSKI]) == 0
    out = capsys.readouterr().out
    assert f"hf.co/{BARTOWSKI}:Q4_K_M" in out and "recommended" in out


def test_cli_fit(hub, machine, lookups, capsys):
    assert cli.main(["fit", f"hf.co/{BARTOWSKI}:Q4_K_M", "--ollama-host",
                     "http://127.0.0.1:9"]) == 0
    out = capsys.readouterr().out
    assert "fits" in out and "(size from the Hugging Face Hub)" in out


@pytest.mark.parametrize("argv, words", [
    (["search", ""], "Type a few words"),
    (["search", "--files", "../etc"], "is not a Hugging Face repository id"),
    (["search", "--files", "someone/nothing-here"], "does not exist or it is private"),
    (["fit", "bad name!"], "Invalid model name"),
])
def test_cli_errors_are_one_line_and_exit_1(hub, machine, capsys, argv, words):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


# -- the Find models tab, through the running app ----------------------------------------------

@pytest.mark.usefixtures("roomy_machine")
def test_find_tab_errors_are_sentences_and_the_app_keeps_working(hub, fake_ollama):
    from tests.ui_helpers import call_event, running_app

    with running_app(fake_ollama.url) as url:
        status, *_ = call_event(url, "find_models", "llama 3.2")
        assert status == "2 repositories. Choose one to see its quantisations."
        with pytest.raises(RuntimeError, match="not in the list of choices"):
            call_event(url, "model_files", "../../etc/passwd")  # only a search's results
        hub.stop()
        status, *_ = call_event(url, "find_models", "llama")
        assert status.startswith("⚠️ The Hugging Face Hub at") and "cannot be reached" in status
        assert call_event(url, "refresh_models", None)[0]  # the rest of the app still answers


def test_the_kv_cache_comes_from_the_gguf_header(hub, machine, lookups):
    quants = cp.model_files(BARTOWSKI, context_length=131072)
    kv = 2 * 16 * 8 * 64 * 131072 * 2  # Llama 3.2 1B: 16 layers, 8 KV heads of 64
    assert {q.fit.kv_cache for q in quants} == {kv}
    assert len(hub.resolved) == 1  # one ranged read for the whole repository
    assert "KV cache for a 131,072-token context." in quants[0].fit.message
    v = cp.check_fit(f"hf.co/{BARTOWSKI}:Q8_0", host="http://127.0.0.1:9",
                     context_length=8192)
    assert v.kv_cache == 2 * 16 * 8 * 64 * 8192 * 2
    gemma = cp.model_files("ggml-org/gemma-3-4b-it-GGUF")  # no header: the stated margin
    assert "a margin from the file size" in gemma[0].fit.message


def test_gguf_headers_that_are_cut_short_or_not_gguf():
    from contextpilot.hub.gguf import arch_counts, read_metadata
    from tests.fake_hub import LLAMA_1B, write_header

    header = write_header(LLAMA_1B)
    assert arch_counts(read_metadata(header[:4096])) == (16, 8, 64)
    assert arch_counts(read_metadata(header[:60])) is None  # cut before the counts
    assert read_metadata(b"<html>not a model</html>") == {}
    assert read_metadata(b"GGUF" + b"\xff" * 40) == {}  # absurd lengths: nothing read


@pytest.mark.parametrize("limit", ["5", 2.5, None, True])
def test_a_bad_limit_is_a_clear_error(hub, limit):
    with pytest.raises(cp.InvalidRequest, match="limit must be a whole number"):
        cp.search_models("llama", limit=limit)
    assert hub.requests == []
