"""The config file: where it is, what it may say, the errors it gets, its parsed copy, and its effect."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docker_credential_ecr import config as configs
from docker_credential_ecr import configfile
from docker_credential_ecr.errors import BadRequestError, ConfigError, CredentialsNotFoundError
from docker_credential_ecr.helper import Helper
from docker_credential_ecr.registry import Registry, parse
from docker_credential_ecr.settings import APP_NAME, Settings
from docker_credential_ecr.store import Store
from fakeecr import FakeAWS, access_key_for_role
from support import ECR_HOST, NOT_FOUND, OTHER_ACCOUNT_HOST, WEST_HOST, get_ok, platformdirs_user_dir, run_helper
from world import CONFIG_VARIABLE, World, write_config

MIRROR = "mirror.example.com"
ROLE = "arn:aws:iam::210987654321:role/ecr-pull"
EXAMPLE = f"""\
# docker-credential-ecr
fallback = "desktop"
log_level = "INFO"
log_file = "~/ecr.log"

[[registry]]
match = "210987654321"
profile = "other"

[[registry]]
match = "*.dkr.ecr.eu-*.amazonaws.com"
role_arn = "{ROLE}"
external_id = "ci-42"
session_name = "builder"
region = "eu-central-1"

[[registry]]
match = "{WEST_HOST}"

