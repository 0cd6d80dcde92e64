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
    ":latest", "llama:", "/llama", "a" * 129, "llama:" + "t" * 129, "name@sha256:abc",
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


@pytest.mark.parametrize("name", [
    "a" * 128, "m:" + "t" * 128, "n" * 128 + "/m", "hf.co/" + "u" * 128 + "/" + "r" * 128
    + ":" + "Q" * 128, "3" * 350 + "/" + "n" * 128 + "/" + "m" * 128 + ":" + "t" * 128,
    "hf.co/bartowski/" + "Llama-3.3-Nemotron-Super-49B-v1.5-abliterated-uncensored-"
    "instruct-reasoning-distill-preview-GGUF:Q4_K_M",
])
def test_parts_up_to_128_characters_as_ollama_0_34_accepts(name):
    """Today's releases: name parts may be up to 128 characters (the host 350)."""
    parse_name(name)


@pytest.mark.parametrize("name", ["a" * 129, "m:" + "t" * 129, "n" * 129 + "/m",
                                  "3" * 351 + "/n/m:t"])
def test_parts_longer_than_ollama_allows_are_refused(name):
    with pytest.raises(InvalidModelName, match="longer than"):
        parse_name(name)
    assert parse_name("_under/score_:x").namespace == "_under"


# --- Ported from ollama/ollama types/model/name_test.go (fb30760) -------------------------
PART80 = "8" * 80
PART350 = "3" * 350

# TestParseNameParts: input -> (host, namespace, model, tag) after defaults are merged in.
PARSE_PARTS = [
    ("registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K",
     ("registry.ollama.ai", "library", "dolphin-mistral", "7b-v2.6-dpo-laser-q6_K")),
    ("host/namespace/model:tag", ("host", "namespace", "model", "tag")),
    ("host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag")),
    ("host/namespace/model", ("host", "namespace", "model", "latest")),
    ("host:port/namespace/model", ("host:port", "namespace", "model", "latest")),
    ("namespace/model", ("registry.ollama.ai", "namespace", "model", "latest")),
    ("model", ("registry.ollama.ai", "library", "model", "latest")),
    ("h/nn/mm:t", ("h", "nn", "mm", "t")),
    (f"{PART80}/{PART80}/{PART80}:{PART80}", (PART80, PART80, PART80, PART80)),
    (f"{PART350}/{PART80}/{PART80}:{PART80}", (PART350, PART80, PART80, PART80)),
    ("https://host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag")),
]


@pytest.mark.parametrize("text,parts", PARSE_PARTS)
def test_parse_name_parts(text, parts):
    n = parse_name(text)
    assert (n.host, n.namespace, n.model, n.tag) == parts


# TestNameIsValid: names valid once fully qualified, and the ones that never are. (Ollama's
# table is for bare names, so "model" or "h/n/m" are "unqualified" there; with the defaults
# merged in, as every API call does, they are valid.)
VALID = ["_why/_the/_lucky:_stiff", "h/n/m:t", "host/namespace/model:tag",
         "host/namespace/model", "namespace/model", "model", "m", "h/n/m", "h/nn/mm:t",
         f"{PART80}/{PART80}/{PART80}:{PART80}", f"{PART350}/{PART80}/{PART80}:{PART80}",
         "host:https/namespace/model:tag"]
INVALID = ["", "n/m:", "@t", "m@d", "^", "mm:", "/nn/mm", "//", "//mm", "hh//", "//mm:@",
           "00@", "@", "-hh/nn/mm:tt", "hh/-nn/mm:tt", "hh/nn/-mm:tt", "hh/nn/mm:-tt",
           "host/name:space/model:tag",
           # beyond the table: lengths, '.' in a namespace, other schemes, a digest
           f"{'3' * 351}/n/m:t", f"h/{'8' * 129}/m:t", f"m:{'8' * 129}", "a./m:t",
           "h/a.b/m:t",
           "scheme://host:port/namespace/model:tag", "ftp://h/n/m", "http://llama3.2",
           "llama3.2@sha256:" + "a" * 64]


@pytest.mark.parametrize("text", VALID)
def test_valid_names(text):
    n = parse_name(text)
    assert parse_name(n.display) == n  # the display form parses back to the same name


