"""Fault-injection helpers: scriptable loopback HTTP servers and process resource probes."""
