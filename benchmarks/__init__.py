"""Benchmarks of nnabla_modules against plain PF code and its peers; run ``python -m benchmarks``."""
