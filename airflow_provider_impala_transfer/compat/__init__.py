"""Compatibility layers: the seed tool's Python API on this provider's core."""
