"""Model management from Python: details, delete, running, load/unload, shared and
cancellable pulls, and the hardware-fit check."""

from __future__ import annotations

import threading

import pytest

import contextpilot as cp
from contextpilot import machine as hardware

GiB = 2**30


def test_model_details(fake_ollama):
    d = cp.model_details("qwen3:0.6b", host=fake_ollama.url)
    assert d.name == "qwen3:0.6b"
    assert (d.family, d.parameter_size, d.quantization) == ("qwen3", "751M", "Q4_K_M")
    assert "thinking" in d.capabilities and d.supports_thinking and not d.supports_vision
    assert d.context_length and d.context_length > 0
    assert d.template


def test_model_details_of_missing_model(fake_ollama):
    with pytest.raises(cp.ModelNotFound, match="ollama pull mistral:latest"):
        cp.model_details("mistral", host=fake_ollama.url)


def test_delete_then_not_listed(fake_ollama):
    assert cp.model_exists("llama3.2", host=fake_ollama.url)
    cp.delete_model("llama3.2", host=fake_ollama.url)
    assert "llama3.2:latest" not in fake_ollama.installed_names()
    assert not cp.model_exists("llama3.2", host=fake_ollama.url)
    assert "llama3.2:latest" not in [m.name for m in cp.list_models(host=fake_ollama.url)]
    with pytest.raises(cp.ModelNotFound):
        cp.delete_model("llama3.2", host=fake_ollama.url)


def test_load_running_unload(fake_ollama):
    assert cp.running_models(host=fake_ollama.url) == []
    cp.load_model("llama3.2", keep_alive="10m", host=fake_ollama.url)
    running = cp.running_models(host=fake_ollama.url)
    assert [r.name for r in running] == ["llama3.2:latest"]
    assert running[0].size > 0 and running[0].expires_at is not None
    body = [b for m, p, b in fake_ollama.requests if p == "/api/generate"][-1]
    assert body["keep_alive"] == "10m" and body.get("prompt", "") == ""
    cp.unload_model("llama3.2", host=fake_ollama.url)
    assert cp.running_models(host=fake_ollama.url) == []


def test_shared_pull_one_http_pull_two_consumers(fake_ollama):
    fake_ollama.chunk_size = 100_000
    fake_ollama.event_delay = 0.002
    results: dict[int, list] = {}
    started = threading.Barrier(2, timeout=10)

    def consume(i):
        started.wait()
        results[i] = list(cp.pull_model("mistral", host=fake_ollama.url))

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert fake_ollama.pull_requests["mistral:latest"] == 1
    for values in results.values():
        assert values[-1].done and values[-1].fraction == 1.0
        assert [v.completed for v in values] == sorted(v.completed for v in values)


def test_late_joiner_sees_the_current_position(fake_ollama):
    fake_ollama.chunk_size = 100_000
    fake_ollama.faults.stall_pull_after = 1_000_000
    first = cp.pull_model("mistral", host=fake_ollama.url)
    while next(first).completed < 1_000_000:
        pass
    second = cp.pull_model("mistral", host=fake_ollama.url)
    assert next(second).completed == 1_000_000  # attached mid-way, not from 0
    assert cp.is_pulling("mistral", host=fake_ollama.url)
    assert [p.model for p in cp.active_pulls(host=fake_ollama.url)] == ["mistral:latest"]
    first.close()
    assert cp.is_pulling("mistral", host=fake_ollama.url)  # the second still wants it
    second.close()
    assert fake_ollama.disconnected.wait(2)  # the last one out closed the stream
    assert fake_ollama.pull_requests["mistral:latest"] == 1


def test_cancel_then_resume(fake_ollama):
    fake_ollama.chunk_size = 200_000
    fake_ollama.event_delay = 0.005  # lines a little apart, as Ollama's (resumed is timed)
    fake_ollama.faults.stall_pull_after = 1_400_000
    gen = cp.pull_model("mistral", host=fake_ollama.url)
    while next(gen).completed < 1_400_000:
        pass
    assert cp.cancel_pull("mistral", host=fake_ollama.url)
    with pytest.raises(cp.PullCancelled) as info:
        for _ in gen:
            pass
    assert "cancelled" in str(info.value) and "resumes" in str(info.value)
    assert not cp.cancel_pull("mistral", host=fake_ollama.url)  # nothing left to cancel
    fake_ollama.faults.stall_pull_after = None
    values = list(cp.pull_model("mistral", host=fake_ollama.url))
    assert values[-1].done
    assert values[-1].resumed_bytes >= 1_400_000  # it says it resumed
    assert fake_ollama.pull_requests["mistral:latest"] == 2


