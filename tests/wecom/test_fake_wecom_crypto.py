"""The fake WeCom's own WXBizMsgCrypt, pinned by the golden vectors of platforms.md §5.4."""

from __future__ import annotations

import base64
import json

import pytest
from defusedxml import ElementTree

from bot.fakes.wecom_crypto import (
    DECODE_BASE64_ERROR,
    ILLEGAL_BUFFER,
    OK,
    PARSE_ERROR,
    VALIDATE_RECEIVEID_ERROR,
    VALIDATE_SIGNATURE_ERROR,
    FormatException,
    PKCS7Encoder,
    Prpcrypt,
    WXBizJsonMsgCrypt,
    WXBizMsgCrypt,
    sha1_signature,
)

# Vector A: the official WeCom sample (sbzhu/weworkapi_python callback/Sample.py).
A_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
A_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
A_CORP = "ww1436e0e65a779aee"
A_VERIFY = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": (
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    ),
}
A_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTk"
    "AgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJP"
    "QbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7Mhm"
    "EbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/"
    "oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
A_POST = (
    f"<xml><ToUserName><![CDATA[{A_CORP}]]></ToUserName>\n"
    f"<Encrypt><![CDATA[{A_ENCRYPT}]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID></xml>"
)
A_PLAIN = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)

# Vector B: wechatpy tests/test_crypto.py.
B_TOKEN = "123456"
B_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
B_CORP = "wx49f0ab532d5d035a"
B_ECHOSTR = (
    "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
)
B_DECRYPT_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHC"
    "rsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpX"
    "aG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQi"
    "MS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQi"
    "pvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
B_PLAIN = (
    "<xml>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
    "<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "</xml>"
)
B_ENCRYPTED = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNc"
    "BqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY"
    "0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsV"
    "bwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAG"
    "VRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)


def _xml_field(xml_text: str, name: str) -> str:
    node = ElementTree.fromstring(xml_text).find(name)
    assert node is not None and node.text is not None
    return node.text


# --------------------------------------------------------------------------- vector A


def test_vector_a_verify_url_returns_the_echo_plaintext() -> None:
    crypt = WXBizMsgCrypt(A_TOKEN, A_KEY, A_CORP)
    assert crypt.verify_url(**A_VERIFY) == (OK, "1288432023552776189")


def test_vector_a_echostr_has_the_documented_random_prefix() -> None:
    crypt = WXBizMsgCrypt(A_TOKEN, A_KEY, A_CORP)
    key = base64.b64decode(A_KEY + "=")
    assert crypt.prp.key == key and crypt.prp.iv == key[:16]
    code, plain = Prpcrypt(key).decrypt(A_VERIFY["echostr"], A_CORP)
    assert code == OK and plain == b"1288432023552776189"


def test_vector_a_signature() -> None:
    code, signature = sha1_signature(A_TOKEN, "1476422779", "1597212914", A_ENCRYPT)
    assert (code, signature) == (OK, "0c3914025cb4b4d68103f6bfc8db550f79dcf48e")


def test_vector_a_decrypt_msg() -> None:
    crypt = WXBizMsgCrypt(A_TOKEN, A_KEY, A_CORP)
    code, xml_text = crypt.decrypt_msg(
        A_POST, "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914"
    )
    assert code == OK
    assert xml_text == A_PLAIN
    assert _xml_field(xml_text, "Content") == "你好"
    assert _xml_field(xml_text, "FromUserName") == "ChenJiaShun"


