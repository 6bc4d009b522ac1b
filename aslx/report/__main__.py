"""``python -m aslx.report <command>``: pictures and tables for people.

Commands:
  clip   draw a clip's landmarks, before and after the augmentation recipe
"""

from __future__ import annotations

import argparse
import sys

from aslx.report import clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aslx.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    clip.add_arguments(
        commands.add_parser(
            "clip",
            help=clip.__doc__.splitlines()[0],
            description=clip.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    args = parser.parse_args(argv)
    try:
        return {"clip": clip.run}[args.command](args)
    except (FileNotFoundError, KeyError, ValueError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
