"""One fake Ollama host for ``bench/fleet.py``, in its own process (so that its threads do
not compete for the GIL with the code under test): a ``tests/fake_fleet.LimitedOllama``
answering at most ``parallel`` chats at once (like OLLAMA_NUM_PARALLEL) and queueing the
rest, optionally slow to list its models.

    python bench/fleet_host.py '{"parallel": 4, "token_delay": 0.1, "list_delay": 0.0}'

prints its URL on the first line of stdout and serves until stdin closes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fake_server import serve_until_stdin_closes  # noqa: E402
from tests.fake_fleet import LimitedOllama  # noqa: E402
from tests.fake_ollama import FakeModel  # noqa: E402

ANSWER_WORDS = 20
"Words of the ``answer`` model's reply: at token_delay 0.1 s, a 2 s answer."


def _reply(messages) -> str:
    return " ".join(f"w{i}" for i in range(ANSWER_WORDS))


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    fake = LimitedOllama(parallel=int(config.get("parallel", 4)))
    fake.add_installed(FakeModel(name="answer:latest", layers=[1_000, 100], reply=_reply))
    fake.add_installed(FakeModel(name="echo:latest", layers=[1_000, 100]))
    fake.token_delay = float(config.get("token_delay", 0.0))
    fake.list_delay = float(config.get("list_delay", 0.0))
    serve_until_stdin_closes(fake)


if __name__ == "__main__":
    main()
