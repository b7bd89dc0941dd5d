"""Extra commands around the protocol (configure, doctor, cache, kubelet): off the hot path.

Each module has ``main(argv: list[str]) -> int`` and may import anything.
"""

from __future__ import annotations