[aliases]
"{MIRROR}" = "{ECR_HOST}"
"Registry.Example.com:5000" = "public.ecr.aws"
"""


def reg(host: str) -> Registry:
    registry = parse(host)
    assert registry is not None
    return registry


def settings_for(tmp_path: Path, config: Path | None, **environ: str) -> Settings:
    """The settings of the fake world under ``tmp_path``, reading ``config`` (a file the test wrote)."""
    named = {} if config is None else {CONFIG_VARIABLE: str(config)}
    return World(tmp_path, **environ).settings(**named)


# -- where the file is ------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hand-written path covers Linux/BSD")
@pytest.mark.parametrize(
    "xdg",
    [
        pytest.param(None, id="no-xdg"),
        pytest.param("/tmp/xdg-config", id="xdg"),
        pytest.param("  ", id="blank-xdg"),
        pytest.param("relative/dir", id="relative-xdg"),
    ],
)
def test_default_config_dir_equals_platformdirs(monkeypatch: pytest.MonkeyPatch, xdg: str | None) -> None:
    if xdg is not None:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert configs.default_config_dir(os.environ) == platformdirs_user_dir("config", APP_NAME)


def test_default_config_dir_without_home_uses_passwd() -> None:
    path = configs.default_config_dir({}, platform="linux")
    assert path is not None
    assert os.path.isabs(path)
    assert path.endswith(os.path.join(".config", APP_NAME))


def test_config_path_default_and_override(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert configs.config_path({"HOME": str(home)}) == (str(home / ".config" / APP_NAME / "config.toml"), False)
    named = {"HOME": str(home), "DOCKER_CREDENTIAL_ECR_CONFIG": "~/ecr.toml"}
    assert configs.config_path(named) == (str(home / "ecr.toml"), True)
    monkeypatch.chdir(tmp_path)
    relative = {"HOME": str(home), "DOCKER_CREDENTIAL_ECR_CONFIG": "conf/ecr.toml"}
    assert configs.config_path(relative) == (str(tmp_path / "conf" / "ecr.toml"), True)


# -- the format ---------------------------------------------------------------------------------------
def test_example_parses() -> None:
    config = configs.parse(EXAMPLE, "/etc/ecr.toml")
    assert (config.path, config.fallback, config.log_level, config.log_file) == (
        "/etc/ecr.toml",
        "desktop",
        "info",
        "~/ecr.log",
    )
    assert config.aliases == {MIRROR: ECR_HOST, "registry.example.com:5000": "public.ecr.aws"}
    account, glob, host = config.tables
    assert (account.kind, account.match, account.profile, account.line) == ("account", "210987654321", "other", 6)
    assert (glob.kind, glob.role_arn, glob.external_id, glob.session_name, glob.region, glob.line) == (
        "glob",
        ROLE,
        "ci-42",
        "builder",
        "eu-central-1",
        10,
    )
    assert (host.kind, host.match, host.settings()) == ("host", WEST_HOST, {})


def test_first_matching_table_wins() -> None:
    config = configs.parse(EXAMPLE)
    assert config.table_for(reg(OTHER_ACCOUNT_HOST)) is config.tables[0]
    # An account table beats a later glob for the same host.
    assert config.table_for(reg("210987654321.dkr.ecr.eu-west-1.amazonaws.com")) is config.tables[0]
    assert config.table_for(reg("123456789012.dkr.ecr.eu-west-1.amazonaws.com")) is config.tables[1]
    assert config.table_for(reg(WEST_HOST)) is config.tables[2]
    assert config.table_for(reg(ECR_HOST)) is None
    assert config.table_for(reg("public.ecr.aws")) is None


@pytest.mark.parametrize(
    ("url", "host", "target"),
    [
        pytest.param(MIRROR, MIRROR, ECR_HOST, id="bare"),
        pytest.param(f"https://{MIRROR}", MIRROR, ECR_HOST, id="https"),
        pytest.param(f"https://{MIRROR}:443/v2/", MIRROR, ECR_HOST, id="https-443-path"),
        pytest.param(f"{MIRROR.upper()}/library/x", MIRROR, ECR_HOST, id="upper-repo"),
        pytest.param("registry.example.com:5000", "registry.example.com:5000", "public.ecr.aws", id="port"),
        pytest.param(ECR_HOST, ECR_HOST, ECR_HOST, id="ecr-host-itself"),
    ],
)
def test_aliases_resolve_in_every_spelling(url: str, host: str, target: str) -> None:
    resolution = configs.parse(EXAMPLE).resolve(url)
    assert resolution is not None
    assert (resolution.host, resolution.registry.host) == (host, target)


@pytest.mark.parametrize(
    "name", ["mydocker.io", "docker.io.example.com", "docker.iox", "registry.example.com:5000", "hub.example.io"]
)
def test_names_like_docker_hub_but_not_it_are_fine_aliases(name: str) -> None:
    config = configs.parse(f'[aliases]\n"{name}" = "{ECR_HOST}"\n')
    resolution = config.resolve(f"https://{name}/v2/")
    assert resolution is not None
    assert resolution.registry.host == ECR_HOST


@pytest.mark.parametrize(
    ("url", "owned"),
    [
        pytest.param(f"http://{MIRROR}", True, id="alias-over-http"),
        pytest.param(f"http://{ECR_HOST}", True, id="ecr-over-http"),
        pytest.param("registry.example.com", False, id="alias-without-its-port"),
        pytest.param(f"{MIRROR}:8443", False, id="alias-other-port"),
        pytest.param(f"user@{MIRROR}", False, id="user-info"),
        pytest.param("ghcr.io", False, id="other"),
        pytest.param("https://index.docker.io/v1/", False, id="docker-hub"),
    ],
)
def test_urls_not_resolved(url: str, owned: bool) -> None:
    config = configs.parse(EXAMPLE)
    assert config.resolve(url) is None
    assert config.owns(url) is owned


def test_describe_for_doctor() -> None:
    config = configs.parse(EXAMPLE, "/etc/ecr.toml")
    assert config.describe(MIRROR) == [
        f"alias {MIRROR} -> {ECR_HOST} (/etc/ecr.toml, [aliases])",
        f"registry {ECR_HOST}: ecr, region us-east-1",
        "no [[registry]] table matches in /etc/ecr.toml: the default AWS credential chain",
    ]
    assert config.describe("123456789012.dkr.ecr.eu-west-1.amazonaws.com")[1:] == [
        "settings from [[registry]] match = '*.dkr.ecr.eu-*.amazonaws.com' (/etc/ecr.toml:10)",
        f"  role_arn = {ROLE}",
        "  external_id = ci-42",
        "  session_name = builder",
        "  region = eu-central-1",
        "  (role assumed through STS in eu-central-1)",
    ]
    assert config.describe("ghcr.io") == ["'ghcr.io' is not an ECR registry: handed to docker-credential-desktop"]


# -- errors: one line, naming the file and the line -----------------------------------------------------
BAD = {
    "unknown-top": (
        'log_level = "info"\nfallbak = "pass"\n',
        ":2: unknown key 'fallbak' in the top level (did you mean 'fallback'?)",
    ),
    "wrong-type": ("fallback = 3\n", ":1: fallback must be a string, not an integer"),
    "fallback-self": ('fallback = "ecr-login"\n', ":1: fallback 'ecr-login' is this helper itself; name another one"),
    "fallback-path": (
        'fallback = "/usr/bin/x"\n',
        ":1: fallback '/usr/bin/x' is not a credential helper name (the part after docker-credential-)",
    ),
    "log-level": ('log_level = "loud"\n', ":1: log_level 'loud' is not one of off, error, warning, info, debug"),
    "log-file": ('log_file = "x.log"\n', ":1: log_file 'x.log' must be an absolute path (or start with ~)"),
    "registry-not-array": ("registry = 3\n", ":1: registry must be an array of tables: write each one as [[registry]]"),
    "no-match": (
        '\n[[registry]]\nprofile = "a"\n',
        ":2: [[registry]] #1: match is required (a host, a 12-digit account or a glob)",
    ),
    "unknown-rule-key": (
        '[[registry]]\nmatch = "123456789012"\nprofle = "a"\n',
        ":3: unknown key 'profle' in [[registry]] #1 (did you mean 'profile'?)",
    ),
    "match-not-ecr": (
        '[[registry]]\nmatch = "ghcr.io"\n',
        ":2: [[registry]] #1: match 'ghcr.io' is not an ECR registry host, a 12-digit account or a glob over hosts",
    ),
    "match-url": (
        f'[[registry]]\nmatch = "https://{ECR_HOST}"\n',
        f":2: [[registry]] #1: match 'https://{ECR_HOST}' is a URL: give the host alone, an account or a glob",
    ),
    "bad-glob": (
        '[[registry]]\nmatch = "*.dkr.ecr.[us-*"\n',
        ":2: [[registry]] #1: match '*.dkr.ecr.[us-*' is not a glob over host names "
        "(letters, digits, '.', '-', '*', '?' and [...] classes)",
    ),
    "match-is-alias": (
        f'[[registry]]\nmatch = "{MIRROR}"\n[aliases]\n"{MIRROR}" = "{ECR_HOST}"\n',
        f":2: [[registry]] #1: match '{MIRROR}' is an alias; settings follow the registry it maps to: "
        f"match '{ECR_HOST}' instead",
    ),
    "duplicate-match": (
        '[[registry]]\nmatch = "123456789012"\n\n[[registry]]\nmatch = "123456789012"\n',
        ":5: [[registry]] #2: match '123456789012' repeats [[registry]] #1",
    ),
    "bad-role": (
        '[[registry]]\nmatch = "123456789012"\nrole_arn = "arn:aws:iam::1:user/x"\n',
        ":3: [[registry]] #1: role_arn 'arn:aws:iam::1:user/x' is not an IAM role ARN "
        "(arn:aws:iam::<account>:role/<name>)",
    ),
    "external-id-without-role": (
        '[[registry]]\nmatch = "123456789012"\nexternal_id = "abc"\n',
        ":3: [[registry]] #1: external_id needs role_arn (it is a setting of the role to assume)",
    ),
    "bad-session-name": (
        f'[[registry]]\nmatch = "123456789012"\nrole_arn = "{ROLE}"\nsession_name = "has space"\n',
        ":4: [[registry]] #1: session_name 'has space' must be 2-64 letters, digits or +=,.@_-",
    ),
    "bad-region": (
        '[[registry]]\nmatch = "123456789012"\nregion = "mars"\n',
        ":3: [[registry]] #1: region 'mars' is not an AWS region name",
    ),
    "empty-profile": ('[[registry]]\nmatch = "123456789012"\nprofile = " "\n', ":3: [[registry]] #1: profile is empty"),
    "alias-unquoted": (
        f'[aliases]\nmirror.example.com = "{ECR_HOST}"\n',
        ":2: alias 'mirror' reads as a table: quote the host, as in "
        '"mirror.example.com" = "123456789012.dkr.ecr.us-east-1.amazonaws.com"',
    ),
    "alias-target-not-ecr": (
        '[aliases]\n"m.example.com" = "ghcr.io"\n',
        ":2: alias 'm.example.com' must map to an ECR registry host such as "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com, not 'ghcr.io'",
    ),
    "alias-target-url": (
        f'[aliases]\n"m.example.com" = "https://{ECR_HOST}/v2"\n',
        ":2: alias 'm.example.com' must map to an ECR registry host such as "
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com, not 'https://{ECR_HOST}/v2'",
    ),
    "alias-is-ecr": (
        f'[aliases]\n"{WEST_HOST}" = "{ECR_HOST}"\n',
        f":2: alias '{WEST_HOST}' is itself an ECR registry host; an alias names another host",
    ),
    "alias-docker-hub": (
        f'[aliases]\n"index.docker.io" = "{ECR_HOST}"\n',
        ":2: alias 'index.docker.io' names Docker Hub: dockerd sends Docker Hub's credentials to Docker Hub "
        "itself when a registry mirror misses, so this would hand it an ECR token; "
        "pull through the cache's ECR host instead",
    ),
    "alias-docker-hub-with-port": (
        f'[aliases]\n"Registry-1.Docker.IO:443" = "{ECR_HOST}"\n',
        ":2: alias 'Registry-1.Docker.IO:443' names Docker Hub: dockerd sends Docker Hub's credentials to "
        "Docker Hub itself when a registry mirror misses, so this would hand it an ECR token; "
        "pull through the cache's ECR host instead",
    ),
    "alias-not-host": (
        f'[aliases]\n"not a host" = "{ECR_HOST}"\n',
        ":2: alias 'not a host' is not a host name (with an optional :port)",
    ),
    "alias-twice": (
        f'[aliases]\n"m.example.com" = "{ECR_HOST}"\n"M.example.com:443" = "{ECR_HOST}"\n',
        ":3: alias 'M.example.com:443' is given twice",
    ),
    "aliases-not-table": (
        'aliases = "x"\n',
        ":1: aliases must be a table, like [aliases] "
        '"mirror.example.com" = "123456789012.dkr.ecr.us-east-1.amazonaws.com"',
    ),
    "toml-syntax": (
        'fallback = "pass"\nlog_level = info\n',
        ":2: invalid TOML: Expected newline or end of document after a statement",
    ),
    "toml-duplicate-key": ('fallback = "a"\nfallback = "b"\n', ":2: invalid TOML: Cannot overwrite a value"),
    "toml-unterminated": ('fallback = "pass\n', ":1: invalid TOML: Illegal character '\\n'"),
}


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=k) for k, (t, e) in BAD.items()])
def test_errors_name_the_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        configs.parse(text, "/etc/ecr.toml")
    if "invalid TOML" in expected:  # the parser's own words vary between tomllib and tomli versions
        prefix = expected[: expected.index("TOML: ") + 6]
        assert str(info.value).startswith("/etc/ecr.toml" + prefix)
        assert "(at line" not in str(info.value)
    else:
        assert str(info.value) == "/etc/ecr.toml" + expected
    assert "\n" not in str(info.value)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'fallback = "pass"\n# caf\xe9\n')
    with pytest.raises(ConfigError, match=r"config\.toml:2: not UTF-8 text$"):
        configs.load_file(str(path))


def test_key_lines_skip_multiline_strings() -> None:
    text = 'a = """\nfallback = 1\n"""\n[[registry]]\nmatch = "x"\n[[registry]]\n"match" = "y"\n'
    lines = configfile.key_lines(text)
    assert lines[("a",)] == 1
    assert ("fallback",) not in lines
    assert lines[("registry", 0, "match")] == 5
    assert lines[("registry", 1, "match")] == 7


# -- loading, and the parsed copy that keeps tomllib off the hot path ---------------------------------
def test_no_file_is_the_empty_config(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    assert configs.load(settings) is configs.EMPTY
    assert not (tmp_path / "cache").exists()


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        configs.load(settings_for(tmp_path, missing))
    assert str(info.value) == f"{missing}: no such file (named by DOCKER_CREDENTIAL_ECR_CONFIG)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", EXAMPLE)
    path.chmod(0)
    with pytest.raises(ConfigError, match=r"config\.toml: cannot read: Permission denied"):
        configs.load(settings_for(tmp_path, path))


def test_parsed_copy_is_written_and_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "config.toml", EXAMPLE)
    settings = settings_for(tmp_path, path)
    first = configs.load(settings)
    copy = tmp_path / "cache" / "config.json"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    doc = json.loads(copy.read_text())
    assert doc["schema"] == configs.COPY_SCHEMA
    assert doc["config"] == first.to_json()

    def no_parsing(path: str) -> configs.Config:
        raise AssertionError("parsed the TOML although the copy is current")

    monkeypatch.setattr(configs, "load_file", no_parsing)
    second = configs.load(settings)
    assert second.to_json() == first.to_json()
    assert second.table_for(reg(OTHER_ACCOUNT_HOST)) is not None


def test_parsed_copy_follows_changes(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", 'fallback = "pass"\n')
    settings = settings_for(tmp_path, path)
    assert configs.load(settings).fallback == "pass"
    write_config(path, 'fallback = "desktop"\n', age=30)  # same size, other content, other mtime
    assert configs.load(settings).fallback == "desktop"
    write_config(path, 'fallback = "secretservice"\n', age=30)  # same mtime, other size
    assert configs.load(settings).fallback == "secretservice"


def test_a_file_changed_while_parsed_is_not_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "config.toml", 'fallback = "pass"\n')
    settings = settings_for(tmp_path, path)
    real_load_file = configs.load_file

    def load_then_edit(name: str) -> configs.Config:
        loaded = real_load_file(name)
        write_config(path, 'fallback = "desktop"\n', age=30)  # an editor saves meanwhile
        return loaded

    monkeypatch.setattr(configs, "load_file", load_then_edit)
    assert configs.load(settings).fallback == "pass"
    monkeypatch.setattr(configs, "load_file", real_load_file)
    assert not (tmp_path / "cache" / "config.json").exists()
    assert configs.load(settings).fallback == "desktop"


def test_a_recent_file_is_not_copied(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", EXAMPLE, age=0)
    assert configs.load(settings_for(tmp_path, path)).fallback == "desktop"
    assert not (tmp_path / "cache" / "config.json").exists()


def test_no_copy_without_a_cache(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", EXAMPLE)
    assert configs.load(settings_for(tmp_path, path, AWS_ECR_DISABLE_CACHE="1")).fallback == "desktop"
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("tamper", ["world-writable", "other-path", "junk", "wrong-version"])
def test_an_untrustworthy_copy_is_ignored(tmp_path: Path, tamper: str) -> None:
    path = write_config(tmp_path / "config.toml", EXAMPLE)
    settings = settings_for(tmp_path, path)
    configs.load(settings)
    copy = tmp_path / "cache" / "config.json"
    doc = json.loads(copy.read_text())
    doc["config"]["fallback"] = "evil"
    if tamper == "other-path":
        doc["config"]["path"] = "/elsewhere.toml"
    elif tamper == "wrong-version":
        doc["version"] = 999
    copy.write_text("{not json" if tamper == "junk" else json.dumps(doc))
    if tamper == "world-writable":
        copy.chmod(0o666)
    assert configs.load(settings).fallback == "desktop"


def test_a_bad_file_is_never_copied(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", "fallback = 3\n")
    settings = settings_for(tmp_path, path)
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"config\.toml:1: fallback must be a string"):
            configs.load(settings)
    assert not (tmp_path / "cache" / "config.json").exists()


# -- the helper honours it (in process: the fake world of tests/world.py) ---------------------------------
def identity(helper: Helper, host: str) -> str:
    """The identity key that ``helper`` stores ``host``'s token under."""
    resolution = helper.resolve(host)
    assert resolution is not None
    return helper.identity_key(resolution)


