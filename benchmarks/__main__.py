"""``python -m benchmarks`` (``make bench``): the fabric benchmarks.

See :mod:`benchmarks.fabric_bench` for what is measured and how.
"""

from benchmarks.fabric_bench import main

raise SystemExit(main())
