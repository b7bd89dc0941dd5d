"""Tests for docker_credential_ecr.registry: which server URLs name an ECR registry, and which do not."""

from __future__ import annotations

import fnmatch
import re
import sys
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from docker_credential_ecr.registry import Registry, glob_match, host_for, mentions_ecr, parse, split_server_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    # (service, account, region, fips, dualstack, host, partition)
    from typing import Optional

    Fields = tuple[str, Optional[str], str, bool, bool, str, str]

ACCOUNT = "123456789012"
H = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PUB = "public.ecr.aws"
PUB6 = "ecr-public.aws.com"


def ecr(
    region: str,
    domain: str,
    partition: str,
    *,
    fips: bool = False,
    dualstack: bool = False,
    account: str = ACCOUNT,
    sep: str | None = None,
) -> Fields:
    """The fields expected for an ECR host, whose name is spelled out here independently of the code.

    ``sep`` is the character between "dkr" and "ecr": AWS writes "-" in dual-stack hosts and "."
    otherwise (the default), but either goes with either domain, as in the Go helper.
    """
    if sep is None:
        sep = "-" if dualstack else "."
    label = f"dkr{sep}ecr" + ("-fips" if fips else "")
    return ("ecr", account, region, fips, dualstack, f"{account}.{label}.{region}.{domain}", partition)


def fields(r: Registry) -> Fields:
    return (r.service, r.account, r.region, r.fips, r.dualstack, r.host, r.partition)


E1 = ecr("us-east-1", "amazonaws.com", "aws")
PUBLIC = ("ecr-public", None, "us-east-1", False, False, PUB, "aws")
PUBLIC6 = ("ecr-public", None, "us-east-1", False, True, PUB6, "aws")

