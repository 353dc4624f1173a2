"""WeCom callback crypto (WXBizMsgCrypt, platforms.md §5.3): signature, AES-CBC, envelopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import struct
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

__all__ = ["MAX_BODY_BYTES", "WeComCrypto", "WeComCryptoError"]

MAX_BODY_BYTES = 64 * 1024  # callers refuse bigger bodies before parsing

VALIDATE_SIGNATURE = -40001
PARSE_BODY = -40002
ILLEGAL_AES_KEY = -40004
VALIDATE_RECEIVE_ID = -40005
ENCRYPT_AES = -40006
DECRYPT_AES = -40007
ILLEGAL_BUFFER = -40008
DECODE_BASE64 = -40010
GEN_RETURN = -40011

_BLOCK = 32  # WeCom pads PKCS#7 to 32 bytes, not to the AES block of 16
_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4  # random prefix + uint32 big-endian message length
_REPLY_XML = (
    "<xml>\n"
    "<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
    "<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n"
    "<Nonce><![CDATA[{nonce}]]></Nonce>\n"
    "</xml>"
)


class WeComCryptoError(Exception):
    """A callback that fails verification or decryption; `code` is the official -400xx code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} ({code})")
        self.code = code
        self.reason = reason


def _parse_xml(data: bytes) -> Element:
    """Parse untrusted XML with DTDs, entities and external references all refused."""
    try:
        return safe_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise WeComCryptoError(PARSE_BODY, f"unparsable XML ({type(exc).__name__})") from None


