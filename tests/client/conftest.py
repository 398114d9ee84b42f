"""Fixtures for the SNS tests and the receiver's: a throwaway signing key and an SNS that signs with it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.client.test_sns import FakeSns, make_certificate


@pytest.fixture(scope="package")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake_sns(sns_key: rsa.RSAPrivateKey) -> FakeSns:
    return FakeSns(sns_key, make_certificate(sns_key))