ACCEPTED = [
    # --- every partition, in its own domain
    pytest.param(H, E1, id="aws-us-east-1"),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com", ecr("us-west-2", "amazonaws.com", "aws"), id="aws-us-west-2"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.ap-southeast-5.amazonaws.com",
        ecr("ap-southeast-5", "amazonaws.com", "aws"),
        id="aws-ap-se-5",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.mx-central-1.amazonaws.com", ecr("mx-central-1", "amazonaws.com", "aws"), id="aws-mx"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.il-central-1.amazonaws.com", ecr("il-central-1", "amazonaws.com", "aws"), id="aws-il"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.eu-central-2.amazonaws.com", ecr("eu-central-2", "amazonaws.com", "aws"), id="aws-eu"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.me-central-1.amazonaws.com", ecr("me-central-1", "amazonaws.com", "aws"), id="aws-me"
    ),
    pytest.param(f"{ACCOUNT}.dkr.ecr.af-south-1.amazonaws.com", ecr("af-south-1", "amazonaws.com", "aws"), id="aws-af"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.sa-east-1.amazonaws.com", ecr("sa-east-1", "amazonaws.com", "aws"), id="aws-sa"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.ca-west-1.amazonaws.com", ecr("ca-west-1", "amazonaws.com", "aws"), id="aws-ca"),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.ap-northeast-3.amazonaws.com",
        ecr("ap-northeast-3", "amazonaws.com", "aws"),
        id="aws-ap-ne-3",
    ),
    pytest.param(
        "000000000000.dkr.ecr.us-east-1.amazonaws.com",
        ecr("us-east-1", "amazonaws.com", "aws", account="000000000000"),
        id="account-all-zeros",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com",
        ecr("us-gov-west-1", "amazonaws.com", "aws-us-gov"),
        id="govcloud-w",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-gov-east-1.amazonaws.com",
        ecr("us-gov-east-1", "amazonaws.com", "aws-us-gov"),
        id="govcloud-e",
    ),
    pytest.param(
        "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/foo",
        ecr("cn-north-1", "amazonaws.com.cn", "aws-cn", account="210987654321"),
        id="china-north-with-repo",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
        ecr("cn-northwest-1", "amazonaws.com.cn", "aws-cn"),
        id="china-nw",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov", ecr("us-iso-east-1", "c2s.ic.gov", "aws-iso"), id="iso-east"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-iso-west-1.c2s.ic.gov", ecr("us-iso-west-1", "c2s.ic.gov", "aws-iso"), id="iso-west"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
        ecr("us-isob-east-1", "sc2s.sgov.gov", "aws-iso-b"),
        id="iso-b",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
        ecr("eu-isoe-west-1", "cloud.adc-e.uk", "aws-iso-e"),
        id="iso-e",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
        ecr("us-isof-south-1", "csp.hci.ic.gov", "aws-iso-f"),
        id="iso-f",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-isof-east-1.csp.hci.ic.gov",
        ecr("us-isof-east-1", "csp.hci.ic.gov", "aws-iso-f"),
        id="iso-f-e",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr("eusc-de-east-1", "amazonaws.eu", "aws-eusc"), id="eusc"
    ),
    # --- FIPS
    pytest.param(
        f"{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com",
        ecr("us-east-1", "amazonaws.com", "aws", fips=True),
        id="fips",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr-fips.us-west-2.amazonaws.com",
        ecr("us-west-2", "amazonaws.com", "aws", fips=True),
        id="fips-w2",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        ecr("us-gov-west-1", "amazonaws.com", "aws-us-gov", fips=True),
        id="fips-govcloud",
    ),
    pytest.param(
        f"https://{ACCOUNT}.DKR.ECR-FIPS.US-EAST-2.AMAZONAWS.COM/v2/",
        ecr("us-east-2", "amazonaws.com", "aws", fips=True),
        id="fips-upper-url",
    ),
    # --- dual-stack
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws", ecr("us-east-1", "on.aws", "aws", dualstack=True), id="dualstack"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.eu-west-1.on.aws/repo",
        ecr("eu-west-1", "on.aws", "aws", dualstack=True),
        id="dualstack-repo",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.us-gov-east-1.on.aws",
        ecr("us-gov-east-1", "on.aws", "aws-us-gov", dualstack=True),
        id="dualstack-govcloud",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr-fips.us-east-1.on.aws",
        ecr("us-east-1", "on.aws", "aws", fips=True, dualstack=True),
        id="dualstack-fips",
    ),
    pytest.param(
        f"https://{ACCOUNT}.dkr-ecr-fips.us-gov-west-1.on.aws:443/v2/",
        ecr("us-gov-west-1", "on.aws", "aws-us-gov", fips=True, dualstack=True),
        id="dualstack-fips-govcloud-url",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
        ecr("cn-north-1", "on.amazonwebservices.com.cn", "aws-cn", dualstack=True),
        id="dualstack-china",
    ),
    pytest.param(
        f"https://{ACCOUNT}.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn/v2/",
        ecr("cn-northwest-1", "on.amazonwebservices.com.cn", "aws-cn", dualstack=True),
        id="dualstack-china-url",
    ),
    # --- "dkr.ecr" and "dkr-ecr" under either domain of the partition (as the Go helper): the domain
    # decides dual-stack
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.us-east-1.amazonaws.com",
        ecr("us-east-1", "amazonaws.com", "aws", sep="-"),
        id="dash-label-ipv4-domain",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-east-1.on.aws",
        ecr("us-east-1", "on.aws", "aws", dualstack=True, sep="."),
        id="dot-label-dualstack-domain",
    ),
    pytest.param(
        "210987654321.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn",
        ecr("cn-north-1", "on.amazonwebservices.com.cn", "aws-cn", dualstack=True, account="210987654321", sep="."),
        id="dot-label-china-dualstack",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.cn-northwest-1.amazonaws.com.cn",
        ecr("cn-northwest-1", "amazonaws.com.cn", "aws-cn", sep="-"),
        id="dash-label-china-ipv4",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr-fips.us-gov-west-1.on.aws",
        ecr("us-gov-west-1", "on.aws", "aws-us-gov", fips=True, dualstack=True, sep="."),
        id="dot-label-fips-govcloud-dualstack",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr-fips.us-east-2.amazonaws.com",
        ecr("us-east-2", "amazonaws.com", "aws", fips=True, sep="-"),
        id="dash-label-fips-ipv4",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.us-iso-east-1.c2s.ic.gov",
        ecr("us-iso-east-1", "c2s.ic.gov", "aws-iso", sep="-"),
        id="dash-label-iso",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.eusc-de-east-1.amazonaws.eu",
        ecr("eusc-de-east-1", "amazonaws.eu", "aws-eusc", sep="-"),
        id="dash-label-eusc",
    ),
    # --- every spelling of a host
    pytest.param(f"{H}:443", E1, id="host-port"),
    pytest.param(f"{H}:5000", E1, id="host-port-5000"),
    pytest.param(f"{H}:1", E1, id="host-port-1"),
    pytest.param(f"{H}:65535", E1, id="host-port-max"),
    pytest.param(f"https://{H}", E1, id="https"),
    pytest.param(f"https://{H}:443", E1, id="https-port"),
    pytest.param(f"https://{H}/", E1, id="https-slash"),
    pytest.param(f"https://{H}/v2/", E1, id="https-v2"),
    pytest.param(f"https://{H}/v2/blah/blah", E1, id="https-v2-path"),
    pytest.param(f"https://{H}:8443/any/path", E1, id="https-port-path"),
    pytest.param(f"https://{H}/v2/repo/manifests/latest", E1, id="https-manifest-path"),
    pytest.param(f"{H}/repo/name", E1, id="host-repo"),
    pytest.param(f"{H}/", E1, id="host-slash"),
    pytest.param(f"{H}:443/repo", E1, id="host-port-repo"),
    pytest.param(f"{H}/repo:tag", E1, id="host-repo-tag"),
    pytest.param(f"{H}/repo@sha256:0123abcd", E1, id="host-repo-digest"),
    pytest.param(f"{H}/a%2Fb", E1, id="percent-encoded-path"),
    pytest.param(f"https://{H}//", E1, id="double-slash-path"),
    pytest.param(H.upper(), E1, id="upper-case"),
    pytest.param(f"HTTPS://{H.upper()}/V2/", E1, id="upper-case-url"),
    pytest.param(f"Https://{ACCOUNT}.Dkr.Ecr.Us-East-1.AmazonAWS.Com", E1, id="mixed-case"),
    pytest.param(f"  {H}  ", E1, id="surrounding-spaces"),
    pytest.param(f"\t{H}\n", E1, id="surrounding-tab-newline"),
    pytest.param(f"https://{H}/v2/\r\n", E1, id="trailing-crlf"),
    # --- ECR Public and its dual-stack name
    pytest.param(PUB, PUBLIC, id="public"),
    pytest.param(f"{PUB}/library/alpine", PUBLIC, id="public-repo"),
    pytest.param(f"https://{PUB}", PUBLIC, id="public-https"),
    pytest.param(f"https://{PUB}/", PUBLIC, id="public-https-slash"),
    pytest.param(f"https://{PUB}/v2/", PUBLIC, id="public-https-v2"),
    pytest.param(f"{PUB}:443", PUBLIC, id="public-port"),
    pytest.param(f"https://{PUB}:443/v2/library/alpine/manifests/3", PUBLIC, id="public-port-path"),
    pytest.param("PUBLIC.ECR.AWS", PUBLIC, id="public-upper"),
    pytest.param(f" {PUB}\n", PUBLIC, id="public-whitespace"),
    pytest.param(PUB6, PUBLIC6, id="public-dualstack"),
    pytest.param(f"https://{PUB6}/v2/", PUBLIC6, id="public-dualstack-url"),
    pytest.param(f"{PUB6}/library/alpine", PUBLIC6, id="public-dualstack-repo"),
    pytest.param("ECR-Public.AWS.com:443", PUBLIC6, id="public-dualstack-upper-port"),
]

