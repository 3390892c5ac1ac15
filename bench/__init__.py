"""Benchmarks of bulkops against the usual ways of scripting a bulk job, on the emulator.

`python -m bench` runs every scenario (see BENCHMARKS.md); `python -m bench --smoke`
runs each one at tiny sizes in seconds, asserting only that it works.
"""
