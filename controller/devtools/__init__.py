"""Tools for running the controller beside an emulated fabric (tests, demo, benchmarks).

Nothing in the controller itself imports this package.
"""
