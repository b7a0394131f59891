"""Shared test setup: pytest puts this folder on sys.path, so every test (tests/peers too) can
import the helpers beside it: stub_api, samples, xvfb, mjpeg_server, faults."""
