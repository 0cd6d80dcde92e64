"""The command line over a fleet (OLLAMA_HOSTS): ``hosts``, ``--host NAME`` on each command,
``pull --all-hosts`` and ``rm --all-hosts``. ``cli.py`` parses; this module decides, for
each command, whether it runs on one host (as today) or over the fleet, and runs the fleet's
versions.

- ``--ollama-host URL`` (or no OLLAMA_HOSTS): one host, exactly as before.
- ``--host NAME``: that host of OLLAMA_HOSTS; the command runs on it as on one host.
- OLLAMA_HOSTS and no ``--host``: ``list`` and ``ps`` show every host (a HOSTS column),
  ``chat`` is routed (and says so when a host was skipped), ``pull`` goes where a chat
  would (``--all-hosts``: everywhere), ``rm`` deletes where the model is (asking which
  when it is on several), ``fit`` and ``search`` use the first host.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any, Callable, Iterator, Optional, Sequence

from . import settings
from .console import PullBar
from .errors import InvalidRequest, ModelNotFound
from .fleet import Fleet
from .names import parse_name
from .types import Routed
from .units import format_size

Command = Callable[[argparse.Namespace], int]
EXIT_OK, EXIT_FAILURE = 0, 1


def conflict(args: argparse.Namespace) -> Optional[str]:
    """A usage error in the fleet options, or None."""
    name, every = getattr(args, "fleet_host", None), getattr(args, "all_hosts", False)
    if name and every:
        return "use --host NAME or --all-hosts, not both"
    if (name or every) and args.ollama_host:
        return "use --host NAME (a host of OLLAMA_HOSTS) or --ollama-host URL, not both"
    return None


def command_for(args: argparse.Namespace, today: Command) -> Command:
    """The function that runs ``args.command``: ``today``'s (on one host) or the fleet's;
    a fleet it made stops probing when the command ends."""
    chosen = _command_for(args, today)

    def run(args: argparse.Namespace) -> int:
        try:
            return chosen(args)
        finally:
            fleet = getattr(args, "_fleet", None)
            if fleet is not None:
                fleet.close()

    return run


def _command_for(args: argparse.Namespace, today: Command) -> Command:
    if args.command == "hosts":
        return cmd_hosts
    name = getattr(args, "fleet_host", None)
    if name:  # one host of the fleet, by name: the command as on one host
        args.ollama_host = _fleet(args).url(name)
        return today
    fleet_wide = getattr(args, "all_hosts", False) or (
        not args.ollama_host and len(settings.hosts()) > 0)
    if not fleet_wide or args.command == "serve":
        return today
    if args.command in ("fit", "search"):
        args.ollama_host = _fleet(args).url(_fleet(args).names[0])
        return today
    if args.command == "chat":  # today's printer and REPL, routed
        args.chat = routed_chat(_fleet(args))
        return today
    return _COMMANDS.get(args.command, today)


def _fleet(args: argparse.Namespace) -> Fleet:
    fleet = getattr(args, "_fleet", None)
    if fleet is None:
        fleet = Fleet([args.ollama_host]) if args.ollama_host else Fleet.from_env()
        args._fleet = fleet
    return fleet


# -- the fleet's commands -------------------------------------------------------------------

def cmd_hosts(args: argparse.Namespace) -> int:
    """Each host: name, address, state, version, models installed and loaded."""
    status = _fleet(args).status()
    rows = [(s.name, s.url, "up" if s.reachable else "down", s.version or "-",
             str(len(s.installed)) if s.reachable else "-", ", ".join(s.loaded) or "-")
            for s in status]
    _table(("NAME", "ADDRESS", "STATE", "VERSION", "MODELS", "LOADED"), rows)
    for s in status:
        if not s.reachable:
            print(f"{s.error}.", file=sys.stderr)
    return EXIT_OK if any(s.reachable for s in status) else EXIT_FAILURE


def cmd_list(args: argparse.Namespace) -> int:
    models = _fleet(args).list_models()
    if not models:
        print("No models installed on any host. Pull one: contextpilot pull llama3.2")
        return EXIT_OK
    rows = [(m.name, "cloud" if m.is_cloud else format_size(m.size), m.parameter_size,
             m.quantization, ", ".join(m.hosts), ", ".join(m.loaded_on) or "-")
            for m in models]
    _table(("NAME", "SIZE", "PARAMS", "QUANT", "HOSTS", "LOADED ON"), rows)
    return EXIT_OK


def cmd_ps(args: argparse.Namespace) -> int:
    running = _fleet(args).running_models()
    if not running:
        print("No models loaded on any host.")
        return EXIT_OK
    _table(("NAME", "HOST", "SIZE", "CONTEXT"),
           [(m.name, m.host, format_size(m.size), str(m.context_length or "")) for m in running])
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    """A bar per host; a host that fails is named (the others still finish)."""
    values = _fleet(args).pull_model(args.model, hosts="all" if args.all_hosts else None,
                                     insecure=args.insecure)
    bars: dict[str, PullBar] = {}
    try:
        for p in values:
            bar = bars.get(p.host)
            if bar is None:
                bar = bars[p.host] = PullBar(f"{p.model} on {p.host}", sys.stderr,
                                             position=len(bars))
            bar.show(p)
    except KeyboardInterrupt:
        values.close()  # type: ignore[attr-defined]
        for bar in bars.values():
            bar.interrupted()
        raise
    finally:
        for bar in bars.values():
            bar.close()
        _say_ready(bars)
    return EXIT_OK


def _say_ready(bars: dict[str, PullBar]) -> None:
    for host, bar in bars.items():
        p = bar.latest
        if p is not None and p.done:
            print(f"Model '{p.model}' is ready on {host} ({format_size(p.total)}).")


def cmd_rm(args: argparse.Namespace) -> int:
    fleet = _fleet(args)
    name = parse_name(args.model).display
    if args.all_hosts:
        hosts = fleet.delete_model(name, hosts="all")
    else:
        where = next((m.hosts for m in fleet.list_models() if m.name == name), ())
        if not where:
            raise ModelNotFound(name, installed_only=True)
        if len(where) > 1:
            raise InvalidRequest(f"'{name}' is installed on {', '.join(where)}: say which with "
                                 f"--host NAME, or --all-hosts for every one.")
        hosts = fleet.delete_model(name, hosts=list(where))
    print(f"Deleted '{name}' on {', '.join(hosts)}.")
    return EXIT_OK


def routed_chat(fleet: Fleet) -> Callable[..., Iterator[Any]]:
    """``chat_stream`` for ``print_chat`` over the fleet: one conversation (its turns prefer
    the host that answered), a line on stderr when a host was skipped or the model is
    downloaded first."""
    session = uuid.uuid4().hex

    def chat(model: str, messages: Any, host: Optional[str] = None, **kw: Any
             ) -> Iterator[Any]:
        for event in fleet.chat_stream(model, messages, session=session, **kw):
            if isinstance(event, Routed):
                _say_routed(event, model)
                continue
            yield event

    return chat


def _say_routed(event: Routed, model: str) -> None:
    if event.message:
        print(f"({event.message})", file=sys.stderr)
    if event.pull:
        print(f"(No host that answers has {model}: downloading it on {event.host}.)",
              file=sys.stderr)


_COMMANDS: dict[str, Command] = {"list": cmd_list, "ps": cmd_ps, "pull": cmd_pull,
                                 "rm": cmd_rm}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


__all__ = ["cmd_hosts", "command_for", "conflict", "routed_chat"]
