"""Memory to run a model, as Ollama estimates it: the file plus the KV cache at a context.

Pure arithmetic (llm/llama_server.go's quick estimate): KV = 2 (keys and values) x layers x
KV heads x head size x context x 2 bytes (f16). When the layer and head counts are not
known, a stated margin: MARGIN_4K bytes per 4,096 tokens for a 5 GB file, growing with the
square root of the file size (Llama 3.x with grouped-query attention: 0.54 GB at 8B,
1.3 GB at 70B, 2.1 GB at 405B; the margin errs a little high).
"""

from __future__ import annotations

from typing import Optional, Sequence

DEFAULT_CONTEXT = 4096
"Ollama's default context on machines under 24 GiB of VRAM, and the app's default."
MARGIN_4K = 550_000_000
"KV-cache margin per 4,096 tokens for a 5 GB file (layer counts unknown)."


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

    >>> memory_needed(5_000_000_000)
    (5550000000, 550000000, False)
    """
    ctx = int(context or DEFAULT_CONTEXT)
    if arch:
        kv = kv_cache_bytes(arch, ctx)
        return size + kv, kv, True
    kv = int(MARGIN_4K * (size / 5e9) ** 0.5 * ctx / 4096)
    return size + kv, kv, False
