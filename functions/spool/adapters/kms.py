"""KMS adapter: encrypt store credentials under an encryption context (api), decrypt them (sink)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


class KmsCipher:
    def __init__(self, client: KMSClient, key_id: str | None = None) -> None:
        self._kms = client
        self._key_id = key_id

    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        if self._key_id is None:
            raise RuntimeError("this cipher was built without a key id and can only decrypt")
        return self._kms.encrypt(KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"]

    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        return self._kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=context)["Plaintext"]
