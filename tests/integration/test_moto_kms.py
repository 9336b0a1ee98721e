"""moto's KMS with `moto_patches`' lazy private keys: a symmetric key no longer costs an RSA key, and every answer is moto's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from moto import mock_aws

from raas.local import moto_patches


@pytest.fixture
def kms() -> Iterator[Any]:
    moto_patches.install()
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


@pytest.fixture
def rsa_keys_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The RSA private keys generated from here on (their sizes)."""
    made: list[int] = []
    generate = rsa.generate_private_key

    def counted(public_exponent: int, key_size: int, *args: Any, **kwargs: Any) -> Any:
        made.append(key_size)
        return generate(public_exponent, key_size, *args, **kwargs)

    monkeypatch.setattr(rsa, "generate_private_key", counted)
    return made


def test_a_symmetric_key_makes_no_rsa_key_and_still_encrypts_and_decrypts(kms: Any, rsa_keys_made: list[int]) -> None:
    key_id = kms.create_key(Description="a tenant's key")["KeyMetadata"]["KeyId"]
    hmac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    assert rsa_keys_made == []  # moto 5.2.5 made two RSA-2048 keys here

    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"tenant secret", EncryptionContext={"tenant_id": "t1"})["CiphertextBlob"]
    opened = kms.decrypt(CiphertextBlob=sealed, EncryptionContext={"tenant_id": "t1"})
    assert (opened["Plaintext"], opened["KeyId"].rsplit("/", 1)[-1]) == (b"tenant secret", key_id)
    mac = kms.generate_mac(KeyId=hmac_key, MacAlgorithm="HMAC_SHA_256", Message=b"m")["Mac"]
    assert kms.verify_mac(KeyId=hmac_key, MacAlgorithm="HMAC_SHA_256", Message=b"m", Mac=mac)["MacValid"]
    assert rsa_keys_made == []


def test_a_symmetric_keys_private_key_is_made_when_first_read_as_moto_would_have_it(kms: Any, rsa_keys_made: list[int]) -> None:
    """GetPublicKey on a symmetric key (which AWS refuses) answers as moto does: an RSA-2048 public key, made then, once."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    first = kms.get_public_key(KeyId=key_id)["PublicKey"]
    again = kms.get_public_key(KeyId=key_id)["PublicKey"]
    assert first == again
    public = serialization.load_der_public_key(first)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    assert rsa_keys_made == [2048]


def test_asymmetric_keys_are_made_at_creation_and_sign_and_verify(kms: Any, rsa_keys_made: list[int]) -> None:
    signer = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert rsa_keys_made == [2048]
    signature = kms.sign(KeyId=signer, Message=b"invoice", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    assert kms.verify(KeyId=signer, Message=b"invoice", Signature=signature, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["SignatureValid"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=signer)["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"invoice", padding.PKCS1v15(), hashes.SHA256())  # raises if it does not verify

    curve = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signed = kms.sign(KeyId=curve, Message=b"invoice", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    ec_public = serialization.load_der_public_key(kms.get_public_key(KeyId=curve)["PublicKey"])
    assert isinstance(ec_public, ec.EllipticCurvePublicKey)
    ec_public.verify(signed, b"invoice", ec.ECDSA(hashes.SHA256()))
    assert rsa_keys_made == [2048]


def test_a_key_not_yet_made_copies_without_being_made(rsa_keys_made: list[int]) -> None:
    """moto's state may be deep-copied: a copy of a key not yet made is still not made, and makes its own on first use."""
    import copy

    from moto.kms.models import generate_private_key

    lazy = generate_private_key("SYMMETRIC_DEFAULT")
    twin = copy.deepcopy(lazy)
    assert rsa_keys_made == []
    assert twin.public_key() != lazy.public_key()  # two keys, each made when first read
    assert rsa_keys_made == [2048, 2048]
