import pytest

from integrations import signing

SECRET = "k" * 64
BODY = b'{"value": 42}'


def test_a_good_signature_verifies():
    h = signing.headers(SECRET, BODY, now=1_800_000_000)
    signing.verify(SECRET, timestamp=h["X-OKR-Timestamp"], body=BODY,
                   signature=h["X-OKR-Signature"], now=1_800_000_010)


@pytest.mark.parametrize("change", ["body", "secret", "timestamp", "signature"])
def test_any_change_breaks_it(change):
    h = signing.headers(SECRET, BODY, now=1_800_000_000)
    kwargs = {"timestamp": h["X-OKR-Timestamp"], "body": BODY,
              "signature": h["X-OKR-Signature"]}
    secret = SECRET
    if change == "body":
        kwargs["body"] = b'{"value": 43}'
    elif change == "secret":
        secret = "x" * 64
    elif change == "timestamp":
        kwargs["timestamp"] = "1800000001"
    else:
        kwargs["signature"] = "sha256=" + "0" * 64
    with pytest.raises(signing.BadSignature, match="does not match"):
        signing.verify(secret, now=1_800_000_000, **kwargs)


def test_a_stale_signature_is_refused():
    h = signing.headers(SECRET, BODY, now=1_800_000_000)
    with pytest.raises(signing.BadSignature, match="stale"):
        signing.verify(SECRET, timestamp=h["X-OKR-Timestamp"], body=BODY,
                       signature=h["X-OKR-Signature"], now=1_800_000_000 + 301)


@pytest.mark.parametrize("timestamp,signature", [("", "sha256=ab"), ("123", ""),
                                                 ("soon", "sha256=ab")])
def test_missing_or_malformed_headers_are_refused(timestamp, signature):
    with pytest.raises(signing.BadSignature):
        signing.verify(SECRET, timestamp=timestamp, body=BODY, signature=signature)


def test_the_signature_is_the_documented_hmac():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, 1_800_000_000, BODY) == f"sha256={expected}"
