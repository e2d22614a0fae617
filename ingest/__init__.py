"""Ingest: sources -> bronze. Each source is a package with one public entry point."""
