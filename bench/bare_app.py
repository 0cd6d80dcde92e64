"""The baseline app: a minimal ChatInterface streaming from the raw ollama client.

Used for the start-up comparison and as the "bare Gradio" reference for time to first token.
It coalesces tokens to 50 ms, as the issue's anchor did. Serves on GRADIO_SERVER_PORT.
"""

import time

import gradio as gr
import ollama


def chat(message, history, model="echo"):
    client = ollama.Client()
    text, last = "", 0.0
    for part in client.chat(model=model, messages=[{"role": "user", "content": message}],
                            stream=True):
        text += part.message.content or ""
        now = time.monotonic()
        if now - last >= 0.05:
            last = now
            yield text
    yield text


demo = gr.ChatInterface(chat, additional_inputs=[gr.Textbox(value="echo")], api_name="chat",
                        concurrency_limit=16)

if __name__ == "__main__":
    demo.launch()
