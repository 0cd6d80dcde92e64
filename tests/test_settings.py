"""One settings reader, one loopback helper, one auth parser (issue 13, part 4).

Flags take every spelling, in any case; a bad value is one message naming the variable (in
the library, the CLI and ``python app.py``, never a traceback, never at import); switching
a feature off really switches it off, seen on the fake servers; IPv6 loopback is local.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest

import contextpilot as cp
from contextpilot import cli, machine as hardware, netaddr, settings
from contextpilot.autostart import Autostart, ensure_ollama
from contextpilot.policy import _loopback_host, is_loopback_bind
from contextpilot.pull._disk import DiskGuard
from tests.conftest import REMOTE, ROOT, SMALL
from tests.fake_ollama import FakeModel, FakeOllama

WIDGET = FakeModel(name="acme/widget:1b", layers=[2_000_000, 300])
ON = ["1", "true", "yes", "on", "TRUE", "Yes", "oN", " on ", "\ttrue\n"]
OFF = ["0", "false", "no", "off", "FALSE", "No", "oFf", " 0 ", "\tfalse\n"]


# -- flags and numbers ----------------------------------------------------------------------

@pytest.mark.parametrize("spelling, expected", [(s, True) for s in ON] + [(s, False) for s in OFF])
def test_every_flag_takes_every_spelling(monkeypatch, spelling, expected):
    for name in settings.FLAGS:
        monkeypatch.setenv(name, spelling)
        assert settings.flag(name) is expected, (name, spelling)


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_unset_or_empty_flag_is_its_default(monkeypatch, blank):
    for name, default in settings.FLAGS.items():
        monkeypatch.delenv(name, raising=False)  # conftest turns registry lookups off
        assert settings.flag(name) is default
        monkeypatch.setenv(name, blank)
        assert settings.flag(name) is default


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru", "y", "1 0"])
def test_a_bad_flag_names_the_variable_its_value_and_what_to_set(monkeypatch, value):
    monkeypatch.setenv("CONTEXTPILOT_DISK_CHECK", value)
    with pytest.raises(cp.SettingError) as e:
        settings.flag("CONTEXTPILOT_DISK_CHECK")
    assert str(e.value) == (
        f"CONTEXTPILOT_DISK_CHECK={value!r} is not valid. Set it to 1, true, yes or on, or to "
        f"0, false, no or off (in any case), or unset it for the default (on).")
    assert isinstance(e.value, cp.ContextPilotError) and e.value.name == "CONTEXTPILOT_DISK_CHECK"


@pytest.mark.parametrize("value, seconds", [("3", 3.0), (" 2.5 ", 2.5), ("1e1", 10.0),
                                            ("0.05", 0.05)])
def test_seconds_take_any_positive_number(monkeypatch, value, seconds):
    for name in settings.SECONDS:
        monkeypatch.setenv(name, value)
        assert settings.seconds(name) == seconds


def test_unset_seconds_are_the_defaults(monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_READ_TIMEOUT", " ")
    assert [settings.seconds(n) for n in settings.SECONDS] == [3.0, 30.0, 120.0]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf", "-inf", "3s", "1,5"])
def test_a_malformed_or_out_of_range_number_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv("CONTEXTPILOT_CONNECT_TIMEOUT", value)
    with pytest.raises(cp.SettingError) as e:
        settings.check()
    assert str(e.value) == (
        f"CONTEXTPILOT_CONNECT_TIMEOUT={value!r} is not valid. Set it to a number of seconds "
        f"above 0, such as 2.5, or unset it for the default (3).")


@pytest.mark.parametrize("name", list(settings.SECONDS))
def test_a_timeout_too_long_for_the_clock_is_one_clear_error(monkeypatch, fake_ollama, name):
    # finite, but past what a socket or a wait accepts: "1e10" used to reach the client and
    # come back as "Ollama reported an error: OverflowError: timestamp out of range..."
    monkeypatch.setenv(name, "1e10")
    with pytest.raises(cp.SettingError, match=f"^{name}='1e10' is not valid.*at most"):
        settings.check()
    with pytest.raises(cp.SettingError, match=f"^{name}='1e10'"):
        if name == "CONTEXTPILOT_STALL_TIMEOUT":
            list(cp.pull_model("mistral", host=fake_ollama.url))
        else:
            cp.list_models(fake_ollama.url)
    assert fake_ollama.requests == []
    monkeypatch.setenv(name, "86400")  # a day is still fine
    assert settings.seconds(name) == 86400.0


def test_check_passes_on_a_clean_environment_and_finds_each_bad_setting(monkeypatch):
    settings.check()
    for name in [*settings.FLAGS, *settings.SECONDS]:
        monkeypatch.setenv(name, "bogus")
        with pytest.raises(cp.SettingError, match=f"^{name}='bogus' is not valid"):
            settings.check()
        monkeypatch.delenv(name)


def test_the_timeouts_are_read_when_a_client_is_made(monkeypatch, fake_ollama):
    monkeypatch.setenv("CONTEXTPILOT_READ_TIMEOUT", "abc")
    with pytest.raises(cp.SettingError, match="CONTEXTPILOT_READ_TIMEOUT='abc'"):
        cp.list_models(fake_ollama.url)
    assert fake_ollama.requests == []  # refused before anything was sent
    monkeypatch.setenv("CONTEXTPILOT_READ_TIMEOUT", "7")
    monkeypatch.setenv("CONTEXTPILOT_CONNECT_TIMEOUT", "0.5")
    client = cp._client.get_client(fake_ollama.url)
    timeout = client._client.timeout
    assert (timeout.read, timeout.connect) == (7.0, 0.5)


def test_a_bad_stall_timeout_stops_a_pull_before_it_starts(monkeypatch, fake_ollama):
    monkeypatch.setenv("CONTEXTPILOT_STALL_TIMEOUT", "-5")
    with pytest.raises(cp.SettingError, match="CONTEXTPILOT_STALL_TIMEOUT='-5'"):
        list(cp.pull_model("mistral", host=fake_ollama.url))
    assert fake_ollama.pull_requests == {}


# -- switching a feature off switches it off (seen on the fake servers) ---------------------

@pytest.mark.parametrize("spelling, preloads", [("false", False), (" Off ", False), ("On", True)])
def test_preload_follows_the_flag(fake_ollama, monkeypatch, spelling, preloads):
    from tests.ui_helpers import Client, running_app, wait_until

    monkeypatch.setenv("CONTEXTPILOT_PRELOAD", spelling)
    loads = lambda: [r for r in fake_ollama.requests if r[1] == "/api/generate"]  # noqa: E731
    with running_app(fake_ollama.url) as url:
        updates = list(Client(url, verbose=False).submit("mistral", api_name="/pull_model"))
        assert updates[-1] == "mistral:latest is ready (4.0 MB)."
        if preloads:
            wait_until(lambda: loads(), what="the preload request")
        else:
            # the preload thread starts before the last update: none started, none sent
            assert not [t for t in threading.enumerate() if t.name.startswith("preload mistral")]
            assert loads() == []
    assert bool(cp.running_models(fake_ollama.url)) is preloads


@pytest.mark.parametrize("spelling, refused", [("false", False), ("NO", False), ("", True),
                                               ("True", True)])
def test_the_disk_check_follows_the_flag(machine, fake_ollama, tmp_path, monkeypatch,
                                         spelling, refused):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))  # Ollama's disk is visible here...
    machine["free"] = 1_000_000  # ...and has 1 MB free; mistral is 4 MB
    monkeypatch.setenv("CONTEXTPILOT_DISK_CHECK", spelling)
    if refused:
        # the weights' first report comes one 64,000-byte tick into their download
        with pytest.raises(cp.PullFailed, match="no space left on device: 3.9 MB more"):
            list(cp.pull_model("mistral", host=fake_ollama.url))
    else:
        assert list(cp.pull_model("mistral", host=fake_ollama.url))[-1].done
        assert "mistral:latest" in fake_ollama.installed_names()


@pytest.mark.parametrize("spelling, asks", [("false", False), ("OFF", False), ("0", False),
                                            ("yes", True)])
def test_registry_lookups_follow_the_flag(machine, registry, fake_ollama, monkeypatch,
                                          spelling, asks):
    total = registry.add("library/granite-code:8b", [4_600_000_000, 1_300])
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", spelling)
    v = cp.check_fit("granite-code:8b", host=fake_ollama.url, probe=False)
    assert bool(registry.requests) is asks
    assert (v.size_source == "registry" and v.download_size == total) is asks


def test_the_size_probe_can_be_switched_off(machine, fake_ollama, dead_host, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_URL", dead_host)  # no registry answers
    fake_ollama.add_remote(WIDGET)  # in no catalog: only a probe could size it
    monkeypatch.setenv("CONTEXTPILOT_SIZE_PROBE", "False")
    v = cp.check_fit(WIDGET.name, host=fake_ollama.url)
    assert v.size_source == "unknown" and fake_ollama.pull_requests == {}
    monkeypatch.setenv("CONTEXTPILOT_SIZE_PROBE", "Yes")
    v = cp.check_fit(WIDGET.name, host=fake_ollama.url)
    assert v.size_source == "probe" and fake_ollama.pull_requests[WIDGET.name] == 1


@pytest.mark.parametrize("spelling", ["off", "FALSE", " no "])
def test_autostart_follows_the_flag(dead_host, mocker, monkeypatch, spelling):
    popen = mocker.patch("contextpilot.autostart.subprocess.Popen")
    mocker.patch("contextpilot.autostart.shutil.which", return_value="/opt/bin/ollama")
    monkeypatch.setenv("CONTEXTPILOT_AUTOSTART", spelling)
    result = ensure_ollama(dead_host)
    assert result.outcome is Autostart.DISABLED
    assert "starting Ollama automatically is off (CONTEXTPILOT_AUTOSTART is off)" in result.message
    popen.assert_not_called()


# -- a bad setting in a real process: one message, no traceback, nothing at import -----------

def _env(**settings_: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CONTEXTPILOT_"))}
    return dict(env, PYTHONPATH=str(ROOT), GRADIO_ANALYTICS_ENABLED="False", **settings_)


def test_importing_contextpilot_never_reads_a_setting():
    code = "import contextpilot, contextpilot.ui, contextpilot.cli; print('imported')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=_env(
                              CONTEXTPILOT_CONNECT_TIMEOUT="abc", CONTEXTPILOT_PRELOAD="maybe",
                              CONTEXTPILOT_AUTH="nocolon", CONTEXTPILOT_STALL_TIMEOUT="nan"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "imported\n", "")


def test_the_cli_prints_the_message_and_exits_1(fake_ollama):
    done = subprocess.run([sys.executable, "-m", "contextpilot", "list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env=_env(OLLAMA_HOST=fake_ollama.url, CONTEXTPILOT_READ_TIMEOUT="3O"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("Error: CONTEXTPILOT_READ_TIMEOUT='3O' is not valid. Set it to a "
                           "number of seconds above 0, such as 2.5, or unset it for the "
                           "default (30).\n")
    assert fake_ollama.requests == []


def test_python_app_py_prints_the_message_and_exits_1():
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=_env(CONTEXTPILOT_STALL_TIMEOUT="-1"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: CONTEXTPILOT_STALL_TIMEOUT='-1' is not valid. Set it to a number of seconds "
        "above 0, such as 2.5, or unset it for the default (120).")


def test_build_app_raises_the_setting_error(fake_ollama, monkeypatch):
    from contextpilot.ui import build_app

    monkeypatch.setenv("CONTEXTPILOT_CONNECT_TIMEOUT", "abc")
    with pytest.raises(cp.SettingError, match="^CONTEXTPILOT_CONNECT_TIMEOUT='abc' is not"):
        build_app(host=fake_ollama.url)


# -- CONTEXTPILOT_AUTH and --auth: one parser --------------------------------------------------

@pytest.mark.parametrize("value, parsed", [
    ("ada:s3cret", ("ada", "s3cret")),
    ("ada:s3:cr:et", ("ada", "s3:cr:et")),  # the password may contain ':'
    ("  ada:pw  ", ("ada", "pw")),
    ("", None),
    ("   ", None),
])
def test_auth_parses_user_and_password(monkeypatch, value, parsed):
    from contextpilot.ui import auth_from_env

    monkeypatch.setenv("CONTEXTPILOT_AUTH", value)
    assert settings.auth() == auth_from_env() == parsed
    assert cli._auth(value) == parsed  # --auth goes through the same parser


@pytest.mark.parametrize("value", ["hunter2", "ada:", ":hunter2", ":", " : "])
def test_auth_refuses_an_empty_user_or_password_without_showing_it(monkeypatch, value):
    from contextpilot.ui import auth_from_env

    monkeypatch.setenv("CONTEXTPILOT_AUTH", value)
    for read in (settings.auth, auth_from_env, settings.check):
        with pytest.raises(cp.SettingError) as e:
            read()
        assert str(e.value) == ("CONTEXTPILOT_AUTH is not valid. Set it to user:password "
                                "(both parts non-empty; the password may contain ':'), or "
                                "unset it for no login.")
        assert "hunter2" not in str(e.value) and e.value.value is None


def test_a_bad_auth_stops_serve_before_anything_starts(monkeypatch, capsys, mocker):
    launch = mocker.patch("gradio.Blocks.launch")
    ensure = mocker.patch("contextpilot.autostart.ensure_ollama")
    monkeypatch.setenv("CONTEXTPILOT_AUTH", "op:")
    assert cli.main(["serve"]) == cli.EXIT_FAILURE
    assert capsys.readouterr().err.startswith("Error: CONTEXTPILOT_AUTH is not valid. Set it "
                                              "to user:password")
    launch.assert_not_called()
    ensure.assert_not_called()


def test_a_bad_auth_argument_is_a_usage_error_that_hides_the_value(capsys):
    assert cli.main(["serve", "--auth", ":hunter2"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "argument --auth: expected user:password" in err and "hunter2" not in err


# -- one loopback helper -------------------------------------------------------------------

ADDRESSES = [  # address, is_loopback (a bind, a Host header), is_this_machine (an Ollama host)
    ("127.0.0.1", True, True),
    ("127.0.0.2:7860", True, True),
    ("http://127.0.0.1:11434", True, True),
    ("localhost", True, True),
    ("LOCALHOST:7860", True, True),
    ("http://localhost", True, True),
    ("app.localhost:8080", True, True),
    ("localhost.", True, True),
    ("::1", True, True),
    ("[::1]", True, True),
    ("[::1]:11434", True, True),
    ("http://[::1]:11434", True, True),
    ("::ffff:127.0.0.1", True, True),
    ("0.0.0.0", False, True),
    ("0.0.0.0:11434", False, True),
    ("http://0.0.0.0:11434", False, True),
    ("::", False, True),
    ("[::]:7860", False, True),
    ("10.0.0.2", False, False),
    ("192.168.1.5:11434", False, False),
    ("[2001:db8::1]:80", False, False),
    ("gpu-box:11434", False, False),
    ("https://ollama.com", False, False),
    ("localhost.evil.example", False, False),
    ("evil-localhost", False, False),
    ("127.0.0.1.nip.io", False, False),
    ("http://[::1", False, False),
    ("", False, False),
    (None, False, False),
]


@pytest.mark.parametrize("address, loopback, this_machine", ADDRESSES)
def test_one_parser_two_questions(address, loopback, this_machine):
    assert netaddr.is_loopback(address) is loopback
    assert netaddr.is_this_machine(address) is this_machine
    if address:  # the shared-app rules and the Ollama-side checks ask the same helper
        assert _loopback_host(address) is loopback
        assert is_loopback_bind(address) is loopback


def test_no_bind_address_is_gradios_loopback_default():
    assert is_loopback_bind(None) and is_loopback_bind("")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no ::1")


@pytest.fixture
def fake_ollama6():
    """The fake Ollama on the IPv6 loopback, at http://[::1]:port."""
    srv = FakeOllama(bind="::1")
    srv.add_installed(SMALL)
    srv.add_remote(REMOTE)
    yield srv.start()
    srv.stop()


