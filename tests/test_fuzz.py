"""Hostile input, driven by hypothesis: the registry parser and every action's stdin.

Properties: never a traceback; exit status 0 or 1; stdout one line of JSON or one protocol error
line; and no AWS call for anything that does not name an ECR registry. In-process properties run
many examples (they cost microseconds); the subprocess one runs the installed console script
against the fake with fewer.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from docker_credential_ecr import cli, protocol, registry
from docker_credential_ecr import store as cachemod
from docker_credential_ecr.errors import HelperError, MissingServerURLError
from fakeecr import FakeAWS, running_fake
from reliability import NOT_FOUND, PROGRAM, PROTOCOL_ERRORS, assert_protocol_answer, run
from support import helper_env
from world import World

ASCII_WHITESPACE = " \t\n\r\f\v"
VALID_HOSTS = (
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
    "123456789012.dkr-ecr.eu-west-1.on.aws",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
    "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
    "public.ecr.aws",
    "ecr-public.aws.com",
)
# Characters that make parsers disagree: controls, separators, look-alike letters and digits.
NASTY = (
    "\x00\x01\x1b\x7f\t\n\r\x0b\x0c @:/?#\\%.-_[]'\"`"
    "\u0085\u00a0\u1680\u2028\u2029\u3000\ufeff\u200b\u212a\u017f\u0131\u0660\u0669\uff10\uff0e\u3002\ud7ff"
)


@st.composite
def near_hosts(draw: st.DrawFn) -> str:
    """A spelling of a real ECR host, then mangled: what a fuzzer at the border of "valid" looks like."""
    host = draw(st.sampled_from(VALID_HOSTS))
    if draw(st.booleans()):
        host = host.upper() if draw(st.booleans()) else host.title()
    text = draw(st.sampled_from(["", "https://", "http://", "HTTPS://", "ftp://", "//", "user@", "https://u:p@"]))
    text += host
    text += draw(st.sampled_from(["", ":443", ":0", ":65535", ":65536", ":99999", ":", ":x"]))
    text += draw(st.sampled_from(["", "/", "/v2/", "/team/app", "?q=1", "#frag", "/a\\b", "/%2e%2e", "@evil.com"]))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(NASTY) | st.characters(codec="utf-8"))
        if how == "insert":
            text = text[:where] + char + text[where:]
        elif how == "delete":
            text = text[:where] + text[where + 1 :]
        else:
            text = text[:where] + char + text[where + 1 :]
    pad = st.text(alphabet=ASCII_WHITESPACE + "\u00a0\u2028", max_size=3)
    return draw(pad) + text + draw(pad)


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """A valid way of writing a real ECR host (what clients send), with ASCII whitespace around it."""
    host = draw(st.sampled_from(VALID_HOSTS))
    if draw(st.booleans()):
        host = host.upper()
    text = draw(st.sampled_from(["", "https://", "HTTPS://"])) + host
    text += draw(st.sampled_from(["", ":443", ":5000"])) + draw(st.sampled_from(["", "/", "/v2/", "/team/app:tag"]))
    pad = st.text(alphabet=ASCII_WHITESPACE, max_size=2)
    return draw(pad) + text + draw(pad)


ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(NASTY), max_size=300)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
CREDENTIAL_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "ServerURL": st.one_of(near_hosts(), JSON_VALUES),
        "Username": st.one_of(ANY_TEXT, JSON_VALUES),
        "Secret": st.one_of(ANY_TEXT, JSON_VALUES),
    },
)


def _encodings(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.tuples(text, st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"])).map(
        lambda pair: pair[0].encode(pair[1], "replace")
    )


STDIN = st.one_of(
    st.binary(max_size=600),
    _encodings(ANY_TEXT),
    _encodings(near_hosts()),
    near_hosts().map(str.encode),
    spellings().map(str.encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    CREDENTIAL_BODIES.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 30_000).map(lambda n: b"[" * n),  # deeper than the JSON scanner recurses
)


# -- the registry parser -------------------------------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(st.one_of(ANY_TEXT, near_hosts(), spellings()))
@example("https://123456789012.dkr.ecr.us-east-1.amazonaws.com:443/v2/")
@example("123456789012.dkr.ecr.us-east-1.amazonaws.com\\@evil.example.com")
@example("\u0661\u0662\u0663456789012.dkr.ecr.us-east-1.amazonaws.com")
def test_registry_parse_is_total_and_only_names_real_ecr_hosts(text: str) -> None:
    found = registry.parse(text)
    if found is None:
        return
    bare = text.strip(ASCII_WHITESPACE)
    assert bare.isascii()
    assert bare.isprintable()
    assert not bare.lower().startswith("http://")
    assert not any(c in bare for c in "@?#\\ "), bare
    assert found.host.isascii()
    assert found.host == found.host.lower()
    assert found.host in bare.lower()
    assert registry.parse(found.host) == found  # canonical
    if found.service == "ecr":
        assert found.account is not None
        assert found.account.isdigit()
        assert len(found.account) == 12
        assert found.host.startswith(found.account + ".dkr")
    else:
        assert found.service == "ecr-public"
        assert found.host in ("public.ecr.aws", "ecr-public.aws.com")


# -- the wire protocol ---------------------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(STDIN)
@example(b"[" * 100_000)
@example(b"\xef\xbb\xbf{}")
@example(b"\xed\xa0\x80")  # an encoded lone surrogate
def test_protocol_readers_raise_only_protocol_errors(data: bytes) -> None:
    try:
        url = protocol.read_server_url(io.BytesIO(data))
        assert url == url.strip()
        assert url
    except MissingServerURLError:
        pass
    failure: str | None = None
    try:
        creds = protocol.parse_credentials(protocol.read_request(io.BytesIO(data)))
    except HelperError as exc:
        failure = exc.message
    if failure is not None:
        assert failure in PROTOCOL_ERRORS
    else:
        assert creds.server_url.strip()
        assert creds.username.strip()
        assert "secret=<hidden>" in repr(creds)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT | st.text(), ANY_TEXT | st.text(), ANY_TEXT | st.text())
def test_answers_are_one_line_of_json_that_round_trips(server_url: str, username: str, secret: str) -> None:
    out = io.StringIO()
    protocol.write_credentials(out, protocol.Credentials(server_url, username, secret))
    text = out.getvalue()
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert text.isascii()
    assert json.loads(text) == {"ServerURL": server_url, "Username": username, "Secret": secret}
    out = io.StringIO()
    protocol.write_list(out, {server_url: username})
    assert json.loads(out.getvalue()) == {server_url: username}


# -- the cache file, as input ---------------------------------------------------------------------

TIMES = st.one_of(st.integers(), st.floats(), st.just(1.7e9), JSON_VALUES)
ENTRIES = st.fixed_dictionaries(
    {},
    optional={
        "username": st.just("AWS") | JSON_VALUES,
        "password": st.just("p" * 40) | JSON_VALUES,
        "issued_at": TIMES,
        "expires_at": TIMES,
        "hosts": st.lists(ANY_TEXT, max_size=3) | JSON_VALUES,
    },
)
CACHE_DOCS = st.one_of(
    st.binary(max_size=400),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "schema": st.just(cachemod.SCHEMA) | ANY_TEXT,
            "version": st.just(cachemod.VERSION) | JSON_VALUES,
            "entries": st.dictionaries(ANY_TEXT, ENTRIES, max_size=3) | JSON_VALUES,
        }
    ).map(lambda v: json.dumps(v).encode()),
)


def _doc(issued: str, expires: str) -> bytes:
    key = "k/ecr/us-east-1//"
    entry = f'{{"username":"AWS","password":"pw","issued_at":{issued},"expires_at":{expires},"hosts":[]}}'
    return f'{{"schema":"{cachemod.SCHEMA}","version":{cachemod.VERSION},"entries":{{"{key}":{entry}}}}}'.encode()


def test_cache_file_contents_are_never_trusted_blindly(tmp_path: Path) -> None:
    """Whatever cache.json holds (a crash of another tool, a bit flip), reading it gives sane entries."""
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    path = directory / cachemod.FILE_NAME

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(CACHE_DOCS)
    @example(_doc("1" + "0" * 400, "1"))  # an integer no float can hold
    @example(_doc("1.7e9", "1e400"))  # reads as inf: fresh for ever
    @example(_doc("-1e400", "2e9"))
    @example(b"[" * 100_000)
    def prop(data: bytes) -> None:
        path.write_bytes(data)
        path.chmod(0o600)
        for entry in cachemod.Store(str(directory)).tokens().values():
            assert entry.username
            assert entry.password
            for moment in (entry.issued_at, entry.expires_at):
                assert abs(moment) < 1e12  # finite and sane: no token fresh for ever

    prop()


# -- every action, in process --------------------------------------------------------------------


@pytest.mark.parametrize("ignore_storage", [False, True])
def test_every_action_in_process(tmp_path: Path, ignore_storage: bool) -> None:
    world = World(
        tmp_path,
        AWS_ECR_IGNORE_CREDS_STORAGE="true" if ignore_storage else "",
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_ACCESS_KEY_ID="AKIAFAKEFAKEFAKE0001",
    )
    seen = {"examples": 0, "ecr": 0}
    factory = world.helper

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(cli.PROTOCOL_ACTIONS), STDIN)
    @example("get", b"[" * 100_000)
    @example("store", b"[" * 100_000)
    @example("get", b"x" * (protocol.MAX_REQUEST_BYTES + 10))
    @example("get", b" https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/\n")
    def prop(action: str, data: bytes) -> None:
        before = len(world.calls)
        seen["examples"] += 1
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            status = cli.run_action(action, io.BytesIO(data), out, factory)
        assert status in (0, 1)
        assert "internal error" not in err.getvalue(), err.getvalue()
        text = out.getvalue()
        ecr = None
        if action == "get":
            try:
                ecr = registry.parse(protocol.read_server_url(io.BytesIO(data)))
            except MissingServerURLError:
                ecr = None
        if ecr is None:
            assert len(world.calls) == before, f"an AWS call for {data[:80]!r}"
        else:
            seen["ecr"] += 1
        if action in ("store", "erase") and status == 0:
            assert text == ""
            return
        assert text.endswith("\n")
        assert text.count("\n") == 1
        line = text[:-1]
        if status == 0:
            assert isinstance(json.loads(line), dict)
            if action == "get":
                assert ecr is not None
        else:
            assert line in PROTOCOL_ERRORS, line
            if action != "get":  # "not found" answers get only; elsewhere it hides a bug
                assert line != NOT_FOUND, (action, data[:80])

    prop()
    assert seen["examples"] >= 300
    assert seen["ecr"] >= 1, seen
    print(f"fuzz in process: {seen}, fetches {len(world.calls)}")


# -- every action, as a process ------------------------------------------------------------------

ACTIONS = st.one_of(
    st.sampled_from([*cli.PROTOCOL_ACTIONS, "version", "-v", "--version"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12).filter(
        lambda a: a not in (*cli.PROTOCOL_ACTIONS, *cli.COMMANDS, "version", "help") and not a.startswith("-")
    ),
)


@pytest.mark.slow
def test_every_action_as_a_process(tmp_path: Path) -> None:
    """The installed console script, fuzzed: protocol answers only, and the fake hears only of ECR hosts."""
    with running_fake() as fake:
        env = helper_env(tmp_path, fake)
        envs = {False: env, True: {**env, "AWS_ECR_IGNORE_CREDS_STORAGE": "true"}}
        seen = {"ecr": 0, "not-ecr": 0}

        @settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(ACTIONS, STDIN, st.booleans())
        @example("get", b"123456789012.dkr.ecr.eu-west-1.amazonaws.com", False)
        @example("get", b"http://123456789012.dkr.ecr.eu-west-1.amazonaws.com", False)
        @example("get", b"x" * (protocol.MAX_REQUEST_BYTES + 10), False)
        @example("store", b"[" * 100_000, True)
        @example("erase", b"\x00\xff" * 100, True)
        def prop(action: str, data: bytes, ignore_storage: bool) -> None:
            calls = fake.calls("*")
            proc = run(envs[ignore_storage], action, data, fake=fake, label=f"fuzz {action}")
            assert_protocol_answer(proc)
            ecr = None
            if action == "get":
                try:
                    ecr = registry.parse(protocol.read_server_url(io.BytesIO(data)))
                except MissingServerURLError:
                    ecr = None
            if ecr is None:
                assert fake.calls("*") == calls, f"{action}: an AWS call for {data[:80]!r}"
                seen["not-ecr"] += 1
            else:
                got = json.loads(proc.stdout)
                assert got["ServerURL"] == protocol.read_server_url(io.BytesIO(data))
                assert got["Secret"] in fake.issued
                seen["ecr"] += 1
            assert proc.stderr == "", proc.stderr  # not-found, bad requests, unknown actions: stdout only
            if action.startswith("-v") or action in ("version", "--version"):
                assert proc.stdout.startswith(PROGRAM + " ")

        prop()
        assert seen["ecr"] >= 1
        assert seen["not-ecr"] >= 20
        print(f"fuzz as processes: {seen}, API calls {fake.calls('*')}")


def test_kubelet_stdin_is_fuzz_safe(tmp_path: Path, fake: FakeAWS) -> None:
    """The kubelet provider reads a request on stdin too: one line on stderr or JSON on stdout, no trace."""
    env = helper_env(tmp_path, fake)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(
        st.one_of(
            STDIN,
            st.fixed_dictionaries(
                {
                    "apiVersion": st.sampled_from(["credentialprovider.kubelet.k8s.io/v1", "v0"]) | JSON_VALUES,
                    "kind": st.just("CredentialProviderRequest") | JSON_VALUES,
                    "image": near_hosts() | JSON_VALUES,
                }
            ).map(lambda v: json.dumps(v).encode()),
        )
    )
    def prop(data: bytes) -> None:
        proc = run(env, "kubelet", data, fake=fake, label="fuzz kubelet")
        assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert "internal error" not in proc.stderr
        if proc.returncode == 0:
            assert isinstance(json.loads(proc.stdout), dict)
        else:
            assert proc.stdout == ""
            assert len(proc.stderr.splitlines()) >= 1

    prop()