H_CN = f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn"

REJECTED = [
    # --- not ECR at all
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("\n", id="newline"),
    pytest.param("/", id="slash"),
    pytest.param("https://", id="scheme-only"),
    pytest.param("https://index.docker.io/v1/", id="docker-hub"),
    pytest.param("docker.io", id="docker-io"),
    pytest.param("localhost:5000", id="localhost"),
    pytest.param("ghcr.io/owner/repo", id="ghcr"),
    pytest.param("not.ecr.io", id="not-ecr"),
    pytest.param("127.0.0.1:5000", id="ipv4"),
    pytest.param("[::1]:5000", id="ipv6"),
    # --- schemes: only https://
    pytest.param(f"http://{H}", id="http"),
    pytest.param(f"HTTP://{H}/v2/", id="http-upper"),
    pytest.param(f"http://{PUB}", id="http-public"),
    pytest.param(f"ftp://{H}", id="ftp"),
    pytest.param(f"oci://{H}/repo", id="oci"),
    pytest.param(f"docker://{H}/repo", id="docker-scheme"),
    pytest.param(f"https:/{H}", id="scheme-one-slash"),
    pytest.param(f"https:{H}", id="scheme-no-slash"),
    pytest.param(f"//{H}", id="scheme-relative"),
    pytest.param(f"://{H}", id="empty-scheme"),
    pytest.param(f"https://https://{H}", id="double-scheme"),
    # --- user-info
    pytest.param(f"user@{H}", id="userinfo"),
    pytest.param(f"https://user:pw@{H}", id="userinfo-password"),
    pytest.param(f"https://AWS@{H}/v2/", id="userinfo-path"),
    pytest.param(f"AWS@{PUB}", id="userinfo-public"),
    pytest.param(f"https://evil.com@{H}", id="userinfo-evil-host"),
    pytest.param(f"https://{H}@evil.com", id="host-as-userinfo"),
    pytest.param(f"https://{H}:443@evil.com", id="host-port-as-userinfo"),
    # --- query, fragment
    pytest.param(f"https://{H}?x=1", id="query"),
    pytest.param(f"https://{H}/?q", id="query-after-slash"),
    pytest.param(f"https://{H}#frag", id="fragment"),
    pytest.param(f"https://{H}/v2/#x", id="fragment-after-path"),
    # --- ports
    pytest.param(f"{H}:", id="empty-port"),
    pytest.param(f"https://{H}:/v2/", id="empty-port-path"),
    pytest.param(f"{H}:abc", id="alpha-port"),
    pytest.param(f"{H}:0", id="port-zero"),
    pytest.param(f"{H}:65536", id="port-too-big"),
    pytest.param(f"{H}:99999", id="port-99999"),
    pytest.param(f"{H}:123456", id="port-six-digits"),
    pytest.param(f"{H}:-1", id="port-negative"),
    pytest.param(f"{H}:+443", id="port-plus"),
    pytest.param(f"{H}:443:443", id="two-ports"),
    pytest.param(f"{H}:\uff14\uff14\uff13", id="port-fullwidth-digits"),
    # --- non-ASCII look-alikes
    pytest.param(
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662.dkr.ecr.us-east-1.amazonaws.com",
        id="account-arabic-indic-digits",
    ),
    pytest.param(
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10\uff11\uff12.dkr.ecr.us-east-1.amazonaws.com",
        id="account-fullwidth-digits",
    ),
    pytest.param(f"{ACCOUNT[:-1]}\u0662.dkr.ecr.us-east-1.amazonaws.com", id="account-one-arabic-digit"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-\u0661.amazonaws.com", id="region-arabic-digit"),
    pytest.param(f"{ACCOUNT}.d\u212ar.ecr.us-east-1.amazonaws.com", id="kelvin-sign-k"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.u\u017f-east-1.amazonaws.com", id="long-s"),
    pytest.param("publ\u0131c.ecr.aws", id="dotless-i"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amaz\u043enaws.com", id="cyrillic-o"),
    pytest.param(f"{H}/r\u00e9po", id="non-ascii-path"),
    pytest.param(f"{H}\ud800", id="surrogate"),
    # --- account length and shape
    pytest.param(f"{ACCOUNT[:-1]}.dkr.ecr.us-east-1.amazonaws.com", id="account-11-digits"),
    pytest.param(f"{ACCOUNT}3.dkr.ecr.us-east-1.amazonaws.com", id="account-13-digits"),
    pytest.param(".dkr.ecr.not-real.amazonaws.com", id="account-empty"),
    pytest.param("12345678901a.dkr.ecr.us-east-1.amazonaws.com", id="account-letter"),
    pytest.param("my-registry.dkr.ecr.us-east-1.amazonaws.com", id="account-name"),
    # --- suffix tricks
    pytest.param(f"{H}.evil.com", id="suffix-dot-evil"),
    pytest.param(f"{H}-evil.com", id="suffix-dash-evil"),
    pytest.param(f"{H}.evil.com/v2/", id="suffix-dot-evil-path"),
    pytest.param(f"{H}x", id="suffix-letter"),
    pytest.param(f"{H}.", id="trailing-dot"),
    pytest.param(f"https://{H}./v2/", id="trailing-dot-url"),
    pytest.param(f"{H}..", id="trailing-dots"),
    pytest.param(f"{PUB}.", id="public-trailing-dot"),
    pytest.param(f"{PUB}.evil.com", id="public-suffix-dot"),
    pytest.param(f"{PUB}-evil.com", id="public-suffix-dash"),
    pytest.param(f"{PUB6}.evil.com", id="public-dualstack-suffix"),
    # --- prefix tricks
    pytest.param(f"evil.{H}", id="prefix-evil"),
    pytest.param(f"x{H}", id="prefix-letter"),
    pytest.param(f"1{H}", id="prefix-digit"),
    pytest.param(f".{H}", id="prefix-dot"),
    pytest.param(f"evil.{PUB}", id="public-prefix-dot"),
    pytest.param(f"x{PUB}", id="public-prefix-letter"),
    pytest.param(f"evil-{PUB}", id="public-prefix-dash"),
    # --- look-alike domains
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.evil", id="domain-extra-label"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.co", id="domain-co"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.cn", id="domain-cn-without-com"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws-com", id="domain-dash"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazon.com", id="domain-amazon-com"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn.evil.com", id="domain-cn-suffix"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.on.aws.evil", id="domain-on-aws-suffix"),
    pytest.param(f"{ACCOUNT}.ecr.us-east-1.amazonaws.com", id="no-dkr"),
    pytest.param(f"{ACCOUNT}.dkr.us-east-1.amazonaws.com", id="no-ecr"),
    pytest.param(f"{ACCOUNT}.dkrecr.us-east-1.amazonaws.com", id="dkrecr"),
    pytest.param(f"{ACCOUNT}.dkr_ecr.us-east-1.amazonaws.com", id="dkr-underscore-ecr"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.fips.us-east-1.amazonaws.com", id="fips-as-label"),
    pytest.param(f"{ACCOUNT}.dkr.ecr-fipsx.us-east-1.amazonaws.com", id="fips-suffixed"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.amazonaws.com", id="no-region"),
    pytest.param(f"{ACCOUNT}.api.ecr.us-east-1.amazonaws.com", id="api-endpoint"),
    pytest.param("ecr.us-east-1.amazonaws.com", id="api-host"),
    pytest.param("public.ecr.aws.com", id="public-dot-com"),
    pytest.param("public-ecr.aws", id="public-dash"),
    pytest.param("ecr-public.aws", id="public-dualstack-no-com"),
    pytest.param("public.ecr.aws.cn", id="public-cn"),
    pytest.param("gallery.ecr.aws", id="gallery"),
    # --- the separator is "." or "-", nothing else
    pytest.param(f"{ACCOUNT}.dkr_ecr.us-east-1.on.aws", id="underscore-label-dualstack"),
    pytest.param(f"{ACCOUNT}.dkr--ecr.us-east-1.on.aws", id="double-dash-label"),
    pytest.param(f"{ACCOUNT}.dkr.-ecr.us-east-1.amazonaws.com", id="dot-dash-label"),
    pytest.param(f"{ACCOUNT}.dkr-ecr.fips.us-east-1.on.aws", id="dash-label-fips-as-label"),
    pytest.param(f"{ACCOUNT}.dkr-ecr-fips.cn-north-1.on.aws.com.cn", id="china-on-aws-com-cn"),
    # --- no dual-stack domain where the partition has none
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-iso-east-1.on.aws", id="iso-region-on-aws-dot-label"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.on.aws", id="eusc-region-on-aws-dot-label"),
    # --- region and domain must agree
    pytest.param(f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com", id="china-region-global-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.cn", id="global-region-china-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com.cn", id="govcloud-china-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-iso-east-1.amazonaws.com", id="iso-region-global-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-isob-east-1.c2s.ic.gov", id="iso-b-region-iso-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-iso-east-1.sc2s.sgov.gov", id="iso-region-iso-b-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.csp.hci.ic.gov", id="iso-e-region-iso-f-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-isof-south-1.amazonaws.com", id="iso-f-region-global-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.com", id="eusc-region-global-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.eu", id="global-region-eusc-domain"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.c2s.ic.gov", id="global-region-iso-domain"),
    pytest.param(f"{ACCOUNT}.dkr-ecr.cn-north-1.on.aws", id="china-region-on-aws"),
    pytest.param(f"{ACCOUNT}.dkr-ecr.us-east-1.on.amazonwebservices.com.cn", id="global-region-china-dualstack"),
    pytest.param(f"{ACCOUNT}.dkr-ecr.us-iso-east-1.on.aws", id="iso-region-on-aws"),
    pytest.param(f"{ACCOUNT}.dkr-ecr.eusc-de-east-1.on.aws", id="eusc-region-on-aws"),
    # --- region shape
    pytest.param(f"{ACCOUNT}.dkr.ecr.useast1.amazonaws.com", id="region-no-dashes"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east.amazonaws.com", id="region-no-number"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-123.amazonaws.com", id="region-number-too-long"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us_east_1.amazonaws.com", id="region-underscores"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us--east-1.amazonaws.com", id="region-double-dash"),
    pytest.param(f"{ACCOUNT}.dkr.ecr..amazonaws.com", id="region-empty"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.evil.amazonaws.com", id="region-extra-label"),
    # --- whitespace, control characters, backslashes
    pytest.param(f"{ACCOUNT[:5]} {ACCOUNT[5:]}.dkr.ecr.us-east-1.amazonaws.com", id="space-in-account"),
    pytest.param(f"{H} /v2/", id="space-before-path"),
    pytest.param(f"https://{H}/v2 /x", id="space-in-path"),
    pytest.param(f"{H}/v2/\trepo", id="tab-in-path"),
    pytest.param(f"{H}\n/v2/", id="newline-inside"),
    pytest.param(f"{H}\x00", id="nul"),
    pytest.param(f"{H}/v2/\x00", id="nul-in-path"),
    pytest.param(f"{H}/\x7f", id="del-in-path"),
    pytest.param(f"\u00a0{H}", id="nbsp-prefix"),
    pytest.param(f"{H}\\", id="backslash"),
    pytest.param(f"{H}\\v2", id="backslash-path"),
    pytest.param(f"https://{H}\\@evil.com", id="backslash-userinfo"),
    pytest.param(f"https://evil.com\\@{H}", id="backslash-evil-host"),
    pytest.param(f"https:\\\\{H}", id="backslash-scheme"),
    pytest.param(f"{H}/v2\\..\\x", id="backslash-in-path"),
]


@pytest.mark.parametrize(("server_url", "expected"), ACCEPTED)
def test_accepted(server_url: str, expected: Fields) -> None:
    r = parse(server_url)
    assert r is not None
    assert fields(r) == expected


# The Go helper's own table (awslabs/amazon-ecr-credential-helper, ecr-login/api/client_test.go,
# TestExtractRegistry, at 2a415207): server URL -> (service, account, region, FIPS) as the Go helper
# answers, None where it refuses; plus the dual-stack flag, which the Go helper does not have (the
# domain decides it here: on.aws and on.amazonwebservices.com.cn are the dual-stack ones).
GO_HELPER_TABLE: list[tuple[str, tuple[str, str | None, str, bool] | None, bool]] = [
    ("https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/blah/blah", ("ecr", ACCOUNT, "us-east-1", False), False),
    ("123456789012.dkr.ecr.us-west-2.amazonaws.com", ("ecr", ACCOUNT, "us-west-2", False), False),
    ("123456789012.dkr-ecr.us-west-2.on.aws", ("ecr", ACCOUNT, "us-west-2", False), True),
    ("123456789012.dkr-ecr-fips.us-west-2.on.aws", ("ecr", ACCOUNT, "us-west-2", True), True),
    ("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/foo", ("ecr", "210987654321", "cn-north-1", False), False),
    ("210987654321.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn", ("ecr", "210987654321", "cn-north-1", False), True),
    ("210987654321.dkr.ecr.us-iso-east-1.c2s.ic.gov", ("ecr", "210987654321", "us-iso-east-1", False), False),
    ("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", ("ecr", ACCOUNT, "us-isob-east-1", False), False),
    ("123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", ("ecr", ACCOUNT, "eu-isoe-west-1", False), False),
    ("123456789012.dkr.ecr.us-isof-east-1.csp.hci.ic.gov", ("ecr", ACCOUNT, "us-isof-east-1", False), False),
    ("123456789012.dkr-ecr.us-gov-east-1.on.aws", ("ecr", ACCOUNT, "us-gov-east-1", False), True),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ("ecr", ACCOUNT, "us-gov-west-1", True), False),
    ("123456789012.dkr-ecr-fips.us-gov-east-1.on.aws", ("ecr", ACCOUNT, "us-gov-east-1", True), True),
    ("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", ("ecr", ACCOUNT, "eusc-de-east-1", False), False),
    ("https://public.ecr.aws", ("ecr-public", None, "us-east-1", False), False),
    ("https://ecr-public.aws.com", ("ecr-public", None, "us-east-1", False), True),
    ("public.ecr.aws", ("ecr-public", None, "us-east-1", False), False),
    ("ecr-public.aws.com", ("ecr-public", None, "us-east-1", False), True),
    ("https://public.ecr.aws/amazonlinux", ("ecr-public", None, "us-east-1", False), False),
    ("https://ecr-public.aws.com/amazonlinux", ("ecr-public", None, "us-east-1", False), True),
    (".dkr.ecr.not-real.amazonaws.com", None, False),
    ("not.ecr.io", None, False),
    ("https://123456789012.dkr.ecr.us-west-2.amazonaws.com.fake.example.com/image:latest", None, False),
    ("123456789012.dkr.ecr.us-west-2.amazonaws.com.fake.example.com", None, False),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com.fake.example.com", None, False),
    ("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn.fake.example.com.cn", None, False),
    ("210987654321.dkr.ecr.cn-north-1.on.aws.com.cn", None, False),
    ("https://public.ecr.aws.fake.example.com", None, False),
    ("public.ecr.aws.fake.example.com", None, False),
]


@pytest.mark.parametrize(("server_url", "go", "dualstack"), GO_HELPER_TABLE, ids=[row[0] for row in GO_HELPER_TABLE])
def test_go_helper_table(server_url: str, go: tuple[str, str | None, str, bool] | None, dualstack: bool) -> None:
    r = parse(server_url)
    if go is None:
        assert r is None
        return
    assert r is not None
    assert (r.service, r.account, r.region, r.fips) == go
    assert r.dualstack is dualstack
    assert server_url.lower().removeprefix("https://").startswith(r.host)


@pytest.mark.parametrize("server_url", REJECTED)
def test_rejected(server_url: str) -> None:
    assert parse(server_url) is None


# The region's shape at each of its bounds (2-4 letters first, 2-4 words, 1-2 digits): one step
# inside is a registry, one step outside is not. No region of these shapes exists yet; the grammar
# is what keeps a future one working and a look-alike out.
@pytest.mark.parametrize(
    ("region", "accepted"),
    [
        pytest.param("east-1", False, id="one-word"),
        pytest.param("us-east-1", True, id="two-words"),
        pytest.param("aa-bb-cc-dd-1", True, id="four-words"),
        pytest.param("aa-bb-cc-dd-ee-1", False, id="five-words"),
        pytest.param("u-east-1", False, id="first-word-one-letter"),
        pytest.param("ab-east-1", True, id="first-word-two-letters"),
        pytest.param("abcd-east-1", True, id="first-word-four-letters"),
        pytest.param("abcde-east-1", False, id="first-word-five-letters"),
        pytest.param("us-e-1", True, id="later-word-one-letter"),
        pytest.param("us-east1-1", False, id="digit-in-a-word"),
        pytest.param("us-east-", False, id="no-number"),
        pytest.param("us-east-10", True, id="two-digits"),
        pytest.param("us-east-100", False, id="three-digits"),
    ],
)
def test_region_shape_bounds(region: str, accepted: bool) -> None:
    host = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com"
    registry = parse(host)
    assert (registry is not None) == accepted
    if registry is not None:
        assert (registry.region, registry.host, registry.partition) == (region, host, "aws")


def test_table_size() -> None:
    assert len(ACCEPTED) + len(REJECTED) >= 120
    assert len(REJECTED) >= 40


def test_every_partition_is_in_the_table() -> None:
    partitions = {v[6] for p in ACCEPTED for v in p.values if isinstance(v, tuple)}
    assert partitions == {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}


# --- the Registry class


def make(**overrides: object) -> Registry:
    kwargs: dict[str, object] = {
        "service": "ecr",
        "account": ACCOUNT,
        "region": "us-east-1",
        "fips": False,
        "dualstack": False,
        "host": H,
    }
    kwargs.update(overrides)
    return Registry(**kwargs)  # type: ignore[arg-type]


def test_registry_equality_and_hash() -> None:
    a, b = make(), parse(H)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, make()}) == 1
    for field, value in [
        ("service", "ecr-public"),
        ("account", "210987654321"),
        ("region", "us-west-2"),
        ("fips", True),
        ("dualstack", True),
        ("host", "other"),
    ]:
        other = make(**{field: value})
        assert a != other, field
        assert getattr(other, field) == value
    assert a != fields(a)
    assert a != H


def test_registry_repr_names_every_field() -> None:
    assert repr(make()) == (
        f"Registry(service='ecr', account='123456789012', region='us-east-1', fips=False, dualstack=False, host='{H}')"
    )


def test_registry_is_keyword_only_and_immutable() -> None:
    untyped: Any = Registry  # positional arguments, which the type checker rightly refuses
    with pytest.raises(TypeError):
        untyped("ecr", ACCOUNT, "us-east-1", False, False, H)
    r = make()
    with pytest.raises(AttributeError, match=r"^Registry is immutable: cannot set 'region'$"):
        r.region = "us-west-2"
    with pytest.raises(AttributeError, match=r"^Registry is immutable: cannot delete 'host'$"):
        del r.host
    with pytest.raises(AttributeError, match=r"^Registry is immutable: cannot set 'extra'$"):
        r.extra = 1
    assert (r.region, r.host) == ("us-east-1", H)


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("ap-southeast-5", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("us-isof-south-1", "aws-iso-f"),
        ("eusc-de-east-1", "aws-eusc"),
    ],
)
def test_partition(region: str, partition: str) -> None:
    assert make(region=region).partition == partition


def test_long_inputs() -> None:
    # Linear time: a megabyte of path still parses, a megabyte of junk is refused.
    assert parse(f"{H}/{'a' * 1_000_000}") == parse(H)
    assert parse("1" * 1_000_000) is None
    assert parse(f"{ACCOUNT}.dkr.ecr." + "us-" * 300_000) is None
    assert parse("https://" * 100_000 + H) is None


# --- properties

# Pieces of ECR hosts and URLs, so that random strings often come close to (or hit) a real host.
PIECES = [
    ACCOUNT, "12345678901", "0", ".", "-", "dkr", "ecr", "-fips", "us-east-1", "cn-north-1", "us-gov-west-1",
    "us-iso-east-1", "eusc-de-east-1", "amazonaws", "com", "cn", "eu", "on", "aws", "amazonwebservices",
    "c2s.ic.gov", "public.ecr.aws", "ecr-public.aws.com", "https://", "http://", ":", "443", "0", "99999",
    "/", "v2", "@", "?", "#", "\\", " ", "\t", "\n", "\u212a", "\u0661", "\ud800", "\x00", "HTTPS://", "DKR",
]  # fmt: skip
ANY_CHAR = st.characters(exclude_categories=())  # surrogates included
TEXT = st.one_of(
    st.text(ANY_CHAR),
    st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(ANY_CHAR, max_size=2)), max_size=30).map("".join),
)


