"""``python -m benchmarks.fluidsim``: see :mod:`benchmarks.fluidsim.cli`."""

from benchmarks.fluidsim.cli import main

raise SystemExit(main())
