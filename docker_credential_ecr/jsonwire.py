"""JSON for the hot path without importing :mod:`json`.

``import json`` pulls in ``re`` and ``enum`` (json.decoder's number regex): about 0.75x of a bare
interpreter start, measured with ``python -X importtime``. A cache hit needs to parse one small file
and print one object, so this module drives CPython's C accelerator ``_json`` directly (the same
scanner and string encoder :mod:`json` uses) and falls back to :mod:`json` where ``_json`` is absent.
``tests/test_jsonwire.py`` holds both functions equal to :mod:`json` for arbitrary input.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

_WHITESPACE = " \t\n\r"

_json: Any
try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it; other interpreters use the module
    _json = None


def _no_constants(name: str) -> Any:
    # json.loads accepts NaN/Infinity; nothing we read may hold them, so they are malformed here.
    raise ValueError(name)


class _ScannerContext:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constants)


def _make_loads() -> Callable[[str], Any]:
    if _json is None:  # pragma: no cover
        import json

        return json.loads
    scan = _json.make_scanner(_ScannerContext())

    def loads(text: str) -> Any:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = scan(text, start)
        except (StopIteration, ValueError, SystemError):
            # Malformed input. The C scanner reports errors with json.decoder's exception class and,
            # on some versions, fails with SystemError when json.decoder was never imported; the
            # reference decoder gives the proper ValueError. Only a corrupt file pays this import.
            import json

            return json.loads(text, parse_constant=_no_constants)
        if text[end:].strip(_WHITESPACE):
            raise ValueError("extra data after JSON")
        return value

    return loads


loads = _make_loads()
"""Parse a JSON document (raises ValueError on anything malformed, like :func:`json.loads`)."""


def quote(text: str) -> str:
    """A JSON string literal for ``text``, ASCII-only, as ``json.dumps(text)`` gives."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(text)
    return str(_json.encode_basestring_ascii(text))


def dumps_object(mapping: Mapping[str, str]) -> str:
    """A flat JSON object of string values, compact, in the mapping's order."""
    return "{" + ",".join(quote(k) + ":" + quote(v) for k, v in mapping.items()) + "}"