@needs_ipv6
@pytest.mark.parametrize("form", ["[::1]:{port}", "http://[::1]:{port}"])
def test_the_client_reaches_ollama_on_ipv6_loopback(fake_ollama6, monkeypatch, form):
    port = urlsplit(fake_ollama6.url).port
    monkeypatch.setenv("OLLAMA_HOST", form.format(port=port))
    assert [m.name for m in cp.list_models()] == ["llama3.2:latest"]
    assert cp._client.resolve_host() == f"http://[::1]:{port}"
    assert hardware.is_local_host() and DiskGuard(cp._client.resolve_host()).enabled


@needs_ipv6
def test_autostart_on_ipv6_loopback_spawns_ollama_serve_with_brackets(fake_ollama6, mocker,
                                                                      monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    port = urlsplit(fake_ollama6.url).port
    monkeypatch.setenv("OLLAMA_HOST", f"[::1]:{port}")
    fake_ollama6.faults.refuse = True  # nothing answers until `ollama serve` "starts"
    proc = mocker.Mock(pid=4242)
    proc.poll.return_value = None
    popen = mocker.patch("contextpilot.autostart.subprocess.Popen", side_effect=lambda *a, **k: (
        setattr(fake_ollama6.faults, "refuse", False), proc)[1])
    mocker.patch("contextpilot.autostart.shutil.which", return_value="/opt/bin/ollama")
    result = ensure_ollama()
    assert result.outcome is Autostart.STARTED, result.message
    assert popen.call_args.kwargs["env"]["OLLAMA_HOST"] == f"[::1]:{port}"
    assert cp.list_models()  # and the client talks to it


def test_autostart_of_the_default_ipv6_address_is_local(mocker, monkeypatch, tmp_path):
    with socket.socket(socket.AF_INET6 if _has_ipv6_loopback() else socket.AF_INET) as s:
        if s.connect_ex(("::1" if _has_ipv6_loopback() else "127.0.0.1", 11434)) == 0:
            pytest.skip("something listens on port 11434 here")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("OLLAMA_HOST", "[::1]:11434")
    proc = mocker.Mock(pid=4242)
    proc.poll.return_value = 1  # it exits at once: enough to see how it was started
    popen = mocker.patch("contextpilot.autostart.subprocess.Popen", return_value=proc)
    mocker.patch("contextpilot.autostart.shutil.which", return_value="/opt/bin/ollama")
    result = ensure_ollama(sleep=pytest.fail)
    assert result.outcome is Autostart.FAILED  # tried: it is this machine, not REMOTE
    assert popen.call_args.kwargs["env"]["OLLAMA_HOST"] == "[::1]:11434"


def test_a_bad_disk_check_flag_stops_a_pull_and_the_next_one_works(fake_ollama, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_DISK_CHECK", "sometimes")
    with pytest.raises(cp.SettingError, match="^CONTEXTPILOT_DISK_CHECK='sometimes' is not"):
        list(cp.pull_model("mistral", host=fake_ollama.url))
    assert fake_ollama.pull_requests == {} and not cp.is_pulling("mistral", fake_ollama.url)
    monkeypatch.setenv("CONTEXTPILOT_DISK_CHECK", "off")
    assert list(cp.pull_model("mistral", host=fake_ollama.url))[-1].done


@pytest.mark.parametrize("value", ["registry.ollama.ai", "ftp://mirror", "http://", "http://h:0",
                                   "http://h:99999", "https://[::1"])
def test_a_registry_url_must_be_an_http_address(monkeypatch, value):
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_URL", value)
    with pytest.raises(cp.SettingError) as e:
        settings.check()
    assert str(e.value) == (
        f"CONTEXTPILOT_REGISTRY_URL={value!r} is not valid. Set it to an address such as "
        f"https://registry.example.com, or unset it for the default (https://registry.ollama.ai).")


def test_a_registry_url_is_read_without_its_trailing_slash(monkeypatch):

    assert settings.registry_url() == "https://registry.ollama.ai"
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_URL", " http://[::1]:5000/ ")
    assert settings.registry_url() == "http://[::1]:5000"


def test_a_bad_allowlist_names_the_variable(fake_ollama, monkeypatch):
    from contextpilot.ui import build_app

    monkeypatch.setenv("CONTEXTPILOT_ALLOWED_MODELS", "llama3.2, bad name!")
    with pytest.raises(cp.SettingError) as e:
        build_app(host=fake_ollama.url)
    assert str(e.value).startswith("CONTEXTPILOT_ALLOWED_MODELS='llama3.2, bad name!' is not "
                                   "valid. 'bad name!' is not a model name (")
    monkeypatch.setenv("CONTEXTPILOT_ALLOWED_MODELS", " llama3.2 ,, qwen3:0.6b ")
    assert settings.model_names("CONTEXTPILOT_ALLOWED_MODELS") == ["llama3.2", "qwen3:0.6b"]
