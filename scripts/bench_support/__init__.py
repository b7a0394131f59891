"""Helpers of ``scripts/bench.py``: a latency server, runners and one module per benchmark."""
