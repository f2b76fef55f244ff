"""Drift webhooks: signature and URL rules; difference wire round trip."""

import hashlib
import hmac

import pytest

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.voice_state.drift import check_webhook_url, sign
from teamsvoice.domain.voice_state.planner import Difference, difference_from_wire


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"type":"drift.detected","timestamp":1}'
    assert sign("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) != sign("other", body) and sign("s3cret", body) != sign("s3cret", body + b" ")


@pytest.mark.parametrize("url", ["https://hooks.provider.example/drift", "http://127.0.0.1:8080/x", "http://localhost/x"])
def test_accepted_webhook_urls(url: str) -> None:
    assert check_webhook_url(url, allow_loopback=True) == url


@pytest.mark.parametrize("url, loopback, message", [
    ("http://hooks.provider.example/x", True, "https"),
    ("ftp://hooks.provider.example/x", True, "absolute https"),
    ("https://user:pw@hooks.provider.example/x", True, "user info"),
    ("https://hooks.provider.example/x#frag", True, "fragment"),
    ("https:///x", True, "absolute"),
    ("http://127.0.0.1/x", False, "https"),
    ("https://127.0.0.1/x", False, "loopback"),
    ("https://h.example/" + "a" * 2000, True, "2000"),
])
def test_refused_webhook_urls(url: str, loopback: bool, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_webhook_url(url, allow_loopback=loopback)
    assert message in caught.value.message


def test_a_difference_survives_its_wire_form() -> None:
    d = Difference("user:a@c:phoneNumber", "user", "a@c", "phoneNumber", "change", "+1", ["+2"], "number_changed", "x", "id")
    assert difference_from_wire(d.wire()) == d
