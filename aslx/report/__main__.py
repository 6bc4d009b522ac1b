"""``python -m aslx.report <command>``: pictures and tables for people.

Commands:
  clip     draw a clip's landmarks, before and after the augmentation recipe
  joints   what a model's joint gate keeps, and its score when keeping only the top-K landmarks
"""

from __future__ import annotations

import argparse
import sys

from aslx.report import clip, joints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aslx.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in (("clip", clip), ("joints", joints)):
        module.add_arguments(
            commands.add_parser(
                name,
                help=module.__doc__.splitlines()[0],
                description=module.__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    args = parser.parse_args(argv)
    try:
        return {"clip": clip.run, "joints": joints.run}[args.command](args)
    except (FileNotFoundError, KeyError, ValueError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
