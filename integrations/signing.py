"""Signatures of webhook requests, both ways (the same scheme for the inbound webhook of a key
result and for the outbound webhooks of an organization):

    X-OKR-Timestamp: <Unix time in seconds>
    X-OKR-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes, compares in
constant time, and refuses a timestamp more than five minutes away from its clock (a replayed
request is stale).
"""

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-OKR-Signature"
TIMESTAMP_HEADER = "X-OKR-Timestamp"
TOLERANCE = 300  # seconds


class BadSignature(Exception):
    pass


def new_secret():
    return secrets.token_hex(32)


def sign(secret, timestamp, body):
    message = str(int(timestamp)).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers(secret, body, *, now=None):
    timestamp = int(now if now is not None else time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret, *, timestamp, body, signature, now=None, tolerance=TOLERANCE):
    """Raise BadSignature (with the reason) unless ``signature`` signs ``body`` at
    ``timestamp`` with ``secret``, and ``timestamp`` is within ``tolerance`` seconds of now."""
    if not timestamp or not signature:
        raise BadSignature(f"Send the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers.")
    try:
        moment = int(timestamp)
    except ValueError:
        raise BadSignature(f"{TIMESTAMP_HEADER} is not a Unix time in seconds.") from None
    now = time.time() if now is None else now
    if abs(now - moment) > tolerance:
        raise BadSignature(f"{TIMESTAMP_HEADER} is more than {tolerance // 60} minutes away "
                           "from now: the request is stale, or the sender's clock is wrong.")
    if not hmac.compare_digest(sign(secret, moment, body), signature.strip()):
        raise BadSignature("The signature does not match the body and timestamp.")
