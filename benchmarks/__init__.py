"""Benchmarks of nnabla_modules against plain PF code and its peers.

Run them all with ``python -m benchmarks`` (or ``make bench``).
"""
