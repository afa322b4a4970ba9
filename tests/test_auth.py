"""Earthdata credentials from every source, and never a secret in what comes out."""

from __future__ import annotations

import json

import boto3
import pytest

from titiler_cmr_compatibility.auth import (
    AuthError, EarthdataAuth, UnsafeHost, may_receive_token, refuse_unsafe_host, walk_redirects,
)
from titiler_cmr_compatibility.check import check_collection
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.sample.server import Response
from titiler_cmr_compatibility.settings import Settings
from tests.support.aws import moto_server, point_boto3_at
from tests.support.urs_server import FakeURS


def test_no_credentials_means_no_token(world):
    assert EarthdataAuth(world.settings()).token() is None


def test_token_from_the_environment(world, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "env-token-1")
    from titiler_cmr_compatibility.settings import Settings

    assert EarthdataAuth(Settings(_env_file=None)).token() == "env-token-1"


def test_username_and_password_are_exchanged_once_for_a_token(world, tmp_path):
    with FakeURS("alice", "s3cret-pass", "urs-token-77") as urs:
        settings = world.settings(
            urs_url=urs.url, earthdata_username="alice", earthdata_password="s3cret-pass"
        )
        auth = EarthdataAuth(settings)
        assert auth.token() == "urs-token-77"
        assert auth.token() == "urs-token-77"
        assert urs.count("find_or_create_token") == 1
        concept_id = world.publish(files.netcdf4_grid(tmp_path))
        world.data.require_bearer("/test-protected/", "urs-token-77")
        result = check_collection(concept_id, settings=settings, auth=auth)
        assert result.tiling_compatible, result.error_message


def test_wrong_password_is_a_clear_error_without_the_password(world):
    with FakeURS("alice", "right-pass", "t") as urs:
        auth = EarthdataAuth(world.settings(urs_url=urs.url, earthdata_username="alice", earthdata_password="wrong-pass-123"))
        with pytest.raises(AuthError, match="HTTP 401") as error:
            auth.token()
        assert "wrong-pass-123" not in str(error.value)


def test_wrong_password_during_a_check_is_forbidden_not_a_crash(world, tmp_path):
    with FakeURS("alice", "right-pass", "t") as urs:
        settings = world.settings(urs_url=urs.url, earthdata_username="alice", earthdata_password="wrong-pass-456")
        result = check_collection(world.publish(files.netcdf4_grid(tmp_path)), settings=settings)
    assert result.incompatible_reason is Reason.FORBIDDEN
    assert "wrong-pass-456" not in json.dumps(result.to_record())


def test_token_from_an_ssm_securestring_parameter(world, tmp_path, monkeypatch):
    with moto_server() as endpoint:
        point_boto3_at(monkeypatch, endpoint)
        boto3.client("ssm").put_parameter(Name="/compat/token", Value="ssm-token-5", Type="SecureString")
        settings = world.settings(earthdata_token_parameter="/compat/token")
        concept_id = world.publish(files.netcdf4_grid(tmp_path))
        world.data.require_bearer("/test-protected/", "ssm-token-5")
        result = check_collection(concept_id, settings=settings)
        assert result.tiling_compatible, result.error_message
        missing = check_collection(concept_id, settings=world.settings(earthdata_token_parameter="/compat/absent"))
        assert missing.incompatible_reason is Reason.FORBIDDEN
        assert "/compat/absent" in missing.error_message and "ssm-token-5" not in missing.error_message


def test_s3_credentials_are_cached_per_endpoint(world):
    credentials = world.data.add_s3_credentials("/s3credentials")
    auth = EarthdataAuth(world.settings(earthdata_token="tok-9"))
    endpoint = world.data.url + "/s3credentials"
    first = auth.s3_credentials(endpoint, timeout=5)
    second = auth.s3_credentials(endpoint, timeout=5)
    assert first is second and first.access_key_id == credentials["accessKeyId"]
    assert world.data.count("/s3credentials") == 1
    assert credentials["secretAccessKey"] not in repr(first)


def test_a_login_answered_with_a_web_page_is_forbidden_not_a_crash(world, tmp_path):
    with FakeURS("alice", "pass-789", "t", html=True) as urs:
        settings = world.settings(urs_url=urs.url, earthdata_username="alice", earthdata_password="pass-789")
        with pytest.raises(AuthError, match="not a JSON token"):
            EarthdataAuth(settings).token()
        result = check_collection(world.publish(files.netcdf4_grid(tmp_path)), settings=settings)
    assert result.incompatible_reason is Reason.FORBIDDEN and "not a JSON token" in result.error_message


