"""Replies share the pooled connection to the upstream instead of opening one each."""
from __future__ import annotations

from tests.workers.test_reply_failures import finished_reply, send


def test_consecutive_replies_reuse_one_upstream_connection(api, alice, make_chat, fake_upstream):
    """A reply closed its response at `[DONE]`, before the stream's last chunk was read, so the
    client dropped the connection: every reply opened a new one (over TLS, a new handshake
    before its first token)."""
    chat = make_chat(alice)
    for _ in range(2):
        send(api, alice, chat["id"])
        assert finished_reply(api, alice, chat["id"])["status"] == "DELIVERED"
    first, second = (request["peer"] for request in fake_upstream.completions)
    assert first == second
