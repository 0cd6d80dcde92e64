"""ContextPilot's web app. ``demo`` is what Hugging Face Spaces and ``gradio app.py`` look for;
``python app.py`` serves it on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860)."""

from contextpilot.ui import build_app

demo = build_app()

if __name__ == "__main__":
    demo.launch()
