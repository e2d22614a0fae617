"""Shared core of the lakehouse: settings and layout, atomic I/O, the pipeline steps and the CLI."""
