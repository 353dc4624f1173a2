"""Golden vectors (platforms.md §5.4), the AI-bot JSON envelope and hostile bodies."""

from __future__ import annotations

import base64
import json
import struct
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given
from hypothesis import strategies as st

from bot.wecom.crypto import MAX_BODY_BYTES, WeComCrypto, WeComCryptoError

# Vector A: the official WeCom sample (sbzhu/weworkapi_python callback/Sample.py).
A_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
A_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
A_CORPID = "ww1436e0e65a779aee"
A_VERIFY = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": (
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    ),
}
A_MSG_QUERY = {
    "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "timestamp": "1476422779",
    "nonce": "1597212914",
}
A_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBh"
    "zTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD"
    "4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24"
    "qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8j"
    "mnKiypE+"
)

# Vector B: wechatpy tests/test_crypto.py.
B_TOKEN = "123456"
B_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
B_CORPID = "wx49f0ab532d5d035a"
B_ECHOSTR = (
    "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
)
B_ENCRYPT_IN = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTye"
    "DXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBu"
    "g/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZl"
    "F3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb"
    "++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
B_REPLY_PLAINTEXT = (
    "<xml>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
    "<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "</xml>"
)
B_ENCRYPT_OUT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8"
    "GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2"
    "Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXa"
    "fG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF"
    "9XiKzHo3"
)
B_SIGNATURE_OUT = "407518b7649e86ef23978113f92d27afa9296533"
B_TIMESTAMP = "1411525903"
B_NONCE = "461056294"

# JSON (AI bot) vector: vector A's token and key, receiveid "" (§8.1), random prefix fixed.
# Computed once with this module and cross-checked with `openssl enc -d -aes-256-cbc -nopad`.
J_PLAINTEXT = (
    '{"msgid":"msg-0001","aibotid":"aib-0001","chattype":"group","from":{"userid":"zhangsan"},'
    '"msgtype":"text","text":{"content":"@积分助手 /我的积分"}}'
)
J_TIMESTAMP = "1700000000"
J_NONCE = "nonce123"
J_ENCRYPT = (
    "/K4xJYsBwQssQzE/v2nbvAdwWaSjMnLk2y0gjsUoll7XUA9yEX5dkg1d5vT+u8BwTWZvrO08u/3t+5TYxUrASRAURUUkG"
    "qjsB4Co382LIiJFRSwMKIOGV0uIC63jIVG3lKnoqh/vu+rMdPktRpo7FSRxMePZU15nt9kOWL3JvoWX+bYWUkRP3LVxGWv"
    "ngjbVfFlt6bDK31LjstSbwmOrkD51HFbX+s8cHMZ/Gwh+YGGG2MCIGtugHdVmVPH9eevP"
)
J_SIGNATURE = "d964cc852e19935c9605630bafdbfd97eab397e7"
FIXED_PREFIX = b"1234567890123456"


def crypto_a(receive_id: str = A_CORPID) -> WeComCrypto:
    return WeComCrypto(token=A_TOKEN, encoding_aes_key=A_KEY, receive_id=receive_id)


def crypto_b() -> WeComCrypto:
    return WeComCrypto(token=B_TOKEN, encoding_aes_key=B_KEY, receive_id=B_CORPID)


def crypto_bot() -> WeComCrypto:
    return crypto_a(receive_id="")


def app_body(encrypted: str, to_user: str = A_CORPID, agent_id: str = "1000002") -> bytes:
    """The outer XML of an app callback POST (§5.2)."""
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>\n"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
    ).encode()


def raw_encrypt(plain: bytes, key: str = A_KEY) -> str:
    """AES-256-CBC with the WeCom key/iv and no padding at all: for hand-built bad plaintexts."""
    assert len(plain) % 16 == 0
    aes_key = base64.b64decode(key + "=")
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def raw_decrypt(encrypted: str, key: str = A_KEY) -> bytes:
    aes_key = base64.b64decode(key + "=")
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()


def pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


