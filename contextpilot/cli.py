"""``python -m contextpilot``: list, pull, chat, rm, ps, hosts and serve, from a terminal.
Several Ollama hosts (OLLAMA_HOSTS): ``--host NAME`` on each command, ``pull --all-hosts``
(see ``cli_fleet``).

Exit codes: 0 ok, 1 a failure (the library's message on stderr, no traceback), 2 usage,
130 after Ctrl-C (a pull stops cleanly: the stream to Ollama closes, the partial stays).
``fit`` answers with its code too: 0 it fits (or runs in the cloud), 3 it may not fit (disk
or memory), 4 there is no such model to download, 5 its size could not be found.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Callable, Optional, Sequence

from . import __version__, cli_fleet, settings
from .console import print_chat, pull_with_progress
from .chat import THINK_LEVELS
from .errors import ContextPilotError
from .models import delete_model, list_models, running_models
from .units import format_size

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_MAY_NOT_FIT, EXIT_NO_SUCH_MODEL, EXIT_FIT_UNKNOWN = 3, 4, 5
"``fit``'s answers besides 0: too big for the disk or memory; nothing to download; unknown."
PROG = "contextpilot"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        _late_prompt(parser, args, extra)
        _prompt_after_think(parser, args)
        args.ollama_host = getattr(args, "ollama_host", None)  # global or after the command
        if cli_fleet.conflict(args):
            _usage_error(parser, args.command, str(cli_fleet.conflict(args)))
    except SystemExit as exc:  # --help is 0, a usage error 2
        return int(exc.code or 0)
    try:
        settings.check()  # a bad CONTEXTPILOT_* value: one message now, not a failure later
        return cli_fleet.command_for(args, args.func)(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ContextPilotError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # `contextpilot list | head`
        return EXIT_FAILURE
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        print(f"Error: something went wrong ({type(exc).__name__}: {exc}). "
              f"Please report it.", file=sys.stderr)
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    host_opt = argparse.ArgumentParser(add_help=False)
    host_opt.add_argument("--ollama-host", default=argparse.SUPPRESS, metavar="URL",
                          help="the Ollama server (default: $OLLAMA_HOST, else localhost:11434)")
    fleet_opt = argparse.ArgumentParser(add_help=False)
    fleet_opt.add_argument("--host", dest="fleet_host", default=None, metavar="NAME",
                           help="one of the hosts of $OLLAMA_HOSTS, by name (see: contextpilot "
                           "hosts); default: all of them, or where a chat would go")
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[host_opt],
        description="Chat with local Ollama models; a missing model downloads with progress.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], text: str,
                aliases: Sequence[str] = (), fleet: bool = True):
        parents = [host_opt, fleet_opt] if fleet else [host_opt]
        p = sub.add_parser(name, parents=parents, help=text, description=text,
                           aliases=list(aliases))
        p.set_defaults(func=func)
        return p

    command("list", cmd_list, "list installed models")
    command("ps", cmd_ps, "list models loaded in memory")
    command("hosts", cli_fleet.cmd_hosts, "list the Ollama hosts of $OLLAMA_HOSTS: state, "
            "version, models installed and loaded")
    pull = command("pull", cmd_pull, "download a model, with a progress bar")
    pull.add_argument("model")
    pull.add_argument("--insecure", action="store_true",
                      help="allow a plain-HTTP registry (http://host:port/namespace/model)")
    pull.add_argument("--all-hosts", action="store_true",
                      help="download it to every host of $OLLAMA_HOSTS, at once")
    rm = command("rm", cmd_rm, "delete an installed model")
    rm.add_argument("model")
    rm.add_argument("--all-hosts", action="store_true",
                    help="delete it on every host of $OLLAMA_HOSTS that has it")
    chat = command("chat", cmd_chat,
                   "ask a model (pulled first if missing); without PROMPT, read lines from stdin")
    chat.add_argument("model")
    chat.add_argument("prompt", nargs="?", help="the question (default: a REPL on stdin)")
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--think", nargs="?", const=True, default=None, type=_think,
                      metavar="LEVEL", help="ask a thinking model to think; gpt-oss takes a "
                      "level: low, medium, high (or max). Default: the model's own")
    chat.add_argument("--no-think", dest="think", action="store_const", const=False,
                      help="ask a thinking model not to think")
    chat.add_argument("--hide-thinking", action="store_true", help="print the answer only")
    chat.add_argument("--no-pull", dest="auto_pull", action="store_false",
                      help="fail instead of downloading a missing model")
    search = command("search", cmd_search,
                     "search Hugging Face for GGUF models Ollama can pull (or, with --files, "
                     "list a repository's quantisations and which fit)")
    search.add_argument("query", nargs="+", help="words to search for (or a user/repo)")
    search.add_argument("--files", action="store_true",
                        help="QUERY is a repository: list its quantisations")
    search.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    fit = command("fit", cmd_fit, "say whether a model fits this machine, before downloading "
                  "(exit 0 fits, 3 may not fit, 4 no such model, 5 size unknown)")
    fit.add_argument("model")
    fit.add_argument("--context", type=int, default=None, metavar="TOKENS",
                     help="the context length to allow for (default 4096)")
    _serve_args(command("serve", cmd_serve, "run the web app", aliases=["app"], fleet=False))
    return parser


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 shares it on the network); "
                   "for serve, --host is this address, not a host of $OLLAMA_HOSTS")
    p.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860)")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    p.add_argument("--auth", metavar="USER:PASS", default=None, type=_auth,
                   help="require a login (default: $CONTEXTPILOT_AUTH)")
    p.add_argument("--no-autostart", dest="autostart", action="store_false",
                   help="do not start a local 'ollama serve' when nothing answers")


def _late_prompt(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 extra: list[str]) -> None:
    """``chat MODEL --think high "PROMPT"``: argparse fills both positionals before the
    option (PROMPT is optional), so a prompt after an option is left over; take it."""
    if (extra and len(extra) == 1 and getattr(args, "command", "") == "chat"
            and args.prompt is None and not extra[0].startswith("-")):
        args.prompt = extra[0]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")


class _NotALevel(str):
    """What followed ``--think`` was not a level: the prompt, when none came after it."""


def _think(value: str) -> object:
    """``--think high`` -> "high"; ``--think on``/``off`` -> True/False."""
    text = value.strip().lower()
    if text in ("on", "true", "yes"):
        return True
    if text in ("off", "false", "no"):
        return False
    if text in THINK_LEVELS:
        return text
    return _NotALevel(value)


def _prompt_after_think(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``chat qwen3 --think "why is the sky blue?"``: argparse hands the prompt to --think
    (its level is optional); take it back as the prompt, thinking on."""
    think = getattr(args, "think", None)
    if not isinstance(think, _NotALevel):
        return
    if args.prompt is None and think.strip():
        args.prompt, args.think = str(think), True
        return
    _usage_error(parser, args.command, f"argument --think: expected one of "
                 f"{', '.join(THINK_LEVELS)} (or on/off), not {str(think)!r}")


