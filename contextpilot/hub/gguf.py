"""Read the layer and head counts from the start of a GGUF file (its metadata header), for
the KV-cache estimate. Pure: bytes in, numbers out; a header cut short is fine as long as
the counts come before the cut (llama.cpp writes general.*, then the architecture's keys,
then the tokenizer's large arrays).

Format (ggml/docs/gguf.md): "GGUF", u32 version, u64 tensor count, u64 key count, then each
key: u64 length + UTF-8 name, u32 type, value. Little-endian throughout.
"""

from __future__ import annotations

import struct
from typing import Optional

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
MAX_KEYS = 10_000


class _Cut(Exception):
    """The header goes on past the bytes we have."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Cut
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, kind: int):
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.scalar(10)).decode("utf-8", "replace")

    def value(self, kind: int):
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            item, count = self.scalar(4), self.scalar(10)
            if item in _SCALARS and count <= 4096:  # per-layer counts: keep them
                return [self.value(item) for _ in range(count)]
            for _ in range(count):  # token lists: skip (or run out of bytes)
                self.value(item)
            return None
        if kind not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {kind}")
        return self.scalar(kind)


def read_metadata(data: bytes) -> dict:
    """The keys that fit in ``data`` (a prefix of a GGUF file); {} when it is not GGUF."""
    if data[:4] != b"GGUF":
        return {}
    r = _Reader(data)
    out: dict = {}
    try:
        r.take(4)
        r.scalar(4)
        r.scalar(10)
        count = min(r.scalar(10), MAX_KEYS)
        for _ in range(count):
            key = r.string()
            out[key] = r.value(r.scalar(4))
    except (_Cut, ValueError, KeyError, struct.error):
        pass
    return out


def arch_counts(meta: dict) -> Optional[tuple[int, int, int]]:
    """(layers, KV heads, head size) from GGUF metadata, or None when any is missing.

    >>> arch_counts({"general.architecture": "llama", "llama.block_count": 16,
    ...   "llama.attention.head_count_kv": 8, "llama.attention.key_length": 64})
    (16, 8, 64)
    >>> arch_counts({"general.architecture": "qwen2", "qwen2.block_count": 24,
    ...   "qwen2.attention.head_count": 14, "qwen2.attention.head_count_kv": 2,
    ...   "qwen2.embedding_length": 896})
    (24, 2, 64)
    """
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        return None
    layers = _count(meta.get(f"{arch}.block_count"))
    kv = _count(meta.get(f"{arch}.attention.head_count_kv"))
    head = _count(meta.get(f"{arch}.attention.key_length"))
    if head is None:
        heads = _count(meta.get(f"{arch}.attention.head_count"))
        width = _count(meta.get(f"{arch}.embedding_length"))
        head = width // heads if heads and width else None
    if kv is None:
        kv = _count(meta.get(f"{arch}.attention.head_count"))
    return (layers, kv, head) if layers and kv and head else None


def _count(value: object) -> Optional[int]:
    if isinstance(value, list):  # per-layer values: the largest bounds the cache
        value = max((v for v in value if isinstance(v, int)), default=None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None