@pytest.mark.parametrize("text", INVALID)
def test_invalid_names(text):
    with pytest.raises(InvalidModelName):
        parse_name(text)


@pytest.mark.parametrize("text,shortest", [  # TestDisplayShortest
    ("registry.ollama.ai/library/model:latest", "model:latest"),
    ("registry.ollama.ai/library/model:tag", "model:tag"),
    ("registry.ollama.ai/namespace/model:tag", "namespace/model:tag"),
    ("host/namespace/model:tag", "host/namespace/model:tag"),
    ("host/library/model:tag", "host/library/model:tag"),
])
def test_display_shortest(text, shortest):
    assert parse_name(text).display == shortest


def test_parts_match_case_insensitively():  # Name.EqualFold
    assert same_model("HOST/NAMESPACE/MODEL:TAG", "host/namespace/model:tag")


# --- Ported from internal/modelref/modelref_test.go (fb30760) -----------------------------
# input -> (what Ollama pulls / we send, source as written, is_cloud)
SOURCES = [
    ("gpt-oss:20b:cloud", "gpt-oss:20b-cloud", "cloud", True),
    ("gpt-oss:20b-cloud", "gpt-oss:20b-cloud", "cloud", True),
    ("gpt-oss:120b:cloud", "gpt-oss:120b-cloud", "cloud", True),
    ("gpt-oss:20b:CLOUD", "gpt-oss:20b-cloud", "cloud", True),  # uppercase suffix
    ("qwen3:cloud", "qwen3:cloud", "cloud", True),
    ("localhost:11434/library/foo:cloud", "localhost:11434/library/foo:cloud", "cloud", True),
    ("qwen3:8b:local", "qwen3:8b", "local", False),
    ("gpt-oss:20b:local", "gpt-oss:20b", "local", False),
    ("llama3.2:local", "llama3.2:latest", "local", False),
    ("llama3.2", "llama3.2:latest", "", False),
    ("my-cloud-model", "my-cloud-model:latest", "", False),  # a bare name is not cloud
    ("gpt-oss:clod", "gpt-oss:clod", "", False),  # unknown suffix: just a tag
]


@pytest.mark.parametrize("text,sent,source,cloud", SOURCES)
def test_source_suffixes(text, sent, source, cloud):
    n = parse_name(text)
    assert (n.display, n.source, n.is_cloud) == (sent, source, cloud)
    assert parse_name(n.display).key == n.key  # stable: what we send means the same again


@pytest.mark.parametrize("text", ["foo:cloud:local", "foo:local:cloud", "gpt-oss:20b-cloud:local",
                                  "foo:local:local"])
def test_both_sources_refused_with_ollamas_reason(text):
    with pytest.raises(InvalidModelName) as info:
        parse_name(text)
    assert info.value.reason == "use either :local or :cloud, not both"


def test_slash_in_suffix_blocks_legacy_cloud():
    # modelref keeps "foo:bar-cloud/baz" whole; as a name it is a model "baz" in a namespace
    # "foo:bar-cloud", which has a ':' Ollama does not allow there.
    with pytest.raises(InvalidModelName):
        parse_name("foo:bar-cloud/baz")


@pytest.mark.parametrize("text,explicit", [  # TestHasExplicitTag, through the parsed tag
    ("some-model", "latest"), ("some-model:9b", "9b"), ("user/some-model", "latest"),
    ("user/some-model:9b", "9b"), ("registry.example.com:5000/ns/some-model", "latest"),
    ("registry.example.com:5000/ns/some-model:9b", "9b"),
])
def test_tag_only_after_last_slash(text, explicit):
    assert parse_name(text).tag == explicit


def test_local_suffix_finds_the_installed_model():
    assert same_model("llama3.2:local", "llama3.2:latest")
    assert not same_model("gpt-oss:20b:cloud", "gpt-oss:20b")


def test_plain_http_registry_keeps_its_scheme():
    n = parse_name("http://localhost:5000/me/tiny:1")
    assert (n.scheme, n.host, n.display) == ("http", "localhost:5000", "http://localhost:5000/me/tiny:1")
    assert same_model("http://localhost:5000/me/tiny:1", "localhost:5000/me/tiny:1")
    assert parse_name("HTTPS://h/n/m").scheme == "https"
