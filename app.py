"""ContextPilot's web app. ``demo`` is what Hugging Face Spaces and ``gradio app.py`` look for;
``python app.py`` serves it on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860).

The app is locked down when shared (GRADIO_SHARE=1, a non-loopback GRADIO_SERVER_NAME, or a
Space): see ``contextpilot.policy``. CONTEXTPILOT_AUTH="user:pass" asks for a login."""

import sys

from contextpilot import SettingError
from contextpilot.ui import MAX_UPLOAD, auth_from_env, build_app

try:
    demo = build_app()
except SettingError as exc:  # a bad CONTEXTPILOT_* value: its one message, no traceback
    if __name__ != "__main__":
        raise  # imported (a Space, `gradio app.py`, a notebook): the importer shows it
    sys.exit(f"Error: {exc}")

if __name__ == "__main__":
    demo.launch(auth=auth_from_env(), max_file_size=MAX_UPLOAD)
