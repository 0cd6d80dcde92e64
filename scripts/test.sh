#!/usr/bin/env bash
# Sets up and runs the whole test suite: Debian's chromium for the browser tests (when
# missing and we may install it), the pinned Python test requirements, then pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k pull -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; the browser tests will be skipped" >&2
  fi
fi
python -m pip install -q --disable-pip-version-check -r requirements-test.txt
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
python -m pytest "$@"