@given(TEXT)
@example(f"{H}\ud800")
@example("\U0010ffff" * 50)
def test_parse_never_raises_and_results_are_canonical(text: str) -> None:
    r = parse(text)
    if r is not None:
        assert r.host.isascii()
        assert r.host == r.host.lower()
        assert r.host in text.lower()
        assert not text.lower().strip().startswith("http://")
        assert parse(r.host) == r
        assert parse(f"https://{r.host}/v2/") == r


DIRECTIONS = ["east", "west", "north", "south", "central", "northeast", "southeast", "northwest", "southwest"]
# Independent of the module: partition -> (region prefix, domain, dual-stack domain or None).
PARTITIONS = {
    "aws": (["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"], "amazonaws.com", "on.aws"),
    "aws-us-gov": (["us-gov"], "amazonaws.com", "on.aws"),
    "aws-cn": (["cn"], "amazonaws.com.cn", "on.amazonwebservices.com.cn"),
    "aws-iso": (["us-iso"], "c2s.ic.gov", None),
    "aws-iso-b": (["us-isob"], "sc2s.sgov.gov", None),
    "aws-iso-e": (["eu-isoe"], "cloud.adc-e.uk", None),
    "aws-iso-f": (["us-isof"], "csp.hci.ic.gov", None),
    "aws-eusc": (["eusc-de"], "amazonaws.eu", None),
}


