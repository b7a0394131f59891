"""The Python API's functions: live runs and streams, single requests and drawing, file annotation."""
