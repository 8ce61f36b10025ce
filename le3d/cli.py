"""The `le3d` command: one subcommand per module in le3d/commands/.

Each command module defines NAME, HELP, add_arguments(parser) and run(args) -> int. User errors
(le3d.errors.Le3dError) print one line and exit 2; Ctrl-C exits 130. Python warnings raised while a
command runs print as one line (`le3d COMMAND: warning: ...`), without the source location.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

import le3d.commands
from le3d.errors import Le3dError


def _command_modules():
    for info in sorted(pkgutil.iter_modules(le3d.commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"le3d.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    from le3d import __version__

    parser = argparse.ArgumentParser(
        prog="le3d", description="Radiance fields for dark and HDR scenes: train on RAW, render HDR."
    )
    parser.add_argument("--version", action="store_true", help="print version and backends, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(_subparsers={})
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
        parser.get_default("_subparsers")[module.NAME] = p
    parser.epilog = f"le3d {__version__}. `le3d COMMAND --help` for a command's options."
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the command and show its usage, not the top-level one
        sub = args._subparsers.get(args.command) if getattr(args, "command", None) else None
        (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from le3d import __version__, backend_info

        print(f"le3d {__version__}")
        for key, value in backend_info().items():
            print(f"  {key}: {value}")
        return 0
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    previous = warnings.showwarning
    warnings.showwarning = lambda message, *a, **k: print(f"le3d {args.command}: warning: {message}",
                                                          file=sys.stderr)
    try:
        return int(args._run(args) or 0)
    except Le3dError as exc:
        print(f"le3d {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"le3d {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
