"""Memory to run a model, as Ollama estimates it: the file plus the KV cache at a context.

Pure arithmetic (llm/llama_server.go's quick estimate): KV = 2 (keys and values) x layers x
KV heads x head size x context x 2 bytes (f16). When the layer and head counts are not
known, the KV cache is taken as MARGIN_PER_4K of the file per 4,096 tokens of context, a
stated margin (about what Llama-style models need).
"""

from __future__ import annotations

from typing import Optional, Sequence

DEFAULT_CONTEXT = 4096
"Ollama's default context on machines under 24 GiB of VRAM, and the app's default."
MARGIN_PER_4K = 0.10


def kv_cache_bytes(arch: Sequence[int], context: int) -> int:
    """f16 KV cache for (layers, kv_heads, head_dim) at ``context`` tokens.

    >>> kv_cache_bytes((32, 8, 128), 4096)  # Llama 3.1 8B
    536870912
    """
    layers, kv_heads, head_dim = arch
    return 2 * layers * kv_heads * head_dim * context * 2


def memory_needed(size: int, arch: Optional[Sequence[int]] = None,
                  context: Optional[int] = None) -> tuple[int, int, bool]:
    """(memory, kv_cache, exact): the file plus the KV cache; ``exact`` is False when the
    KV cache is the stated margin.

    >>> memory_needed(4_000_000_000)
    (4400000000, 400000000, False)
    """
    ctx = int(context or DEFAULT_CONTEXT)
    if arch:
        kv = kv_cache_bytes(arch, ctx)
        return size + kv, kv, True
    kv = int(size * MARGIN_PER_4K * ctx / 4096)
    return size + kv, kv, False
