"""executor.aws_clients: one boto3 client per service, region, endpoint, config, credentials and AWS
environment; never one made under other credentials or another (moto) mock."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from executor import aws_clients
from executor.credentials import clear_cache

CONFIG = Config(connect_timeout=5)


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first-secret")


def test_the_same_request_gets_the_same_client_and_reset_forgets_it() -> None:
    first = aws_clients.client("s3", config=CONFIG)
    assert aws_clients.client("s3", config=CONFIG) is first
    assert aws_clients.client("sqs", config=CONFIG) is not first
    assert aws_clients.client("s3", config=Config(connect_timeout=5)) is not first  # config by identity
    assert aws_clients.client("s3", config=CONFIG, region_name="us-east-1") is not first
    assert aws_clients.client("s3", config=CONFIG, endpoint_url="http://127.0.0.1:1") is not first
    aws_clients.reset()
    assert aws_clients.client("s3", config=CONFIG) is not first


def test_other_credentials_in_the_environment_get_another_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # (which credentials the new client signs with is boto3's affair: its default session resolves
    # them once; the cache only promises not to hand back the client made under the others)
    first = aws_clients.client("s3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECOND")
    second = aws_clients.client("s3")
    assert second is not first
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    assert aws_clients.client("s3") is not second
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    assert aws_clients.client("s3") is second


def test_explicit_credentials_are_part_of_the_key() -> None:
    one = aws_clients.client("s3", aws_access_key_id="A", aws_secret_access_key="a", aws_session_token="t1")
    other = aws_clients.client("s3", aws_access_key_id="A", aws_secret_access_key="a", aws_session_token="t2")
    assert one is not other
    assert one._request_signer._credentials.token == "t1"
    assert other._request_signer._credentials.token == "t2"


def test_a_client_made_outside_a_mock_never_serves_code_inside_it_nor_after_it() -> None:
    outside = aws_clients.client("s3")
    with mock_aws():
        inside = aws_clients.client("s3")
        assert inside is not outside
        inside.create_bucket(
            Bucket="only-in-this-mock", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        assert [b["Name"] for b in aws_clients.client("s3").list_buckets()["Buckets"]] == [
            "only-in-this-mock"
        ]
    assert aws_clients.client("s3") is not inside
    with mock_aws():
        assert aws_clients.client("s3").list_buckets()["Buckets"] == []  # a new mock, a new world


def test_clear_cache_of_the_credentials_forgets_the_clients() -> None:
    first = aws_clients.client("secretsmanager")
    clear_cache()
    assert aws_clients.client("secretsmanager") is not first


def test_a_new_default_session_gets_new_clients() -> None:
    first = aws_clients.client("s3")
    boto3.setup_default_session()
    try:
        assert aws_clients.client("s3") is not first
    finally:
        boto3.DEFAULT_SESSION = None


def test_at_most_max_clients_are_kept_the_least_recently_used_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_clients, "MAX_CLIENTS", 2)
    a = aws_clients.client("s3", region_name="eu-west-1")
    b = aws_clients.client("s3", region_name="eu-west-2")
    assert aws_clients.client("s3", region_name="eu-west-1") is a  # a is now the most recent
    aws_clients.client("s3", region_name="eu-west-3")  # b goes
    assert aws_clients.client("s3", region_name="eu-west-1") is a
    assert aws_clients.client("s3", region_name="eu-west-2") is not b
