"""``python -m shellflow.tui [--read-only] [--channel NAME ...]``: what ``flow tui`` runs.

Settings come from the environment and the ini file as for every ``flow`` command (``flow
tui`` passes its own flags on as SHELLFLOW_* variables). Expected failures end with one
line on stderr and the exit code of shellflow.errors, like the CLI.
"""

from __future__ import annotations

import argparse
import sys

from shellflow.errors import ShellflowError
from shellflow.printable import printable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flow tui", description="The shellflow dashboard.")
    parser.add_argument("--read-only", action="store_true", help="hide every action")
    parser.add_argument("--channel", action="append", help="live channel to show (repeatable)")
    parser.add_argument("--debug", action="store_true")
    options = parser.parse_args(argv)
    try:
        from shellflow.config import load_settings
        from shellflow.model.audit import set_front
        from shellflow.tui.terminal import ensure_terminal

        set_front("tui")  # the dashboard's actions are audited as its own

        settings = load_settings(debug=options.debug)
        ensure_terminal()
        from shellflow.tui.app import make_app

        make_app(settings, options.read_only, channels=options.channel).run()
    except ShellflowError as exc:
        if options.debug:
            raise
        print(f"flow: {printable(exc.message)}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