def _parse_json(data: bytes | str) -> Any:
    """Parse untrusted JSON; any failure (including absurd nesting) is a parse error."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise WeComCryptoError(PARSE_BODY, f"unparsable JSON ({type(exc).__name__})") from None


def _check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise WeComCryptoError(PARSE_BODY, "body larger than MAX_BODY_BYTES")


class WeComCrypto:
    """One app's (token, EncodingAESKey, receiveid) triple, as the official WXBizMsgCrypt."""

    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            # With an empty token anybody can compute a valid msg_signature: refuse the config.
            raise ValueError("WeCom token must not be empty")
        if len(encoding_aes_key) != 43:
            raise WeComCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except ValueError:
            raise WeComCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey is not base64") from None
        if len(key) != 32:
            raise WeComCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey does not give 32 bytes")
        self._token = token
        self._key = key
        self._iv = key[:16]
        self._receive_id = receive_id.encode("utf-8")

    @property
    def receive_id(self) -> str:
        """The corpid (self-built app), suite_id (third party) or "" (internal AI bot)."""
        return self._receive_id.decode("utf-8")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))

    def signature(self, *, timestamp: str, nonce: str, encrypted: str) -> str:
        """Lowercase hex SHA-1 of the sorted [token, timestamp, nonce, encrypted], joined."""
        parts = sorted([self._token, timestamp, nonce, encrypted])
        return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()

    def verify(self, *, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise WeComCryptoError(-40001) unless `msg_signature` signs these values."""
        expected = self.signature(timestamp=timestamp, nonce=nonce, encrypted=encrypted)
        # compare_digest on bytes: a non-ASCII parameter must fail the check, not raise TypeError.
        if not hmac.compare_digest(expected.encode(), msg_signature.encode("utf-8", "replace")):
            raise WeComCryptoError(VALIDATE_SIGNATURE, "msg_signature does not match")

    def decrypt(self, encrypted: str) -> str:
        """The message inside a base64 `Encrypt`/`echostr`, after checking its receiveid."""
        try:
            ciphertext = base64.b64decode(encrypted, validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII str
            raise WeComCryptoError(DECODE_BASE64, "ciphertext is not valid base64") from None
        if not ciphertext or len(ciphertext) % 16:
            raise WeComCryptoError(DECRYPT_AES, "ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        pad = padded[-1]
        # Stricter than the official sample (which treats a bad pad as 0): a wrong key or a
        # tampered last block must fail here rather than yield garbage.
        if not 1 <= pad <= _BLOCK or pad > len(padded) or padded[-pad:] != bytes([pad]) * pad:
            raise WeComCryptoError(DECRYPT_AES, "bad PKCS#7 padding")
        plain = padded[:-pad]
        if len(plain) < _HEADER_LEN:
            raise WeComCryptoError(ILLEGAL_BUFFER, "plaintext shorter than its header")
        (msg_len,) = struct.unpack(">I", plain[_RANDOM_LEN:_HEADER_LEN])
        msg_end = _HEADER_LEN + msg_len
        if msg_end > len(plain):
            raise WeComCryptoError(ILLEGAL_BUFFER, "message length overruns the plaintext")
        try:
            message = plain[_HEADER_LEN:msg_end].decode("utf-8")
        except UnicodeDecodeError:
            raise WeComCryptoError(ILLEGAL_BUFFER, "message is not UTF-8") from None
        if not hmac.compare_digest(plain[msg_end:], self._receive_id):
            raise WeComCryptoError(VALIDATE_RECEIVE_ID, "receiveid does not match")
        return message

    def encrypt(self, plaintext: str, *, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of `plaintext` for this receiveid; `random_prefix` only for tests."""
        if random_prefix is None:
            # 16 ASCII digits, as the official sample generates.
            random_prefix = "".join(secrets.choice(string.digits) for _ in range(16)).encode()
        if len(random_prefix) != _RANDOM_LEN:
            raise ValueError("random_prefix must be 16 bytes")
        try:
            message = plaintext.encode("utf-8")
        except UnicodeEncodeError:
            raise WeComCryptoError(ENCRYPT_AES, "plaintext is not encodable as UTF-8") from None
        body = random_prefix + struct.pack(">I", len(message)) + message + self._receive_id
        pad = _BLOCK - len(body) % _BLOCK  # never 0: an aligned body gets a whole 32-byte block
        encryptor = self._cipher().encryptor()
        ciphertext = encryptor.update(body + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(ciphertext).decode("ascii")

    def verify_url(self, *, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The bare plaintext to answer a URL-verification GET with (parameters URL-decoded)."""
        self.verify(
            msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, encrypted=echostr
        )
        return self.decrypt(echostr)

    def decrypt_xml(
        self, *, body: bytes, msg_signature: str, timestamp: str, nonce: str
    ) -> dict[str, str]:
        """The app callback's inner XML as {tag: text} of the root's direct children."""
        _check_size(body)
        outer = _parse_xml(body)
        node = outer.find("Encrypt")
        encrypted = node.text if node is not None else None
        if not encrypted:
            raise WeComCryptoError(PARSE_BODY, "no Encrypt element")
        self.verify(
            msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, encrypted=encrypted
        )
        inner = _parse_xml(self.decrypt(encrypted).encode("utf-8"))
        fields: dict[str, str] = {}
        for child in inner:
            # Nested elements (e.g. SelectedItems) are never needed: map them to "".
            text = "" if len(child) else (child.text or "")
            # First occurrence wins, so a repeated tag cannot override an earlier one.
            fields.setdefault(child.tag, text)
        return fields

    def decrypt_json(
        self, *, body: bytes, msg_signature: str, timestamp: str, nonce: str
    ) -> dict[str, Any]:
        """The AI-bot callback's inner JSON object, from a `{"encrypt": ...}` body (§8.1)."""
        _check_size(body)
        outer = _parse_json(body)
        encrypted = outer.get("encrypt") if isinstance(outer, dict) else None
        if not isinstance(encrypted, str) or not encrypted:
            raise WeComCryptoError(PARSE_BODY, "no string encrypt field")
        self.verify(
            msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, encrypted=encrypted
        )
        inner = _parse_json(self.decrypt(encrypted))
        if not isinstance(inner, dict):
            raise WeComCryptoError(PARSE_BODY, "decrypted JSON is not an object")
        return inner

    def encrypt_xml_reply(
        self,
        plaintext: str,
        *,
        timestamp: str,
        nonce: str,
        random_prefix: bytes | None = None,
    ) -> str:
        """The encrypted passive-reply XML envelope (§5.3) for an app callback."""
        # Both values are pasted into the envelope unescaped: refuse anything that could break out.
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise WeComCryptoError(GEN_RETURN, "timestamp is not a number")
        if not nonce.isascii() or not nonce.isprintable() or any(c in nonce for c in "<>&]"):
            raise WeComCryptoError(GEN_RETURN, "nonce has characters unsafe in the envelope")
        encrypted = self.encrypt(plaintext, random_prefix=random_prefix)
        signature = self.signature(timestamp=timestamp, nonce=nonce, encrypted=encrypted)
        return _REPLY_XML.format(
            encrypt=encrypted, signature=signature, timestamp=timestamp, nonce=nonce
        )

    def encrypt_json_reply(
        self,
        plaintext: str,
        *,
        timestamp: str,
        nonce: str,
        random_prefix: bytes | None = None,
    ) -> dict[str, str]:
        """The encrypted passive-reply JSON envelope (§8.1) for an AI-bot callback."""
        encrypted = self.encrypt(plaintext, random_prefix=random_prefix)
        signature = self.signature(timestamp=timestamp, nonce=nonce, encrypted=encrypted)
        return {
            "encrypt": encrypted,
            "msgsignature": signature,
            "timestamp": timestamp,
            "nonce": nonce,
        }
