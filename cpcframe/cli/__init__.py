"""The ``cpcframe`` command. One module per subcommand; each exposes ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cpcframe._version import __version__
from cpcframe.errors import UserError, user_message

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _subcommands():
    from cpcframe.cli import abx, check, compare, embed, export, plugins, probe, push, report, run, shard

    return [run, check, probe, abx, compare, report, embed, export, push, plugins, shard]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpcframe", description="Contrastive predictive coding for any modality.")
    parser.add_argument("--version", action="version", version=f"cpcframe {__version__}")
    # --debug is accepted before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of errors")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _subcommands():
        module.add_parser(sub, parents=[common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, 130 for Ctrl-C).

    Under ``torchrun`` with several processes it does not return: each process ends
    with barrier -> ``destroy_process_group()`` -> ``os._exit(status)`` (see
    :func:`cpcframe.training.distributed.exit_distributed`).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:  # not under torchrun: no need of the training package
        return _main(argv)
    from cpcframe.training.distributed import exit_distributed
    try:
        status = _main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # --debug, or a bug: show it, then leave without teardown
        import traceback

        traceback.print_exc()
        status = 1
    exit_distributed(status)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return int(exc.code or 0) and EXIT_USER_ERROR
    debug = getattr(args, "debug", False) or os.environ.get("CPCFRAME_DEBUG") == "1"
    from cpcframe.stopping import StopRequest, StopSignal

    # Ctrl-C and SIGTERM are answered in every phase of the command (set-up, data
    # preparation, training, the final probe), not only while training.
    stop = StopRequest(interrupt=True)
    stop.phase = f"cpcframe {args.command}"
    with stop:
        try:
            return int(args.func(args) or 0)
        except UserError as exc:
            if debug:
                raise
            print(f"cpcframe: error: {user_message(exc)}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt as exc:
            print(f"cpcframe: {exc}" if isinstance(exc, StopSignal) else "cpcframe: interrupted",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:
            from cpcframe.runs.atomic import disk_full
            from cpcframe.training.trainer import TrainingInterrupted

            if isinstance(exc, TrainingInterrupted):
                print(f"cpcframe: {exc}", file=sys.stderr)
                return EXIT_INTERRUPTED
            if disk_full(exc) and not debug:  # a write outside the atomic ones (a plot, a log)
                print(f"cpcframe: error: disk full ({_first_line(exc)})", file=sys.stderr)
                return EXIT_USER_ERROR
            raise


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