@st.composite
def valid_ecr(draw: st.DrawFn) -> Fields:
    partition = draw(st.sampled_from(sorted(PARTITIONS)))
    prefixes, domain, dual_domain = PARTITIONS[partition]
    region = f"{draw(st.sampled_from(prefixes))}-{draw(st.sampled_from(DIRECTIONS))}-{draw(st.integers(1, 99))}"
    account = draw(st.text("0123456789", min_size=12, max_size=12))
    fips = draw(st.booleans())
    dualstack = dual_domain is not None and draw(st.booleans())
    if dualstack and dual_domain is not None:
        domain = dual_domain
    sep = draw(st.sampled_from(".-"))
    return ecr(region, domain, partition, fips=fips, dualstack=dualstack, account=account, sep=sep)


VALID = st.one_of(valid_ecr(), st.sampled_from([PUBLIC, PUBLIC6]))


@st.composite
def spelled(draw: st.DrawFn, host: str) -> str:
    """One of the accepted spellings of host, in random letter case."""
    host = "".join(c.upper() if draw(st.booleans()) else c for c in host)
    scheme = draw(st.sampled_from(["", "https://", "HTTPS://"]))
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    path = draw(st.sampled_from(["", "/", "/v2/", "/v2/repo/manifests/latest", "/library/alpine", "/a/b:tag"]))
    space = draw(st.sampled_from(["", " ", "\n", "\t"]))
    return f"{space}{scheme}{host}{port}{path}{space}"