def signed_xml(crypto: WeComCrypto, inner: str, *, timestamp: str = "1", nonce: str = "n") -> dict:
    """Keyword arguments for decrypt_xml carrying `inner`, correctly encrypted and signed."""
    encrypted = crypto.encrypt(inner)
    signature = crypto.signature(timestamp=timestamp, nonce=nonce, encrypted=encrypted)
    return {
        "body": app_body(encrypted),
        "msg_signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
    }


def signed_json(
    crypto: WeComCrypto, outer: object, *, timestamp: str = "1", nonce: str = "n"
) -> dict:
    """Keyword arguments for decrypt_json with `outer` as body, signed over its `encrypt`."""
    encrypted = outer.get("encrypt", "") if isinstance(outer, dict) else ""
    signature = crypto.signature(timestamp=timestamp, nonce=nonce, encrypted=str(encrypted))
    return {
        "body": json.dumps(outer).encode(),
        "msg_signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
    }


def assert_code(code: int, excinfo: pytest.ExceptionInfo[WeComCryptoError]) -> None:
    assert excinfo.value.code == code, excinfo.value.reason


# --- Vector A ---------------------------------------------------------------------------------


def test_vector_a_verify_url_returns_the_bare_plaintext() -> None:
    assert crypto_a().verify_url(**A_VERIFY) == "1288432023552776189"


def test_vector_a_signature_is_the_sorted_sha1() -> None:
    signature = crypto_a().signature(
        timestamp=A_MSG_QUERY["timestamp"], nonce=A_MSG_QUERY["nonce"], encrypted=A_ENCRYPT
    )
    assert signature == A_MSG_QUERY["msg_signature"]


def test_vector_a_decrypt_xml_gives_the_text_message() -> None:
    fields = crypto_a().decrypt_xml(body=app_body(A_ENCRYPT), **A_MSG_QUERY)
    assert fields == {
        "ToUserName": A_CORPID,
        "FromUserName": "ChenJiaShun",
        "CreateTime": "1476422779",
        "MsgType": "text",
        "Content": "你好",
        "MsgId": "1456453720",
        "AgentID": "1000002",
    }


def test_vector_a_uses_a_22_byte_pad() -> None:
    assert raw_decrypt(A_ENCRYPT)[-22:] == bytes([22]) * 22


def test_vector_a_changed_nonce_fails_the_signature() -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt_xml(body=app_body(A_ENCRYPT), **{**A_MSG_QUERY, "nonce": "1597212915"})
    assert_code(-40001, excinfo)
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().verify_url(**{**A_VERIFY, "nonce": "47744684"})
    assert_code(-40001, excinfo)


# --- Vector B ---------------------------------------------------------------------------------


def test_vector_b_check_signature_passes() -> None:
    plaintext = crypto_b().verify_url(
        msg_signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        timestamp="1411443780",
        nonce="437374425",
        echostr=B_ECHOSTR,
    )
    assert plaintext == "5927782489442352469"


def test_vector_b_check_signature_fails_with_another_nonce() -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_b().verify(
            msg_signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            timestamp="1411443780",
            nonce="437374424",
            encrypted=B_ECHOSTR,
        )
    assert_code(-40001, excinfo)


def test_vector_b_decrypt_xml() -> None:
    fields = crypto_b().decrypt_xml(
        body=app_body(B_ENCRYPT_IN, to_user=B_CORPID, agent_id="1"),
        msg_signature="74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
        timestamp=B_TIMESTAMP,
        nonce=B_NONCE,
    )
    assert fields["FromUserName"] == "messense"
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "test"
    assert fields["MsgId"] == "4363689963896700987"
    assert fields["AgentID"] == "1"


def test_vector_b_encrypt_is_byte_exact() -> None:
    crypto = crypto_b()
    assert crypto.encrypt(B_REPLY_PLAINTEXT, random_prefix=FIXED_PREFIX) == B_ENCRYPT_OUT
    reply = crypto.encrypt_xml_reply(
        B_REPLY_PLAINTEXT, timestamp=B_TIMESTAMP, nonce=B_NONCE, random_prefix=FIXED_PREFIX
    )
    root = ET.fromstring(reply)
    assert root.tag == "xml"
    assert root.findtext("Encrypt") == B_ENCRYPT_OUT
    assert root.findtext("MsgSignature") == B_SIGNATURE_OUT
    assert root.findtext("TimeStamp") == B_TIMESTAMP
    assert root.findtext("Nonce") == B_NONCE


