"""Reading YAML that people write (``sources.yml``, a field catalogue given by path): bounded in size, no aliases.

A YAML alias (``*name``) repeats an anchored node (``&name``) wherever it is used, so a few hundred bytes of nested
aliases expand into gigabytes once loaded (the "billion laughs"). Declaration files need neither anchors nor aliases,
so the loader refuses both before anything is built, and refuses a file larger than ``LAKEHOUSE_YAML_MAX_BYTES``
(default 1 MiB) before parsing it. Errors name the file (and the line for an alias).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lakehouse.settings import ConfigError

MAX_BYTES_ENV = "LAKEHOUSE_YAML_MAX_BYTES"
DEFAULT_MAX_BYTES = 1024 * 1024


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that stops at the first anchor or alias (so nothing is ever expanded)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise yaml.composer.ComposerError(
                None, None, f"YAML anchors and aliases are not allowed ({kind}{anchor})", event.start_mark
            )
        return super().compose_node(parent, index)


def max_bytes() -> int:
    """The size limit for a YAML file people write: ``LAKEHOUSE_YAML_MAX_BYTES`` or 1 MiB."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{MAX_BYTES_ENV} must be a positive whole number of bytes, got {raw!r}")
    return int(raw)


def parse_yaml(text: str, name: str) -> Any:
    """Parse ``text`` (from the file called ``name``) without anchors or aliases; errors name the file and line."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


def read_yaml_file(path: Path, *, what: str = "the YAML file", error: type[ConfigError] = ConfigError) -> Any:
    """Read and parse the YAML file at ``path``: at most :func:`max_bytes` bytes, no anchors or aliases.

    Raises ``error`` (a ConfigError) naming ``what`` and the file when it cannot be read, is not a regular file, is
    too large or is not valid YAML.
    """
    limit = max_bytes()
    try:
        if path.exists() and not path.is_file():
            raise error(f"cannot read {what} {path}: not a regular file")
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(
            f"{what} {path} is larger than {limit:,} bytes, the limit for a declaration file "
            f"(set {MAX_BYTES_ENV} to allow more)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return parse_yaml(text, path.name)
    except ConfigError as exc:
        raise error(str(exc)) from None