@given(VALID, st.data())
def test_valid_hosts_round_trip(expected: Fields, data: st.DataObject) -> None:
    host = expected[5]
    r = parse(host)
    assert r is not None
    assert fields(r) == expected
    assert parse(host.upper()) == r
    assert parse(f"https://{r.host}/v2/") == r
    assert parse(data.draw(spelled(host))) == r
    assert parse(f"http://{host}") is None
    assert parse(f"user@{host}") is None


# Junk that cannot turn into an accepted spelling: no "/" (so no scheme before, no path after), no
# whitespace (it would be stripped at the ends), no ":" after the host (that would start a port).
JUNK_BEFORE = st.text("abcxyzAZ019.-_@:?#%\\\u0661\u212a", min_size=1, max_size=10)
JUNK_AFTER = st.text("abcxyzAZ019.-_@?#%\\\u0661\u212a", min_size=1, max_size=10)


@given(VALID, JUNK_BEFORE, JUNK_AFTER)
@example(E1, "x", ".cn")
@example(PUBLIC, "ecr-", ".com")
def test_junk_around_a_valid_host_is_refused(expected: Fields, before: str, after: str) -> None:
    host = expected[5]
    assert parse(before + host) is None
    assert parse(host + after) is None
    assert parse(f"https://{before}{host}/v2/") is None
    assert parse(f"https://{host}{after}/v2/") is None
    assert parse(f"{host}{after}:443") is None


