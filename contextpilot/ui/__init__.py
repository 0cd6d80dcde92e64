"""The Gradio front end: ``build_app()`` returns the Blocks; ``render`` and ``bridge`` are
the pure rendering and the async bridge it is made of."""

from .gradio_app import MAX_UPLOAD, auth_from_env, build_app

__all__ = ["MAX_UPLOAD", "auth_from_env", "build_app"]
