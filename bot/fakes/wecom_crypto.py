"""The fake WeCom's own WXBizMsgCrypt (platforms.md §5.3), for the simulator and tests only.

Written from the algorithm, in the shape of Tencent's official Python sample (a `Prpcrypt`
that does AES, a `PKCS7Encoder`, and a `WXBizMsgCrypt` wrapper whose calls return
`(code, value)`), and deliberately independent of the product's `bot.wecom.crypto`: the two
implementations pin each other through the golden vectors of platforms.md §5.4.

- signature: sha1 over the sorted [token, timestamp, nonce, encrypt], lowercase hex
- key = base64decode(EncodingAESKey + "="), 32 bytes; iv = key[:16]
- AES-256-CBC, no library padding; PKCS#7 with a block size of 32 (always 1..32 bytes added)
- plaintext = random(16) || uint32 big-endian len(msg) || msg || receiveid

`WXBizMsgCrypt` speaks the XML envelope of app callbacks (receiveid = corpid);
`WXBizJsonMsgCrypt` the JSON envelope of AI-bot callbacks (receiveid = "").
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree

__all__ = [
    "COMPUTE_SIGNATURE_ERROR",
    "DECODE_BASE64_ERROR",
    "DECRYPT_AES_ERROR",
    "ENCODE_BASE64_ERROR",
    "ENCRYPT_AES_ERROR",
    "GEN_RETURN_ERROR",
    "ILLEGAL_AES_KEY",
    "ILLEGAL_BUFFER",
    "OK",
    "PARSE_ERROR",
    "VALIDATE_RECEIVEID_ERROR",
    "VALIDATE_SIGNATURE_ERROR",
    "FormatException",
    "PKCS7Encoder",
    "Prpcrypt",
    "WXBizJsonMsgCrypt",
    "WXBizMsgCrypt",
    "sha1_signature",
]

# Error codes of the official sample's ierror.py (platforms.md §5.3).
OK = 0
VALIDATE_SIGNATURE_ERROR = -40001
PARSE_ERROR = -40002  # ParseXml / ParseJson
COMPUTE_SIGNATURE_ERROR = -40003
ILLEGAL_AES_KEY = -40004
VALIDATE_RECEIVEID_ERROR = -40005  # "ValidateCorpid"
ENCRYPT_AES_ERROR = -40006
DECRYPT_AES_ERROR = -40007
ILLEGAL_BUFFER = -40008
ENCODE_BASE64_ERROR = -40009
DECODE_BASE64_ERROR = -40010
GEN_RETURN_ERROR = -40011  # GenReturnXml / GenReturnJson


class FormatException(ValueError):
    """An EncodingAESKey that does not decode to 32 bytes (the sample raises this too)."""


def sha1_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> tuple[int, str | None]:
    """The msg_signature: sha1 of the four strings sorted and joined, as lowercase hex."""
    try:
        joined = "".join(sorted([str(token), str(timestamp), str(nonce), str(encrypt)]))
        return OK, hashlib.sha1(joined.encode("utf-8")).hexdigest()
    except Exception:
        return COMPUTE_SIGNATURE_ERROR, None


class PKCS7Encoder:
    """PKCS#7 over 32-byte blocks, as WeCom uses it (not AES's 16)."""

    block_size = 32

    def encode(self, data: bytes) -> bytes:
        amount = self.block_size - len(data) % self.block_size  # 1..32, never 0
        return data + bytes([amount]) * amount

    def decode(self, data: bytes) -> bytes:
        pad = data[-1] if data else 0
        if pad < 1 or pad > self.block_size:  # the sample's lenient rule: treat as no padding
            pad = 0
        return data[: len(data) - pad]