# -- host matching: the config file's globs -------------------------------------------------------

# -- globs without re -----------------------------------------------------------------------------------
_GLOB_ATOMS = st.one_of(
    st.sampled_from(list("abcz019.-")),
    st.just("*"),
    st.just("?"),
    st.builds(
        lambda negate, items: "[" + ("!" if negate else "") + "".join(items) + "]",
        st.booleans(),
        st.lists(
            st.one_of(
                st.sampled_from(list("abcz019.")),
                st.tuples(st.sampled_from("ab0"), st.sampled_from("cz9")).map(lambda r: f"{r[0]}-{r[1]}"),
            ),
            min_size=1,
            max_size=3,
        ),
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    pattern=st.lists(_GLOB_ATOMS, max_size=8).map("".join),
    text=st.text(alphabet="abcz019.-xy", max_size=12),
)
def test_glob_match_equals_fnmatch(pattern: str, text: str) -> None:
    try:
        expected = fnmatch.fnmatchcase(text, pattern)
    except re.error:
        # Python 3.9's fnmatch hands a reversed range ("[a-9]") to re, which refuses it; 3.10+ match
        # nothing with it, as glob_match does on every version (test_glob_reversed_range_is_empty).
        assert sys.version_info < (3, 10)
        assume(False)
    assert glob_match(pattern, text) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [("[a-9]", "a", False), ("[a-9]", "5", False), ("[!a-9]", "a", True), ("[a-9x]", "x", True), ("[z-a]", "m", False)],
)
def test_glob_reversed_range_is_empty(pattern: str, text: str, expected: bool) -> None:
    """A reversed range matches nothing (as fnmatch on 3.10+), whichever Python runs the hit."""
    assert glob_match(pattern, text) is expected
    if sys.version_info >= (3, 10):
        assert fnmatch.fnmatchcase(text, pattern) is expected


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.dkr.ecr.eu-*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", True),
        ("*.dkr.ecr.eu-*.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com", False),
        ("1234567890[0-1][!3].*", "123456789012.dkr.ecr.us-east-1.amazonaws.com", True),
        ("*", "public.ecr.aws", True),
        ("public.ecr.aw?", "public.ecr.aws", True),
        ("[", "[", True),
        ("*[", "a", False),
        # each member of a class is tried, the first, a middle and the last one
        ("[abc]", "a", True),
        ("[abc]", "b", True),
        ("[abc]", "c", True),
        ("[abc]", "d", False),
        ("[!abc]", "b", False),
        ("[a-cx]", "x", True),
        ("[xa-c]", "b", True),
    ],
)
def test_glob_match_examples(pattern: str, host: str, expected: bool) -> None:
    assert glob_match(pattern, host) is expected
    assert fnmatch.fnmatchcase(host, pattern) is expected