def test_xml_reply_matches_the_official_template() -> None:
    reply = crypto_b().encrypt_xml_reply(
        B_REPLY_PLAINTEXT, timestamp=B_TIMESTAMP, nonce=B_NONCE, random_prefix=FIXED_PREFIX
    )
    assert reply == (
        f"<xml>\n<Encrypt><![CDATA[{B_ENCRYPT_OUT}]]></Encrypt>\n"
        f"<MsgSignature><![CDATA[{B_SIGNATURE_OUT}]]></MsgSignature>\n"
        f"<TimeStamp>{B_TIMESTAMP}</TimeStamp>\n<Nonce><![CDATA[{B_NONCE}]]></Nonce>\n</xml>"
    )


def test_xml_reply_decrypts_back_as_a_callback() -> None:
    crypto = crypto_b()
    reply = crypto.encrypt_xml_reply(B_REPLY_PLAINTEXT, timestamp=B_TIMESTAMP, nonce=B_NONCE)
    root = ET.fromstring(reply)
    fields = crypto.decrypt_xml(
        body=reply.encode(),
        msg_signature=root.findtext("MsgSignature") or "",
        timestamp=B_TIMESTAMP,
        nonce=B_NONCE,
    )
    assert fields == {
        "MsgType": "text",
        "Content": "test",
        "FromUserName": B_CORPID,
        "ToUserName": "messense",
        "AgentID": "1",
        "CreateTime": "1411525903",
    }


# --- JSON (AI bot) ----------------------------------------------------------------------------


def test_json_vector_is_pinned() -> None:
    reply = crypto_bot().encrypt_json_reply(
        J_PLAINTEXT, timestamp=J_TIMESTAMP, nonce=J_NONCE, random_prefix=FIXED_PREFIX
    )
    assert reply == {
        "encrypt": J_ENCRYPT,
        "msgsignature": J_SIGNATURE,
        "timestamp": J_TIMESTAMP,
        "nonce": J_NONCE,
    }


def test_json_vector_decrypts() -> None:
    message = crypto_bot().decrypt_json(
        body=json.dumps({"encrypt": J_ENCRYPT}).encode(),
        msg_signature=J_SIGNATURE,
        timestamp=J_TIMESTAMP,
        nonce=J_NONCE,
    )
    assert message == json.loads(J_PLAINTEXT)
    assert message["text"]["content"] == "@积分助手 /我的积分"


def test_json_round_trip() -> None:
    crypto = crypto_bot()
    obj = {
        "msgtype": "stream",
        "stream": {"id": "s-1", "finish": True, "content": "**积分** 12.5 分"},
    }
    reply = crypto.encrypt_json_reply(json.dumps(obj), timestamp="1700000001", nonce="abc")
    assert set(reply) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    message = crypto.decrypt_json(
        body=json.dumps({"encrypt": reply["encrypt"]}).encode(),
        msg_signature=reply["msgsignature"],
        timestamp=reply["timestamp"],
        nonce=reply["nonce"],
    )
    assert message == obj


def test_json_verify_url_with_empty_receive_id() -> None:
    crypto = crypto_bot()
    echostr = crypto.encrypt("8765432101234567")
    signature = crypto.signature(timestamp="1", nonce="2", encrypted=echostr)
    plain = crypto.verify_url(msg_signature=signature, timestamp="1", nonce="2", echostr=echostr)
    assert plain == "8765432101234567"


# --- Encryption details -----------------------------------------------------------------------


def test_default_random_prefix_is_16_digits_and_fresh() -> None:
    crypto = crypto_a()
    first, second = crypto.encrypt("same"), crypto.encrypt("same")
    assert first != second
    prefix = raw_decrypt(first)[:16]
    assert prefix.isdigit() and len(prefix) == 16


