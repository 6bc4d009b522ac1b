"""``python -m aslx.report <command>``: pictures and tables for people.

Commands:
  clip     draw a clip's landmarks, before and after the augmentation recipe
  joints   what a model's joint gate keeps, and its score when keeping only the top-K landmarks
"""

from __future__ import annotations

import argparse
import sys

from aslx import cli
from aslx.report import clip_frames, joints


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("python -m aslx.report", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in (("clip", clip_frames), ("joints", joints)):
        module.add_arguments(
            commands.add_parser(
                name,
                help=module.__doc__.splitlines()[0],
                description=module.__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    args = parser.parse_args(argv)
    return {"clip": clip_frames.run, "joints": joints.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
