"""The wire protocol's one definition: what the device sends and how it reads the server's replies."""

import pytest

from sc2deploy import wire


def test_a_request_carries_the_token_the_body_type_and_the_bundle():
    assert wire.request_headers("t0k3n", "abc") == {
        "Authorization": "Bearer t0k3n", "Content-Type": "application/octet-stream",
        "X-Sc2deploy-Bundle": "abc"}


@pytest.mark.parametrize("header,token", [
    ("Bearer abc", "abc"), ("bearer abc ", "abc"), ("BEARER  abc", "abc"),
    ("Basic abc", None), ("", None), (None, None), ("Bearer", "")])
def test_the_server_reads_the_bearer_token(header, token):
    assert wire.bearer_token(header) == token


def test_an_answer_names_its_request_and_a_resend_is_marked():
    answer = wire.answer("r-1", "digest", [{"task": "decode"}], {"decode": 1.0, "total": 1.0}, 2)
    assert answer == {"protocol": wire.PROTOCOL, "request_id": "r-1", "bundle": "digest",
                      "outputs": [{"task": "decode"}], "batch_size": 2, "replayed": False,
                      "server_ms": {"decode": 1.0, "total": 1.0}}
    assert wire.is_answer(200, answer, "r-1") and not wire.is_answer(200, answer, "r-2")
    assert not wire.is_answer(500, answer, "r-1")
    assert wire.replayed(answer)["replayed"] and not answer["replayed"]
    served = wire.served_by(answer, {"node": "n", "replica": "r"})
    assert served["served_by"] == {"node": "n", "replica": "r"} and "served_by" not in answer


@pytest.mark.parametrize("status,body,final", [
    (401, wire.refusal(401, "wrong token", "r"), True),
    (409, wire.refusal(409, "another bundle"), True),
    (429, wire.refusal(429, "slow down", "r"), False),  # retried, like 5xx
    (500, wire.refusal(500, "server error", "r"), False),
    (404, {"error": "Path '/v1/infer' not found."}, False),  # a proxy before the app is up
    (404, wire.refusal(400, "mismatched status", "r"), False),
    (None, {"error": "ConnectionResetError"}, False)])
def test_only_the_servers_own_4xx_is_a_final_refusal(status, body, final):
    assert wire.is_refusal(status, body) is final


def test_request_ids_are_short_and_plain():
    assert wire.REQUEST_ID.fullmatch("a1b2c3-000001") and wire.REQUEST_ID.fullmatch("x" * 64)
    assert not wire.REQUEST_ID.fullmatch("x" * 65) and not wire.REQUEST_ID.fullmatch("a b")
