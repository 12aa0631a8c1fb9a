"""A token in the URL is read only by WebSocket and event-stream routes, whose browser clients
cannot send an Authorization header; anywhere else it is ignored (it would leak into proxy
logs, browser history and Referer headers) and the 401 says where to send it.

That every other secured operation refuses a URL token is in test_access_matrix_tokens.py;
that the WebSockets and `GET /chat/send` take one, in test_access_matrix_streams.py and
test_rag_chat.py.
"""
from __future__ import annotations

from flask import Flask

from web.api import described
from web.auth.tokens import URL_TOKEN_IGNORED, reads_query_token
from web.limits import rate_key

EVENT_STREAM = "text/event-stream"


def test_only_websocket_and_event_stream_routes_read_a_url_token(app: Flask):
    reading = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        streams = "GET" in rule.methods and any(r.media_type == EVENT_STREAM for r in described.responses_of(view))
        if rule.websocket:
            assert reads_query_token(view), f"{rule.rule}: a browser WebSocket cannot send the header"
        if reads_query_token(view):
            assert rule.websocket or streams, f"{rule.rule} reads a URL token but is no WebSocket or event stream"
            reading.add(rule.rule)
    assert {"/api/v1/chat/chats/<chat_id>/ws", "/api/v1/chats/<int:chat_id>/ws", "/chat/send"} <= reading


def test_a_rest_route_refuses_a_url_token_and_says_where_to_send_it(api, alice):
    for name in ("token", "auth_token"):
        response = api.get("/api/v1/chat/chats", params={name: alice["access_token"]})
        assert response.status_code == 401 and response.json() == {"detail": URL_TOKEN_IGNORED}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert api.get("/api/v1/chat/chats?token=").json() == {"detail": "Not authenticated"}  # no token at all
    assert api.get("/api/v1/chat/chats", params={"token": alice["access_token"]},
                   headers=alice.headers).status_code == 200  # the header is read, the URL ignored


def test_the_conversations_api_says_it_in_its_envelope(api, alice):
    response = api.get("/chat/conversations", params={"token": alice["access_token"]})
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": URL_TOKEN_IGNORED, "data": None}


def test_the_rate_limit_counts_a_url_token_only_where_the_route_reads_it(app: Flask, alice):
    token = alice["access_token"]
    with app.test_request_context(f"/api/v1/chat/chats?token={token}", environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        assert rate_key() == "ip:10.1.2.3"
    with app.test_request_context(f"/chat/send?message=hi&auth_token={token}"):
        assert rate_key() == f"user:{alice['user_id']}"