def test_vector_a_pad_byte_is_22() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(A_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = decryptor.update(base64.b64decode(A_ENCRYPT)) + decryptor.finalize()
    assert raw[-1] == 22
    assert raw.endswith(A_CORP.encode() + bytes([22]) * 22)


def test_vector_a_wrong_signature_and_wrong_receiveid_are_refused() -> None:
    crypt = WXBizMsgCrypt(A_TOKEN, A_KEY, A_CORP)
    bad_signature = "0" * 40
    assert crypt.decrypt_msg(A_POST, bad_signature, "1476422779", "1597212914") == (
        VALIDATE_SIGNATURE_ERROR,
        None,
    )
    other = WXBizMsgCrypt(A_TOKEN, A_KEY, "wwsomeoneelse")
    assert other.decrypt_msg(
        A_POST, "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914"
    ) == (VALIDATE_RECEIVEID_ERROR, None)


# --------------------------------------------------------------------------- vector B


def test_vector_b_check_signature_ok_and_echo() -> None:
    crypt = WXBizMsgCrypt(B_TOKEN, B_KEY, B_CORP)
    assert crypt.verify_url(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", B_ECHOSTR
    ) == (OK, "5927782489442352469")


def test_vector_b_wrong_nonce_must_fail() -> None:
    crypt = WXBizMsgCrypt(B_TOKEN, B_KEY, B_CORP)
    assert crypt.verify_url(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", B_ECHOSTR
    ) == (VALIDATE_SIGNATURE_ERROR, None)


def test_vector_b_decrypt() -> None:
    crypt = WXBizMsgCrypt(B_TOKEN, B_KEY, B_CORP)
    post = (
        f"<xml><ToUserName><![CDATA[{B_CORP}]]></ToUserName>"
        f"<Encrypt><![CDATA[{B_DECRYPT_ENCRYPT}]]></Encrypt></xml>"
    )
    code, xml_text = crypt.decrypt_msg(
        post, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294"
    )
    assert code == OK and xml_text is not None
    assert _xml_field(xml_text, "FromUserName") == "messense"
    assert _xml_field(xml_text, "MsgType") == "text"
    assert _xml_field(xml_text, "Content") == "test"
    assert _xml_field(xml_text, "MsgId") == "4363689963896700987"
    assert _xml_field(xml_text, "AgentID") == "1"


def test_vector_b_deterministic_encrypt() -> None:
    crypt = WXBizMsgCrypt(B_TOKEN, B_KEY, B_CORP)
    code, envelope = crypt.encrypt_msg(
        B_PLAIN, "461056294", "1411525903", random_prefix=b"1234567890123456"
    )
    assert code == OK and envelope is not None
    assert _xml_field(envelope, "Encrypt") == B_ENCRYPTED
    assert _xml_field(envelope, "MsgSignature") == "407518b7649e86ef23978113f92d27afa9296533"
    assert _xml_field(envelope, "TimeStamp") == "1411525903"
    assert _xml_field(envelope, "Nonce") == "461056294"
    # ...and the envelope decrypts back with its own signature.
    assert crypt.decrypt_msg(
        envelope, "407518b7649e86ef23978113f92d27afa9296533", "1411525903", "461056294"
    ) == (OK, B_PLAIN)


# --------------------------------------------------------------------------- the rest


def test_pkcs7_block_32_always_pads() -> None:
    encoder = PKCS7Encoder()
    assert encoder.encode(b"") == bytes([32]) * 32
    assert encoder.encode(b"x" * 32) == b"x" * 32 + bytes([32]) * 32
    assert encoder.encode(b"x" * 31) == b"x" * 31 + b"\x01"
    assert encoder.decode(encoder.encode(b"abc")) == b"abc"
    assert encoder.decode(b"abc\x00") == b"abc\x00"  # pad 0: the sample's lenient rule


def test_random_prefix_is_16_ascii_digits() -> None:
    prefix = Prpcrypt.get_random_str()
    assert len(prefix) == 16 and prefix.isdigit()


def test_json_variant_round_trip_with_empty_receiveid() -> None:
    crypt = WXBizJsonMsgCrypt(A_TOKEN, A_KEY, "")
    message = json.dumps({"msgtype": "text", "text": {"content": "@积分助手 /我的积分"}})
    code, envelope = crypt.encrypt_msg(message, "12345", "1700000000")
    assert code == OK and envelope is not None
    reply = json.loads(envelope)
    assert set(reply) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    assert (
        sha1_signature(A_TOKEN, "1700000000", "12345", reply["encrypt"])[1]
        == (reply["msgsignature"])
    )
    body = json.dumps({"encrypt": reply["encrypt"]})
    assert crypt.decrypt_msg(body, reply["msgsignature"], "1700000000", "12345") == (OK, message)
    # The same ciphertext is refused where the receiveid is a corpid.
    app = WXBizJsonMsgCrypt(A_TOKEN, A_KEY, A_CORP)
    assert app.decrypt_msg(body, reply["msgsignature"], "1700000000", "12345")[0] == (
        VALIDATE_RECEIVEID_ERROR
    )


def test_malformed_input_codes() -> None:
    crypt = WXBizMsgCrypt(A_TOKEN, A_KEY, A_CORP)
    assert crypt.decrypt_msg("<xml><nope/></xml>", "x", "1", "2") == (PARSE_ERROR, None)
    assert crypt.decrypt_msg("not xml", "x", "1", "2") == (PARSE_ERROR, None)
    assert WXBizJsonMsgCrypt(A_TOKEN, A_KEY, "").decrypt_msg("{}", "x", "1", "2") == (
        PARSE_ERROR,
        None,
    )
    assert crypt.prp.decrypt("***", A_CORP) == (DECODE_BASE64_ERROR, None)
    # A valid ciphertext whose length field points past the end.
    code, encrypted = crypt.prp.encrypt(b"", "", random_prefix=b"0" * 16)
    assert code == OK and encrypted is not None
    key = crypt.prp.key
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = b"0" * 16 + (999).to_bytes(4, "big") + b"abc"
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    bogus = encryptor.update(PKCS7Encoder().encode(plain)) + encryptor.finalize()
    assert crypt.prp.decrypt(base64.b64encode(bogus).decode(), "") == (ILLEGAL_BUFFER, None)


@pytest.mark.parametrize("key", ["short", A_KEY + "A", "!" * 43])
def test_bad_encoding_aes_key_is_refused(key: str) -> None:
    with pytest.raises(FormatException):
        WXBizMsgCrypt(A_TOKEN, key, A_CORP)