def test_two_profiles_never_share_a_token(tmp_path: Path) -> None:
    text = '[[registry]]\nmatch = "123456789012"\nprofile = "a"\n[[registry]]\nmatch = "210987654321"\nprofile = "b"\n'
    world = World(tmp_path, text)
    helper = world.helper()
    # Same region, so without the config the two hosts would share one token.
    assert identity(helper, ECR_HOST) != identity(helper, OTHER_ACCOUNT_HOST)
    assert helper.get(ECR_HOST).secret == "pw1"
    assert helper.get(OTHER_ACCOUNT_HOST).secret == "pw2"
    assert world.hosts == [ECR_HOST, OTHER_ACCOUNT_HOST]
    plain = World(tmp_path / "plain")
    assert identity(plain.helper(), ECR_HOST) == identity(plain.helper(), OTHER_ACCOUNT_HOST)


@pytest.mark.parametrize(
    "setting",
    ['profile = "a"', f'role_arn = "{ROLE}"', f'role_arn = "{ROLE}"\nexternal_id = "x1"'],
)
def test_each_setting_changes_the_identity_key(tmp_path: Path, setting: str) -> None:
    plain = identity(World(tmp_path / "plain").helper(), ECR_HOST)
    configured = World(tmp_path, f'[[registry]]\nmatch = "123456789012"\n{setting}\n').helper()
    assert identity(configured, ECR_HOST) != plain
    # A table that sets nothing keeps the default chain, and so the default identity key.
    empty = World(tmp_path / "empty", '[[registry]]\nmatch = "123456789012"\n').helper()
    assert identity(empty, ECR_HOST) == plain


