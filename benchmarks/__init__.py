"""Speed and quality measurements, one script each (``python benchmarks/NAME.py --json PATH``);
what they share, and how they import each other, is in :mod:`benchmarks.harness`."""