def test_aligned_plaintext_gets_a_whole_pad_block() -> None:
    # 16 random + 4 length + 12 message + 0 receiveid = 32: the pad is a full block of 32s.
    encrypted = crypto_bot().encrypt("abcdefghijkl", random_prefix=FIXED_PREFIX)
    plain = raw_decrypt(encrypted)
    assert len(plain) == 64
    assert plain[32:] == bytes([32]) * 32
    assert plain[16:20] == struct.pack(">I", 12)


def test_random_prefix_must_be_16_bytes() -> None:
    with pytest.raises(ValueError):
        crypto_a().encrypt("x", random_prefix=b"123")


def test_decrypt_xml_maps_nested_elements_to_empty() -> None:
    inner = (
        "<xml><MsgType><![CDATA[event]]></MsgType><Event>template_card_event</Event>"
        "<SelectedItems><SelectedItem><QuestionKey>q</QuestionKey></SelectedItem></SelectedItems>"
        "<Empty></Empty><Spaced>  keep me  </Spaced></xml>"
    )
    fields = crypto_a().decrypt_xml(**signed_xml(crypto_a(), inner))
    assert fields == {
        "MsgType": "event",
        "Event": "template_card_event",
        "SelectedItems": "",
        "Empty": "",
        "Spaced": "  keep me  ",
    }


# --- Negative cases ---------------------------------------------------------------------------


def test_wrong_receive_id_is_40005() -> None:
    other = crypto_a(receive_id="ww0000000000000000")
    with pytest.raises(WeComCryptoError) as excinfo:
        other.decrypt_xml(body=app_body(A_ENCRYPT), **A_MSG_QUERY)
    assert_code(-40005, excinfo)
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_bot().decrypt(A_ENCRYPT)  # an app message is not an AI-bot message
    assert_code(-40005, excinfo)
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(J_ENCRYPT)  # nor the other way round
    assert_code(-40005, excinfo)


@pytest.mark.parametrize(
    "encrypted",
    [A_VERIFY["echostr"][:-1], A_VERIFY["echostr"][:-3], "!!!!", "AAAA AAAA", "é" * 8],
    ids=["truncated-1", "truncated-3", "garbage", "whitespace", "non-ascii"],
)
def test_bad_base64_is_40010(encrypted: str) -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(encrypted)
    assert_code(-40010, excinfo)


@pytest.mark.parametrize("size", [0, 15, 17, 31])
def test_partial_aes_blocks_are_40007(size: int) -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(base64.b64encode(b"\x01" * size).decode())
    assert_code(-40007, excinfo)


def body_of(message: bytes, receive_id: bytes = A_CORPID.encode()) -> bytes:
    return FIXED_PREFIX + struct.pack(">I", len(message)) + message + receive_id


@pytest.mark.parametrize(
    "last_block",
    [
        b"x" * 31 + b"\x00",  # pad 0
        b"x" * 31 + b"\x21",  # pad 33 > block size
        b"x" * 31 + b"\xff",  # pad 255
        b"x" * 27 + b"\x05\x05\x04\x05\x05",  # pad 5 with one unequal byte
        b"x" * 31 + b"\x02",  # pad 2, preceded by a non-pad byte
    ],
    ids=["zero", "33", "255", "unequal", "short-run"],
)
def test_bad_padding_is_40007(last_block: bytes) -> None:
    encrypted = raw_encrypt(body_of(b"hello") + b"x" * 5 + last_block)
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(encrypted)
    assert_code(-40007, excinfo)


def test_pad_longer_than_the_plaintext_is_40007() -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(raw_encrypt(b"\x20" * 16))
    assert_code(-40007, excinfo)


def test_tampered_ciphertext_is_rejected() -> None:
    # Flipping ciphertext byte 0 flips plaintext byte 16, the top byte of the message length,
    # which then overruns the plaintext: deterministic -40008.
    raw = bytearray(base64.b64decode(A_ENCRYPT))
    raw[0] ^= 0x80
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(base64.b64encode(bytes(raw)).decode())
    assert_code(-40008, excinfo)