class Prpcrypt:
    """AES-256-CBC with the WeCom plaintext layout around the message."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.iv = key[:16]

    @staticmethod
    def get_random_str() -> bytes:
        """16 random ASCII digits, as the official sample makes the prefix."""
        return "".join(secrets.choice("0123456789") for _ in range(16)).encode("ascii")

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv))

    def encrypt(
        self, text: str | bytes, receiveid: str, *, random_prefix: bytes | None = None
    ) -> tuple[int, str | None]:
        """Encrypt `text` for `receiveid`; `random_prefix` (16 bytes) makes it deterministic."""
        message = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        prefix = self.get_random_str() if random_prefix is None else random_prefix
        if len(prefix) != 16:
            return ENCRYPT_AES_ERROR, None
        plain = prefix + struct.pack(">I", len(message)) + message + receiveid.encode("utf-8")
        padded = PKCS7Encoder().encode(plain)
        try:
            encryptor = self._cipher().encryptor()
            ciphertext = encryptor.update(padded) + encryptor.finalize()
        except Exception:
            return ENCRYPT_AES_ERROR, None
        try:
            return OK, base64.b64encode(ciphertext).decode("ascii")
        except Exception:
            return ENCODE_BASE64_ERROR, None

    def decrypt(self, text: str, receiveid: str) -> tuple[int, bytes | None]:
        """Decrypt a base64 `Encrypt` value; the trailing receiveid must equal `receiveid`."""
        try:
            ciphertext = base64.b64decode(text, validate=True)
        except Exception:
            return DECODE_BASE64_ERROR, None
        if not ciphertext or len(ciphertext) % 16:
            return DECRYPT_AES_ERROR, None
        try:
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(ciphertext) + decryptor.finalize()
        except Exception:
            return DECRYPT_AES_ERROR, None
        content = PKCS7Encoder().decode(plain)[16:]
        if len(content) < 4:
            return ILLEGAL_BUFFER, None
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            return ILLEGAL_BUFFER, None
        message, trailer = content[4 : 4 + length], content[4 + length :]
        if trailer != receiveid.encode("utf-8"):
            return VALIDATE_RECEIVEID_ERROR, None
        return OK, message


def _nonce() -> str:
    return str(secrets.randbelow(9_000_000_000) + 1_000_000_000)


class WXBizMsgCrypt:
    """The XML callback wrapper (app callbacks): verify_url, encrypt_msg and decrypt_msg."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except Exception:
            key = b""
        if len(encoding_aes_key) != 43 or len(key) != 32:
            raise FormatException("[error]: EncodingAESKey invalid!")
        self.token = token
        self.receive_id = receive_id
        self.prp = Prpcrypt(key)

    # -- envelopes (overridden by the JSON variant)

    def _extract(self, post_data: str | bytes) -> tuple[int, str | None]:
        try:
            root = ElementTree.fromstring(post_data)
            node = root.find("Encrypt")
        except Exception:
            return PARSE_ERROR, None
        if node is None or not node.text:
            return PARSE_ERROR, None
        return OK, node.text

    def _generate(self, encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n"
            f"<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )

    # -- the sample's three calls

    def verify_url(
        self, msg_signature: str, timestamp: str, nonce: str, echostr: str
    ) -> tuple[int, str | None]:
        """Check a GET verification and return the echostr plaintext to answer with."""
        code, signature = sha1_signature(self.token, timestamp, nonce, echostr)
        if code != OK:
            return code, None
        if signature != msg_signature:
            return VALIDATE_SIGNATURE_ERROR, None
        code, plain = self.prp.decrypt(echostr, self.receive_id)
        return (code, None) if plain is None else (OK, plain.decode("utf-8"))

    def encrypt_msg(
        self,
        reply_msg: str,
        nonce: str | None = None,
        timestamp: str | None = None,
        *,
        random_prefix: bytes | None = None,
    ) -> tuple[int, str | None]:
        """Encrypt a reply into the signed envelope (timestamp and nonce made when omitted)."""
        timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
        nonce = _nonce() if nonce is None else str(nonce)
        code, encrypt = self.prp.encrypt(reply_msg, self.receive_id, random_prefix=random_prefix)
        if code != OK or encrypt is None:
            return code, None
        code, signature = sha1_signature(self.token, timestamp, nonce, encrypt)
        if code != OK or signature is None:
            return code, None
        try:
            return OK, self._generate(encrypt, signature, timestamp, nonce)
        except Exception:
            return GEN_RETURN_ERROR, None

    def decrypt_msg(
        self, post_data: str | bytes, msg_signature: str, timestamp: str, nonce: str
    ) -> tuple[int, str | None]:
        """Check the signature of a callback envelope and return its plaintext."""
        code, encrypt = self._extract(post_data)
        if code != OK or encrypt is None:
            return code, None
        code, signature = sha1_signature(self.token, timestamp, nonce, encrypt)
        if code != OK:
            return code, None
        if signature != msg_signature:
            return VALIDATE_SIGNATURE_ERROR, None
        code, plain = self.prp.decrypt(encrypt, self.receive_id)
        if plain is None:
            return code, None
        try:
            return OK, plain.decode("utf-8")
        except UnicodeDecodeError:
            return ILLEGAL_BUFFER, None


class WXBizJsonMsgCrypt(WXBizMsgCrypt):
    """The JSON callback wrapper (AI bots): `{"encrypt"}` in, a signed JSON envelope out."""

    def _extract(self, post_data: str | bytes) -> tuple[int, str | None]:
        try:
            body = json.loads(post_data)
        except (TypeError, ValueError):
            return PARSE_ERROR, None
        encrypt = body.get("encrypt") if isinstance(body, dict) else None
        if not isinstance(encrypt, str) or not encrypt:
            return PARSE_ERROR, None
        return OK, encrypt

    def _generate(self, encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
        return json.dumps(
            {"encrypt": encrypt, "msgsignature": signature, "timestamp": timestamp, "nonce": nonce}
        )
