"""When this app last chatted with each model: a small JSON file in the user's data folder,
so that "make room" suggests the models least recently used.

The file is ``CONTEXTPILOT_USAGE_FILE``, else ``<user data dir>/contextpilot/usage.json``
(platformdirs: ~/.local/share on Linux). It maps model keys to Unix times. A file that
cannot be read or written is not an error: the advice is only less informed.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Union

from .. import settings
from ..names import ModelName, parse_name

_lock = threading.Lock()
MAX_ENTRIES = 500


def usage_file() -> Path:
    env = settings.text("CONTEXTPILOT_USAGE_FILE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("contextpilot", appauthor=False)) / "usage.json"


def last_used() -> dict[str, float]:
    """Model key -> the last time this app chatted with it (seconds since the epoch)."""
    try:
        data = json.loads(usage_file().read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def record_use(name: Union[str, ModelName], when: Optional[float] = None) -> None:
    """Remember that the app chatted with ``name`` now (written atomically)."""
    try:
        key = parse_name(name).key
    except ValueError:
        return
    with _lock:
        data = last_used()
        data[key] = time.time() if when is None else when
        newest = dict(sorted(data.items(), key=lambda kv: -kv[1])[:MAX_ENTRIES])
        path = usage_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".usage-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(newest, f)
            os.replace(tmp, path)
        except OSError:
            pass
