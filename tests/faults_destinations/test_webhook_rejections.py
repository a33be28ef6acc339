"""How the webhook reads per-record rejections from a 2xx answer (the parsing alone; the
end-to-end behaviour is in test_answers.py)."""
from __future__ import annotations

import json

import httpx

from connectors.webhook import EXCERPT, WebhookClient

SECRET = "whsec-rejections-0123456789"


def _client() -> WebhookClient:
    return WebhookClient({"url": "https://hooks.example.com/in?token=t0k3n", "secret": SECRET})


def _answer(body) -> httpx.Response:
    return httpx.Response(200, content=body if isinstance(body, bytes) else json.dumps(body).encode())


def test_listed_ids_of_the_request_are_rejected_with_their_reason():
    answer = _answer({"rejected": [{"export_id": 1, "reason": "bad  email\n"}, {"export_id": "2"},
                                   {"export_id": 99, "reason": "not in this request"}, {"reason": "no id"},
                                   "junk", {"export_id": None}]})
    assert _client().rejections(answer, {1, 2, 3}) == {1: "bad email", 2: "no reason given"}


def test_any_other_body_rejects_nothing():
    for body in (b"", b"ok", b"[1, 2]", b"{\"rejected\": {\"export_id\": 1}}", b"{not json", b"\xff\xfe"):
        assert _client().rejections(_answer(body), {1}) == {}


def test_reasons_are_cut_and_never_echo_the_secret():
    answer = _answer({"rejected": [{"export_id": 1, "reason": f"signed with {SECRET}: " + "x" * 1000}]})
    reason = _client().rejections(answer, {1})[1]
    assert SECRET not in reason and "********" in reason
    assert len(reason) == EXCERPT and reason.endswith("...")