def test_alias_is_served_with_its_registrys_token_and_listed(tmp_path: Path) -> None:
    world = World(tmp_path, f'[aliases]\n"{MIRROR}" = "{ECR_HOST}"\n')
    answer = world.helper().get(f"https://{MIRROR}/v2/")
    assert (answer.server_url, answer.secret) == (f"https://{MIRROR}/v2/", "pw1")
    assert world.helper().get(ECR_HOST).secret == "pw1"  # one token for both
    assert world.hosts == [ECR_HOST]
    assert world.helper().list() == {f"https://{MIRROR}": "AWS", f"https://{ECR_HOST}": "AWS"}
    # Alias gone from the config: no longer listed (get would not answer it).
    world.write_config("# nothing\n", age=30)
    assert world.helper().list() == {f"https://{ECR_HOST}": "AWS"}
    with pytest.raises(CredentialsNotFoundError):
        world.helper().get(MIRROR)


def test_list_follows_the_current_config(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.helper().get(ECR_HOST)
    world.write_config('[[registry]]\nmatch = "123456789012"\nprofile = "a"\n')
    assert world.helper().list() == {}  # another principal now: its token is not this one


def test_bad_config_get_is_not_found_with_one_line(tmp_path: Path) -> None:
    world = World(tmp_path, 'fallback = "pass"\n[aliases]\n"x.example.com" = "ghcr.io"\n')
    with pytest.raises(CredentialsNotFoundError):
        world.helper().get(ECR_HOST)
    expected = (
        f"{world.config}:3: alias 'x.example.com' must map to an ECR registry host such as "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com, not 'ghcr.io'"
    )
    assert world.warnings == [expected]
    assert world.calls == []
    assert world.helper().list() == {}
    with pytest.raises(BadRequestError) as info:
        world.helper(AWS_ECR_IGNORE_CREDS_STORAGE="true").erase(ECR_HOST)
    assert info.value.message == expected


# -- end to end: the console script against the fake -------------------------------------------------------
def use_config(env: dict[str, str], home: Path, text: str) -> Path:
    path = write_config(home / ".config" / APP_NAME / "config.toml", text)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    return path


def write_credentials(home: Path, **profiles: str) -> None:
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "credentials").write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = secret-of-{name}-0000000000000000\n"
            for name, key in profiles.items()
        )
    )