@pytest.mark.parametrize(
    ("url", "token_hosts", "loopback", "expected"),
    [
        ("https://data.lpdaac.earthdatacloud.nasa.gov/x.tif", None, False, True),
        ("https://archive.podaac.earthdata.nasa.gov/x.nc", None, False, True),
        ("https://cddis.nasa.gov/x.nc", None, False, True),
        ("http://archive.podaac.earthdata.nasa.gov/x.nc", None, False, False),  # never in the clear
        ("https://earthdata.nasa.gov.evil.example/x.nc", None, False, False),
        ("https://evilearthdata.nasa.gov/x.nc", None, False, False),
        ("https://example.org/s3credentials", None, False, False),
        ("https://169.254.169.254/latest/meta-data/", None, False, False),
        ("http://127.0.0.1:8000/x.nc", ["127.0.0.1"], True, True),
        ("http://127.0.0.1:8000/x.nc", ["127.0.0.1"], False, False),  # loopback not opted in
        ("http://127.0.0.2:8000/x.nc", ["127.0.0.1"], True, False),
    ],
)
def test_the_token_goes_only_to_earthdata_hosts(url, token_hosts, loopback, expected):
    values = {"allow_loopback_hosts": loopback} | ({"token_hosts": token_hosts} if token_hosts else {})
    assert may_receive_token(url, Settings(_env_file=None, **values)) is expected


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/iam/", "http://10.0.0.1/x", "http://192.168.1.1/x",
     "http://172.16.0.1/x", "http://[fe80::1]/x", "http://[::1]:80/x", "http://0.0.0.0/x",
     "http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::ffff:169.254.169.254]/x", "http:///x"],
)
def test_addresses_inside_the_network_are_refused(url):
    with pytest.raises(UnsafeHost):
        refuse_unsafe_host(url, Settings(_env_file=None))


def test_loopback_is_allowed_only_when_opted_in_and_link_local_never():
    allowed = Settings(_env_file=None, allow_loopback_hosts=True)
    refuse_unsafe_host("http://127.0.0.1:9/x", allowed)
    refuse_unsafe_host("http://localhost:9/x", allowed)
    with pytest.raises(UnsafeHost, match="link-local"):
        refuse_unsafe_host("http://169.254.169.254/", allowed)


def test_a_data_host_outside_token_hosts_never_sees_the_token(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.data.require_bearer("/test-protected/", "tok-allow-1")
    trusted = check_collection(concept_id, settings=world.settings(earthdata_token="tok-allow-1"))
    assert trusted.tiling_compatible, trusted.error_message
    foreign = world.settings(earthdata_token="tok-allow-1", token_hosts=["earthdata.nasa.gov"])
    result = check_collection(concept_id, settings=foreign)
    assert result.incompatible_reason is Reason.FORBIDDEN  # the host wanted a token it was not given


def test_an_s3credentials_endpoint_outside_token_hosts_is_not_asked(world):
    world.data.add_s3_credentials("/s3credentials")
    auth = EarthdataAuth(world.settings(earthdata_token="tok-9", token_hosts=["earthdata.nasa.gov"]))
    with pytest.raises(AuthError, match="not an Earthdata host"):
        auth.s3_credentials(world.data.url + "/s3credentials", timeout=5)
    assert world.data.count("/s3credentials") == 0


def _chain(world, stops: list[str]) -> str:
    """Redirects from stop to stop; the last one, when it is on the data host, serves a small file."""
    if f":{world.data.port}/" in stops[-1]:
        world.data.add(stops[-1].split(str(world.data.port), 1)[1], b"\x89HDF\r\n\x1a\n" + bytes(100))
    for here, there in zip(stops, stops[1:]):
        path = here.split(str(world.data.port), 1)[1]
        world.data.answer_where(path, lambda request, there=there: Response.text("Found", 302, {"Location": there}))
    return stops[0]


def test_a_redirect_chain_that_leaves_the_token_hosts_is_read_without_the_token(world):
    """reqwest drops the token when a hop changes host but puts it back on a hop that stays on
    a foreign host: the walk finds such chains first."""
    trusted, foreign = world.data.url, f"http://localhost:{world.data.port}"
    settings = world.settings()
    start = _chain(world, [f"{trusted}/a", f"{foreign}/b", f"{foreign}/c", f"{foreign}/d.h5"])
    assert walk_redirects(start, "tok-walk-1", settings, timeout=5) is False
    assert [r.headers.get("Authorization") for r in world.data.requests] == ["Bearer tok-walk-1", None, None, None]
    assert walk_redirects(_chain(world, [f"{trusted}/e", f"{trusted}/f.h5"]), "tok-walk-1", settings, timeout=5) is True
    assert walk_redirects(_chain(world, [f"{trusted}/g", f"{foreign}/h.h5"]), "tok-walk-1", settings, timeout=5) is True


def test_a_redirect_to_an_address_inside_the_network_is_refused_before_it_is_followed(world):
    start = _chain(world, [f"{world.data.url}/i", "http://169.254.169.254/latest/meta-data/"])
    with pytest.raises(UnsafeHost, match="link-local"):
        walk_redirects(start, None, world.settings(), timeout=5)