def test_detached_pull_survives_its_consumer(fake_ollama):
    fake_ollama.chunk_size = 500_000
    fake_ollama.event_delay = 0.01
    gen = cp.pull_model("mistral", host=fake_ollama.url, detach=True)
    next(gen)
    gen.close()
    follow = list(cp.pull_model("mistral", host=fake_ollama.url))
    assert follow[-1].done
    assert fake_ollama.pull_requests["mistral:latest"] == 1


def test_different_models_pull_side_by_side(fake_ollama):
    from tests.conftest import REMOTE
    from tests.fake_ollama import FakeModel

    fake_ollama.add_remote(FakeModel(name="phi:latest", layers=[800_000, 100],
                                     family="phi", parameter_size="2B", quantization="Q4_0"))
    fake_ollama.faults.stall_pull_after = 300_000
    fake_ollama.chunk_size = 100_000
    a = cp.pull_model(REMOTE.name, host=fake_ollama.url)
    b = cp.pull_model("phi", host=fake_ollama.url)
    while next(a).completed < 300_000:
        pass
    while next(b).completed < 300_000:
        pass
    assert sorted(p.model for p in cp.active_pulls()) == ["mistral:latest", "phi:latest"]
    a.close()
    b.close()


# -- fit --------------------------------------------------------------------------------





def test_fit_fits(machine):
    v = cp.check_fit("mistral", host="http://127.0.0.1:11434")
    assert (v.fits_disk, v.fits_memory) == (True, True)
    assert v.download_size == 4_113_301_824 and v.size_source == "catalog"
    assert v.message == ("mistral:latest fits: a 4.1 GB download (100 GB free), about 4.7 GB "
                         "of memory (26 GB here). Memory = the file + 537 MB of KV cache for "
                         "a 4,096-token context.")  # 24 GiB, in decimal units
    assert v.memory_needed == 4_113_301_824 + 2 * 32 * 8 * 128 * 4096 * 2


def test_fit_too_big_for_memory(machine):
    v = cp.check_fit("llama3.1:70b", host="http://127.0.0.1:11434")
    assert v.fits_memory is False and v.fits_disk is True
    assert v.message.startswith("llama3.1:70b needs about 44 GB of memory; this machine has "
                                "26 GB. It will be very slow or fail to load.")


def test_fit_too_big_for_disk(machine):
    machine["free"] = 2_000_000_000
    v = cp.check_fit("mistral", host="http://127.0.0.1:11434")
    assert v.fits_disk is False and v.fits_memory is True
    assert v.message.startswith("mistral:latest is a 4.1 GB download but only 2.0 GB is free")
    assert "Free some space first." in v.message


def test_fit_remote_host_cannot_see_the_disk(machine):
    v = cp.check_fit("mistral", host="http://gpu-box:11434")
    assert v.fits_disk is None and v.free_disk is None
    assert "The disk check cannot be made: Ollama runs on another host" in v.message


def test_fit_uses_the_gpu_when_there_is_one(machine, mocker):
    mocker.patch.object(hardware.shutil, "which", return_value="/usr/bin/nvidia-smi")
    mocker.patch.object(hardware.subprocess, "run",
                        return_value=mocker.Mock(stdout="81920\n"))
    v = cp.check_fit("llama3.1:70b", host="http://127.0.0.1:11434")
    assert v.gpu_memory == 80 * GiB and v.fits_memory is True


def test_fit_unknown_size(machine, fake_ollama):
    v = cp.check_fit("someone/custom:tag", host=fake_ollama.url, probe=False)
    assert v.download_size is None and v.fits_disk is None and v.size_source == "unknown"
    assert "not known yet" in v.message


def test_pull_stops_at_the_first_layer_when_the_disk_is_too_small(fake_ollama, machine,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))  # Ollama's models live on our disk
    machine["free"] = 1_000_000  # mistral's weights layer is 4 MB
    fake_ollama.event_delay = 0.01  # still streaming when we hang up
    with pytest.raises(cp.PullFailed) as info:
        list(cp.pull_model("mistral", host=fake_ollama.url))
    assert info.value.kind == "disk full"
    assert "Free some disk space" in str(info.value)
    assert fake_ollama.partial_bytes("mistral") < 1_000_000
    assert fake_ollama.disconnected.wait(2)


def test_recommended_for_this_machine():
    from contextpilot.fit.catalog import recommended

    assert recommended(8 * GiB).memory <= 8 * GiB * 0.75
    assert recommended(1) is None


def test_disk_guard_stays_out_when_it_cannot_see_ollamas_disk(fake_ollama, machine,
                                                              tmp_path, monkeypatch):
    # A system service keeps models elsewhere: a wrong guess must not stop the pull.
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "not-here"))
    machine["free"] = 1_000_000
    assert list(cp.pull_model("mistral", host=fake_ollama.url))[-1].done