def test_per_registry_profiles_end_to_end(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    write_credentials(home, a="AKIAPROFILEA00000001", b="AKIAPROFILEB00000002")
    use_config(
        env,
        home,
        '[[registry]]\nmatch = "123456789012"\nprofile = "a"\n[[registry]]\nmatch = "210987654321"\nprofile = "b"\n',
    )
    first, second = get_ok(env, ECR_HOST), get_ok(env, OTHER_ACCOUNT_HOST)
    assert first["Secret"] != second["Secret"]
    assert [r.access_key_id for r in fake.requests] == ["AKIAPROFILEA00000001", "AKIAPROFILEB00000002"]
    assert get_ok(env, ECR_HOST)["Secret"] == first["Secret"]  # a hit
    assert fake.calls("ecr") == 2


def test_role_end_to_end_assumes_once_and_caches_the_role(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    use_config(
        env,
        home,
        f'[[registry]]\nmatch = "*.amazonaws.com"\nrole_arn = "{ROLE}"\nexternal_id = "ext-1"\n'
        'session_name = "ci-builder"\nregion = "eu-west-1"\n',
    )
    east, west = get_ok(env, ECR_HOST), get_ok(env, WEST_HOST)
    assert east["Secret"] != west["Secret"]
    sts = [r for r in fake.requests if r.op == "sts:AssumeRole"]
    assert len(sts) == 1, "the role's credentials are cached for the second region"
    assert sts[0].params["RoleArn"] == ROLE
    assert sts[0].params["ExternalId"] == "ext-1"
    assert sts[0].params["RoleSessionName"] == "ci-builder"
    assert (sts[0].region, sts[0].access_key_id) == ("eu-west-1", env["AWS_ACCESS_KEY_ID"])
    ecr = [r for r in fake.requests if r.op == "ecr"]
    assert [(r.region, r.access_key_id, r.session_token) for r in ecr] == [
        ("us-east-1", access_key_for_role(ROLE), True),
        ("us-west-2", access_key_for_role(ROLE), True),
    ]
    roles = Path(env["AWS_ECR_CACHE_DIR"]) / "credentials.json"
    assert stat.S_IMODE(roles.stat().st_mode) == 0o600
    entries = Store(str(roles.parent)).all_credentials()
    assert [e.access_key_id for e in entries.values()] == [access_key_for_role(ROLE)]


def test_role_is_assumed_again_after_half_its_life(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    fake.configure(credential_lifetime=900)
    use_config(env, home, f'[[registry]]\nmatch = "123456789012"\nrole_arn = "{ROLE}"\n')
    get_ok(env, ECR_HOST)
    store = Store(env["AWS_ECR_CACHE_DIR"])
    ((key, creds),) = store.all_credentials().items()
    creds.issued_at -= 1000  # half of its life (issued to expiry) is now behind it
    store.put_credentials(key, creds, now=time.time())
    get_ok(env, "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert fake.calls("sts:AssumeRole") == 2
    # STS in the registry's own region when the table names none.
    assert [r.region for r in fake.requests if r.op == "sts:AssumeRole"] == ["us-east-1", "eu-west-1"]


def test_alias_end_to_end(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    use_config(env, home, f'[aliases]\n"{MIRROR}" = "{WEST_HOST}"\n')
    answer = get_ok(env, MIRROR)
    assert answer["ServerURL"] == MIRROR
    assert answer["Secret"] == fake.issued[-1]
    assert fake.requests[-1].region == "us-west-2"
    listed = run_helper(["list"], env, None)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert json.loads(listed.stdout) == {f"https://{MIRROR}": "AWS"}


def test_docker_hub_alias_end_to_end_never_answers_for_docker_hub(
    env: dict[str, str], home: Path, fake: FakeAWS
) -> None:
    """The key docker asks for Docker Hub (and so for a registry mirror) gets no ECR token."""
    path = use_config(env, home, f'[aliases]\n"index.docker.io" = "{ECR_HOST}"\n')
    proc = run_helper(["get"], env, "https://index.docker.io/v1/")
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr.startswith(f"docker-credential-ecr-login: {path}:2: alias 'index.docker.io' names Docker Hub")
    assert proc.stderr.count("\n") == 1
    assert fake.calls("*") == 0


def test_bad_config_end_to_end(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    path = use_config(env, home, '[[registry]]\nmatch = "123456789012"\nprofile = ["a"]\n')
    proc = run_helper(["get"], env, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert (
        proc.stderr
        == f"docker-credential-ecr-login: {path}:3: [[registry]] #1: profile must be a string, not an array\n"
    )
    assert fake.calls("*") == 0
    listed = run_helper(["list"], env, None)
    assert (listed.returncode, listed.stdout) == (0, "{}\n")
    stored = run_helper(
        ["store"], {**env, "AWS_ECR_IGNORE_CREDS_STORAGE": "true"}, '{"ServerURL":"x","Username":"u","Secret":"s"}'
    )
    assert stored.returncode == 1
    assert stored.stdout == f"{path}:3: [[registry]] #1: profile must be a string, not an array\n"


def test_a_hit_with_a_config_stays_on_the_stdlib_floor(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    """With the parsed copy current, a hit reads no TOML: no tomllib, json, re, logging or subprocess."""
    use_config(
        env,
        home,
        f'fallback = "pass"\n[[registry]]\nmatch = "*.dkr.ecr.*.amazonaws.com"\n[aliases]\n"{MIRROR}" = "{ECR_HOST}"\n',
    )
    get_ok(env, MIRROR)  # miss: parses the file, writes the copy
    get_ok(env, ECR_HOST)  # a hit, but a new host for `list`: written down under the cache lock
    heavy = ("tomllib", "tomli", "json", "re", "fnmatch", "logging", "subprocess", "filelock", "platformdirs", "typing")
    code = (
        "import sys; from docker_credential_ecr.cli import main; sys.argv = ['x', 'get']; status = main(); "
        f"sys.stderr.write(repr((status, sorted(m for m in {heavy!r} if m in sys.modules))))"
    )
    for url in (MIRROR, ECR_HOST):
        proc = subprocess.run(
            [sys.executable, "-c", code], input=url.encode(), env=env, capture_output=True, check=False, timeout=60
        )
        assert proc.stderr.decode() == "(0, [])"
    assert fake.calls("ecr") == 1