def _usage_error(parser: argparse.ArgumentParser, command: str, message: str) -> None:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices[command].error(message)  # prints the command's usage, exits 2


def _auth(value: Optional[str]) -> Optional[tuple[str, str]]:
    """``--auth``, read by the same parser as CONTEXTPILOT_AUTH (the value is never shown)."""
    try:
        return settings.parse_auth(value, "--auth")
    except ContextPilotError:
        raise argparse.ArgumentTypeError(f"expected {settings.AUTH_FORM}") from None


# -- commands -------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    models = list_models(args.ollama_host)
    if not models:
        print("No models installed. Pull one: contextpilot pull llama3.2")
        return EXIT_OK
    rows = [(m.name, "cloud" if m.is_cloud else format_size(m.size), m.parameter_size,
             m.quantization, _ago(m.modified_at)) for m in models]
    _table(("NAME", "SIZE", "PARAMS", "QUANT", "MODIFIED"), rows)
    return EXIT_OK


def cmd_ps(args: argparse.Namespace) -> int:
    running = running_models(args.ollama_host)
    if not running:
        print("No models loaded.")
        return EXIT_OK
    rows = [(m.name, format_size(m.size), _processor(m.size, m.size_vram),
             str(m.context_length or ""), _until(m.expires_at)) for m in running]
    _table(("NAME", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"), rows)
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    final = pull_with_progress(args.model, args.ollama_host, file=sys.stderr,
                               insecure=args.insecure)
    print(f"Model '{final.model}' is ready ({format_size(final.total)}).")
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    delete_model(args.model, args.ollama_host)
    print(f"Deleted '{args.model}'.")
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    kw = dict(host=args.ollama_host, system=args.system, think=args.think, auto_pull=args.auto_pull,
              show_thinking=not args.hide_thinking, progress_file=sys.stderr,
              chat=getattr(args, "chat", None))
    if args.prompt is not None:
        print_chat(args.model, args.prompt, **kw)
        return EXIT_OK
    return _repl(args.model, kw)


def _repl(model: str, kw: dict) -> int:
    """One question per stdin line, with the conversation so far, until EOF or /bye."""
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with {model}. Ctrl-D or /bye to quit.", file=sys.stderr)
    messages: list[dict] = []
    while True:
        if interactive:
            print(">>> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() == "/bye":
            return EXIT_OK
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line.rstrip("\n")})
        answer = print_chat(model, list(messages), **kw)
        messages.append({"role": "assistant", "content": answer})


def cmd_search(args: argparse.Namespace) -> int:
    from .fit import model_files
    from .hub import search_models

    query = " ".join(args.query)
    if args.files:
        rows = [(q.name if q.pullable else q.tag, format_size(q.size), _fit_word(q),
                 "recommended" if q.recommended else q.reason)
                for q in model_files(query, host=args.ollama_host)]
        _table(("NAME", "SIZE", "FIT", "NOTE"), rows)
        return EXIT_OK
    found = search_models(query, limit=args.limit)
    if not found:
        print(f"No GGUF models found for '{query}'.")
        return EXIT_OK
    _table(("REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED"),
           [(m.id, f"{m.downloads:,}", f"{m.likes:,}",
             m.last_modified.strftime("%Y-%m-%d") if m.last_modified else "") for m in found])
    print(f"\nSee the quantisations: {PROG} search --files <REPOSITORY>")
    return EXIT_OK


def _fit_word(q) -> str:
    if q.projector:
        return "projector"
    if q.fit is None:
        return ""
    if q.fit.fits_disk is False:
        return "no room on disk"
    return {True: "fits", False: "too big for memory", None: "unknown"}[q.fit.fits_memory]


_SOURCES = {"catalog": "the catalog", "registry": "the registry's manifest",
            "hub": "the Hugging Face Hub", "probe": "a probe (a pull stopped at once)",
            "installed": "the installed copy"}


def cmd_fit(args: argparse.Namespace) -> int:
    from .fit import check_fit

    v = check_fit(args.model, args.ollama_host, context_length=args.context)
    source = _SOURCES.get(v.size_source)
    print(v.message + (f" (size from {source})" if source and v.download_size else ""))
    return fit_exit_code(v)


def fit_exit_code(v) -> int:
    """0 fits (or a cloud model), 3 may not fit, 4 no such model, 5 unknown (see above)."""
    if v.missing:
        return EXIT_NO_SUCH_MODEL
    if v.cloud:
        return EXIT_OK
    if v.fits_disk is False or v.fits_memory is False:
        return EXIT_MAY_NOT_FIT
    return EXIT_FIT_UNKNOWN if v.fits_memory is None else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .autostart import ensure_ollama

    outcome = ensure_ollama(args.ollama_host, autostart=None if args.autostart else False)
    print(outcome.message, file=sys.stderr)
    from .policy import AccessPolicy
    from .ui import MAX_UPLOAD, build_app  # gradio loads only for this command

    # --share or a bind beyond loopback makes it a shared app: visitors get its rules.
    policy = AccessPolicy.from_env(share=args.share, server_name=args.host,
                                   host=args.ollama_host)
    demo = build_app(host=args.ollama_host, policy=policy)
    auth = args.auth if args.auth is not None else settings.auth()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth,
                max_file_size=MAX_UPLOAD)
    return EXIT_OK


# -- formatting -----------------------------------------------------------------------------

def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _ago(when: Optional[datetime]) -> str:
    if when is None:
        return ""
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def _until(when: Optional[datetime]) -> str:
    if when is None:
        return ""
    seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds > 10 * 365 * 86400:
        return "forever"
    return f"{max(int(seconds // 60), 0)} minutes from now" if seconds >= 60 else "under a minute"


def _processor(size: int, vram: int) -> str:
    if not size:
        return ""
    gpu = round(100 * vram / size)
    return "100% GPU" if gpu >= 100 else "100% CPU" if gpu <= 0 else f"{100 - gpu}%/{gpu}% CPU/GPU"


if __name__ == "__main__":
    sys.exit(main())
