"""jsonwire must agree with the json module on everything the helper reads and writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docker_credential_ecr import jsonwire

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_loads_matches_json(value: object) -> None:
    text = json.dumps(value)
    assert jsonwire.loads(text) == json.loads(text)
    assert jsonwire.loads("  \n" + json.dumps(value, indent=2) + "\n ") == value


@given(st.text())
def test_loads_rejects_what_json_rejects(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):  # noqa: PT011 - any ValueError, as json raises
            jsonwire.loads(text)
    else:
        if "NaN" in text or "Infinity" in text:
            return  # json accepts these constants; jsonwire refuses them on purpose
        assert jsonwire.loads(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "{", '{"a":1} x', "NaN", "[Infinity]", '{"a":}'])
def test_loads_errors(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        jsonwire.loads(text)


@given(st.text())
def test_quote_matches_json(text: str) -> None:
    assert jsonwire.quote(text) == json.dumps(text)


@given(st.dictionaries(st.text(), st.text(), max_size=5))
def test_dumps_object_round_trips(mapping: dict[str, str]) -> None:
    assert json.loads(jsonwire.dumps_object(mapping)) == mapping
    assert jsonwire.dumps_object(mapping) == json.dumps(mapping, separators=(",", ":"))


def test_errors_without_json_imported() -> None:
    """The C scanner needs json.decoder to report errors; a fresh process must still get ValueError."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from docker_credential_ecr import jsonwire\n"
        "assert 'json' not in sys.modules and 'json.decoder' not in sys.modules\n"
        "for text in ('{\"a\": \"unterminated', '{\"a\":', '[1,', '\"\\\\x\"', 'nul'):\n"
        "    try:\n"
        "        jsonwire.loads(text)\n"
        "    except ValueError:\n"
        "        continue\n"
        "    raise SystemExit('accepted ' + text)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")
