"""Benchmarks for Parley (run as modules, e.g. `python -m bench.ws_relay`)."""