@pytest.mark.parametrize(
    "plain",
    [
        pad32(FIXED_PREFIX + struct.pack(">I", 1000) + b"hi" + A_CORPID.encode()),
        pad32(FIXED_PREFIX + b"\x00\x00"),  # too short to hold the length
        pad32(body_of(b"\xff\xfe bad utf-8")),
    ],
    ids=["overrun", "short", "not-utf8"],
)
def test_illegal_buffer_is_40008(plain: bytes) -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt(raw_encrypt(plain))
    assert_code(-40008, excinfo)


def test_hand_built_valid_plaintext_decrypts() -> None:
    # The raw helpers themselves are sound: the same layout with valid padding works.
    assert crypto_a().decrypt(raw_encrypt(pad32(body_of("你好".encode())))) == "你好"


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0" * 40,
        A_MSG_QUERY["msg_signature"].upper(),
        A_MSG_QUERY["msg_signature"] + "0",
        "签名",
    ],
)
def test_wrong_signature_is_40001(signature: str) -> None:
    query = {**A_MSG_QUERY, "msg_signature": signature}
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt_xml(body=app_body(A_ENCRYPT), **query)
    assert_code(-40001, excinfo)


def test_json_wrong_signature_is_40001() -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_bot().decrypt_json(
            body=json.dumps({"encrypt": J_ENCRYPT}).encode(),
            msg_signature=J_SIGNATURE,
            timestamp="1700000001",
            nonce=J_NONCE,
        )
    assert_code(-40001, excinfo)


@pytest.mark.parametrize(
    "key",
    [A_KEY[:-1], A_KEY + "A", "", "!" * 43, "é" * 43, A_KEY[:-1] + "="],
    ids=["42", "44", "empty", "not-base64", "non-ascii", "padded"],
)
def test_bad_key_is_40004(key: str) -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        WeComCrypto(token=A_TOKEN, encoding_aes_key=key, receive_id=A_CORPID)
    assert_code(-40004, excinfo)


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError):
        WeComCrypto(token="", encoding_aes_key=A_KEY, receive_id=A_CORPID)


def test_error_carries_code_and_reason() -> None:
    error = WeComCryptoError(-40001, "msg_signature does not match")
    assert (error.code, error.reason) == (-40001, "msg_signature does not match")
    assert "-40001" in str(error)


HOSTILE_XML = {
    "doctype": b'<?xml version="1.0"?><!DOCTYPE xml><xml><Encrypt>AAAA</Encrypt></xml>',
    "external-entity": (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&xxe;</Encrypt></xml>"
    ),
    "external-dtd": (
        b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">'
        b"<xml><Encrypt>AAAA</Encrypt></xml>"
    ),
    "billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
            for i in range(1, 10)
        )
        + b"]><xml><Encrypt>&lol9;</Encrypt></xml>"
    ),
    "malformed": b"<xml><Encrypt>AAAA</Encrypt>",
    "not-xml": b"encrypt=AAAA",
    "empty": b"",
    "no-encrypt": b"<xml><ToUserName>ww</ToUserName></xml>",
    "empty-encrypt": b"<xml><Encrypt></Encrypt></xml>",
    "nested-encrypt": b"<xml><Outer><Encrypt>AAAA</Encrypt></Outer></xml>",
}


@pytest.mark.parametrize("body", HOSTILE_XML.values(), ids=HOSTILE_XML.keys())
def test_hostile_or_broken_xml_is_40002(body: bytes) -> None:
    # The signature is deliberately "valid" for AAAA: parsing must fail before anything else.
    signature = crypto_a().signature(timestamp="1", nonce="n", encrypted="AAAA")
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt_xml(body=body, msg_signature=signature, timestamp="1", nonce="n")
    assert_code(-40002, excinfo)


def test_hostile_inner_xml_is_40002() -> None:
    inner = '<!DOCTYPE x [<!ENTITY e "boom">]><xml><Content>&e;</Content></xml>'
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt_xml(**signed_xml(crypto_a(), inner))
    assert_code(-40002, excinfo)


def test_inner_not_xml_is_40002() -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt_xml(**signed_xml(crypto_a(), "1288432023552776189"))
    assert_code(-40002, excinfo)


