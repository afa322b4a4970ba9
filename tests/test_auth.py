"""Earthdata credentials from every source, and never a secret in what comes out."""

from __future__ import annotations

import json

import boto3
import pytest

from titiler_cmr_compatibility.auth import AuthError, EarthdataAuth
from titiler_cmr_compatibility.check import check_collection
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample import files
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