# -- what never leaves this helper, and how server URLs split ----------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(H, True, id="plain"),
        pytest.param("https://123456789012.DKR.ECR.us-east-1.amazonaws.com/v2/", True, id="upper-case"),
        pytest.param(
            "123456789012.\uff44\uff4b\uff52\uff0e\uff45\uff43\uff52.us-east-1.amazonaws.com", True, id="full-width"
        ),
        pytest.param("123456789012.dkr\u3002ecr.us-east-1.amazonaws.com", True, id="ideographic-dot"),
        pytest.param("123456789012.dkr%2eecr.us-east-1.amazonaws.com", True, id="percent-encoded-dot"),
        pytest.param("123456789012.dkr%252Eecr.us-east-1.amazonaws.com", True, id="double-encoded"),
        pytest.param("123456789012.dkr%2525252eecr.us-east-1.amazonaws.com", False, id="encoded-past-three-rounds"),
        pytest.param("123456789012.dkr.e%zzcr.us-east-1.amazonaws.com", False, id="invalid-escape-kept"),
        pytest.param("123456789012.dkr\\.ecr.x", True, id="backslash"),
        pytest.param("123456789012.dkr. ecr.x", True, id="white-space"),
        pytest.param("public.ecr.aws", True, id="public"),
        pytest.param("ghcr.io", False, id="other"),
        pytest.param("100%.example.com", False, id="percent-not-an-escape"),
    ],
)
def test_mentions_ecr_sees_through_spellings(url: str, expected: bool) -> None:
    assert mentions_ecr(url) is expected


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        pytest.param("Registry.Example.COM.", (None, "registry.example.com", None), id="case-and-dot"),
        pytest.param("https://mirror:8443/v2/", ("https", "mirror", "8443"), id="scheme-port-path"),
        pytest.param(" http://mirror/x ", ("http", "mirror", None), id="blanks"),
        pytest.param("mirror:443", (None, "mirror", "443"), id="port-443"),
        pytest.param("mirror:0", None, id="port-zero"),
        pytest.param("mirror:65536", None, id="port-too-large"),
        pytest.param("mirror:x", None, id="port-not-a-number"),
        pytest.param("user@mirror", None, id="user-info"),
        pytest.param("mirror/x?y", None, id="query"),
        pytest.param("https:///v2/", None, id="no-host"),
        pytest.param("mïrror", None, id="not-ascii"),
    ],
)
def test_split_server_url(url: str, parts: tuple[str | None, str, str | None] | None) -> None:
    assert split_server_url(url) == parts


@pytest.mark.parametrize(
    ("region", "fips", "dualstack", "host"),
    [
        pytest.param("eu-west-1", False, False, f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com", id="commercial"),
        pytest.param(" US-EAST-1 ", True, False, f"{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com", id="fips"),
        pytest.param("us-east-1", False, True, f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws", id="dualstack"),
        pytest.param("cn-north-1", False, False, f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", id="china"),
        pytest.param("us-iso-east-1", False, True, None, id="no-dualstack-domain"),
        pytest.param("xx", False, False, None, id="not-a-region"),
    ],
)
def test_host_for_is_parses_inverse(region: str, fips: bool, dualstack: bool, host: str | None) -> None:
    assert host_for(ACCOUNT, region, fips=fips, dualstack=dualstack) == host
    if host is not None:
        parsed = parse(host)
        assert parsed is not None
        assert (parsed.account, parsed.fips, parsed.dualstack) == (ACCOUNT, fips, dualstack)


def test_host_for_defaults_to_neither_fips_nor_dualstack() -> None:
    assert host_for(ACCOUNT, "eu-west-1") == f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(("port", "accepted"), [("00443", True), ("000443", False), ("0" * 5000 + "443", False)])
def test_a_port_has_at_most_five_digits(port: str, accepted: bool) -> None:
    """Leading zeros included: a port is never read from more than five characters."""
    assert (parse(f"{H}:{port}") is not None) == accepted


@pytest.mark.parametrize(
    ("port", "parts"),
    [("0", None), ("1", (None, "registry.example.com", "1")), ("65535", (None, "registry.example.com", "65535"))],
)
def test_split_server_url_port_bounds(port: str, parts: tuple[str | None, str, str | None] | None) -> None:
    assert split_server_url(f"registry.example.com:{port}") == parts
    assert split_server_url("registry.example.com:65536") is None
