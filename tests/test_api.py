"""The public API is complete, sorted and importable from the package."""

import contextpilot


def test_all_is_sorted_and_importable():
    assert contextpilot.__all__ == sorted(contextpilot.__all__)
    for name in contextpilot.__all__:
        assert getattr(contextpilot, name) is not None


def test_contract_names_exist():
    for name in ["list_models", "model_exists", "pull_model", "chat_stream", "throttle",
                 "PullProgress", "OllamaUnavailable", "ModelNotFound", "PullFailed",
                 "InvalidModelName", "delete_model", "model_details", "running_models",
                 "load_model", "unload_model", "cancel_pull", "check_fit"]:
        assert name in contextpilot.__all__, name


def test_core_modules_import_no_front_end():
    import subprocess
    import sys

    code = ("import sys, contextpilot; bad = [m for m in ('gradio', 'tqdm') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""
