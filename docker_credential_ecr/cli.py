"""Placeholder entry point, replaced by the real CLI."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    return 1


def kubelet_main(argv: list[str] | None = None) -> int:
    return 1