def test_xml_body_over_the_cap_is_40002() -> None:
    body = app_body(A_ENCRYPT)
    big = body[:-6] + b" " * (MAX_BODY_BYTES + 1 - len(body)) + body[-6:]
    assert len(big) == MAX_BODY_BYTES + 1
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().decrypt_xml(body=big, **A_MSG_QUERY)
    assert_code(-40002, excinfo)
    # Exactly at the cap is still parsed.
    at_cap = body[:-6] + b" " * (MAX_BODY_BYTES - len(body)) + body[-6:]
    assert crypto_a().decrypt_xml(body=at_cap, **A_MSG_QUERY)["Content"] == "你好"


def test_json_body_over_the_cap_is_40002() -> None:
    body = json.dumps({"encrypt": J_ENCRYPT, "pad": "x" * MAX_BODY_BYTES}).encode()
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_bot().decrypt_json(
            body=body, msg_signature=J_SIGNATURE, timestamp=J_TIMESTAMP, nonce=J_NONCE
        )
    assert_code(-40002, excinfo)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"\xff\xfe\x00garbage",
        b'{"encrypt": "AAAA"',
        b"[" * 60_000,
    ],
    ids=["text", "empty", "binary", "truncated", "deep-nesting"],
)
def test_non_json_body_is_40002(body: bytes) -> None:
    signature = crypto_bot().signature(timestamp="1", nonce="n", encrypted="AAAA")
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_bot().decrypt_json(body=body, msg_signature=signature, timestamp="1", nonce="n")
    assert_code(-40002, excinfo)


@pytest.mark.parametrize(
    "outer",
    [[J_ENCRYPT], {"Encrypt": J_ENCRYPT}, {"encrypt": 12345}, {"encrypt": None}, {"encrypt": ""}],
    ids=["array", "wrong-case", "number", "null", "empty"],
)
def test_json_without_a_string_encrypt_is_40002(outer: object) -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_bot().decrypt_json(**signed_json(crypto_bot(), outer))
    assert_code(-40002, excinfo)


@pytest.mark.parametrize("inner", ["[1, 2]", '"text"', "42", "null", "not json", ""])
def test_json_inner_not_an_object_is_40002(inner: str) -> None:
    crypto = crypto_bot()
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto.decrypt_json(**signed_json(crypto, {"encrypt": crypto.encrypt(inner)}))
    assert_code(-40002, excinfo)


@pytest.mark.parametrize(
    ("timestamp", "nonce"),
    [("1", "a]]>b"), ("1", "<x>"), ("1", "a&b"), ("1 ", "n"), ("1<", "n"), ("", "n"), ("1", "é")],
)
def test_xml_reply_refuses_values_that_break_the_envelope(timestamp: str, nonce: str) -> None:
    with pytest.raises(WeComCryptoError) as excinfo:
        crypto_a().encrypt_xml_reply("hi", timestamp=timestamp, nonce=nonce)
    assert_code(-40011, excinfo)


# --- Properties -------------------------------------------------------------------------------


@given(text=st.text(), receive_id=st.sampled_from([A_CORPID, "", "wx-套件"]))
@example(text="", receive_id=A_CORPID)
@example(text="", receive_id="")
@example(text="你好，党员积分 🎉", receive_id=A_CORPID)
@example(text="a" * 12, receive_id="")
def test_round_trip(text: str, receive_id: str) -> None:
    crypto = crypto_a(receive_id=receive_id)
    encrypted = crypto.encrypt(text)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert crypto.decrypt(encrypted) == text


@given(text=st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)))
def test_round_trip_through_the_json_envelope(text: str) -> None:
    crypto = crypto_bot()
    reply = crypto.encrypt_json_reply(
        json.dumps({"content": text}, ensure_ascii=False), timestamp="1", nonce="n"
    )
    message = crypto.decrypt_json(
        body=json.dumps({"encrypt": reply["encrypt"]}).encode(),
        msg_signature=reply["msgsignature"],
        timestamp="1",
        nonce="n",
    )
    assert message == {"content": text}
