"""The sessions API (001): a stream that resends the session's whole conversation, as OpenAI-style
clients do every turn, stores and answers only what follows it; a client sending only its new
messages is unaffected."""
from __future__ import annotations

from contextlib import contextmanager

from httpx_sse import connect_sse

from models import Chat
from tests.api.test_chats_v1 import create_chat, post
from tests.api.test_conversations import create, envelope
from tests.api.test_conversations_ai import make_agent
from tests.api.test_sessions import stored_session, stream
from tests.conftest import wait_for
from workers import runtime

SYSTEM = {"role": "system", "content": "Be brief"}
REPEATS = "the messages add no new user message after the session's conversation, which they repeat"
NOTHING_NEW = f"{REPEATS}: send the new question after it"
STILL_STREAMING = f"{REPEATS}, and its last reply is still streaming: resume it with Last-Event-ID"


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def send(api, account, messages, session_id=None, **extra):
    """A stream of `messages` (to `session_id`), read to its end; returns the session id and the reply's text."""
    request = {"model": "gpt-4", "messages": messages, **extra}
    if session_id is not None:
        request["session_id"] = session_id
    response, received = stream(api, account, request)
    assert response.status_code == 200
    text = "".join(e.data for e in received if e.event == "message" and e.data != "[DONE]")
    return int(response.headers["X-Session-Id"]), text


def messages_of(api, account, session_id):
    return stored_session(api, account, session_id)["messages"]


def sent_upstream(fake_upstream):
    """The messages the last reply sent upstream, as role and content only."""
    return [{"role": m["role"], "content": m["content"]} for m in fake_upstream.completions[-1]["body"]["messages"]]


def test_a_resent_conversation_is_stored_and_sent_once(api, alice, fake_upstream):
    fake_upstream.configure(tokens=2)
    session_id, first = send(api, alice, [SYSTEM, user("Q1")])
    conversation = [SYSTEM, user("Q1"), assistant(first), user("Q2")]
    assert send(api, alice, conversation, session_id)[0] == session_id
    assert sent_upstream(fake_upstream) == conversation
    conversation.append(assistant("t0 t1 "))
    assert messages_of(api, alice, session_id) == conversation
    # Both styles in one session: a client sending only its new message is unaffected.
    send(api, alice, [user("Q3")], session_id)
    assert sent_upstream(fake_upstream) == conversation + [user("Q3")]
    conversation += [user("Q3"), assistant("t0 t1 ")]
    whole = api.post("/v1/chat/stream", json={"model": "gpt-4", "messages": [*conversation, user("Q4")],
                                              "session_id": session_id, "stream": False}, headers=alice.headers)
    assert whole.status_code == 200 and whole.json()["content"] == "t0 t1 "
    assert messages_of(api, alice, session_id) == [*conversation, user("Q4"), assistant("t0 t1 ")]


def test_a_reply_read_as_the_documents_example_reads_it_is_the_same_reply(api, alice, fake_upstream):
    """The document's example client strips each `data:` line: its copy of a reply has lost the
    tokens' spaces and line breaks, which the comparison leaves aside."""
    fake_upstream.configure(reply="Once upon\na time")
    with api.stream("POST", "/v1/chat/stream", json={"model": "gpt-4", "messages": [user("Tell me a story")]},
                    headers=alice.headers) as response:
        session_id = int(response.headers["X-Session-Id"])
        lines = [line[6:].strip() for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    copy = "".join(lines[:-1])
    assert copy == "Onceuponatime"
    conversation = [user("  Tell me a story "), assistant(copy), user("More")]
    send(api, alice, conversation, session_id)
    assert messages_of(api, alice, session_id) == [user("Tell me a story"), assistant("Once upon\na time"),
                                                   user("More"), assistant("Once upon\na time")]


def test_a_list_shorter_than_the_session_or_differing_from_it_is_appended(api, alice, fake_upstream):
    fake_upstream.configure(tokens=1)
    session_id, _ = send(api, alice, [user("Q1")])
    send(api, alice, [user("Q1")], session_id)  # the same question again, sent alone
    stored = [user("Q1"), assistant("t0 "), user("Q1"), assistant("t0 ")]
    assert messages_of(api, alice, session_id) == stored
    differing = [user("Q1"), assistant("edited"), user("Q2")]
    send(api, alice, differing, session_id)
    assert messages_of(api, alice, session_id) == [*stored, *differing, assistant("t0 ")]


def test_a_failed_reply_may_be_left_out_or_resent_as_history_shows_it(api, alice, fake_upstream):
    """History shows a reply that failed before its first token as an empty assistant message, which
    no client can send (422): left out, the rest still matches. One that failed after some tokens
    keeps them; the client may resend them or leave them out. Neither is context."""
    fake_upstream.configure(fail_status=500)
    session_id, _ = send(api, alice, [user("Q1")])
    assert messages_of(api, alice, session_id) == [user("Q1"), assistant("")]
    fake_upstream.configure(fail_status=None, tokens=4, fail_after=2)
    send(api, alice, [user("Q1"), user("Q2")], session_id)
    assert sent_upstream(fake_upstream) == [user("Q1"), user("Q2")]
    stored = [user("Q1"), assistant(""), user("Q2"), assistant("t0 t1 ")]
    assert messages_of(api, alice, session_id) == stored
    fake_upstream.configure(fail_after=None, tokens=1)
    send(api, alice, [user("Q1"), user("Q2"), assistant("t0 t1 "), user("Q3")], session_id)  # kept by the client
    send(api, alice, [user("Q1"), user("Q2"), user("Q3"), assistant("t0 "), user("Q4")], session_id)  # left out
    assert sent_upstream(fake_upstream) == [user("Q1"), user("Q2"), user("Q3"), assistant("t0 "), user("Q4")]
    assert messages_of(api, alice, session_id) == [*stored, user("Q3"), assistant("t0 "), user("Q4"), assistant("t0 ")]


def test_resending_the_conversation_after_a_failed_reply_answers_its_last_message_again(api, alice, fake_upstream):
    """Either style retries a failed reply by sending its question again: answered again, not stored twice
    (the next full resend then matches)."""
    fake_upstream.configure(fail_status=500)
    session_id, _ = send(api, alice, [SYSTEM, user("Q1")])
    fake_upstream.configure(fail_status=None, tokens=2)
    assert send(api, alice, [SYSTEM, user("Q1")], session_id) == (session_id, "t0 t1 ")
    assert sent_upstream(fake_upstream) == [SYSTEM, user("Q1")]
    stored = [SYSTEM, user("Q1"), assistant(""), assistant("t0 t1 ")]
    assert messages_of(api, alice, session_id) == stored
    send(api, alice, [SYSTEM, user("Q1"), assistant("t0 t1 "), user("Q2")], session_id)
    assert messages_of(api, alice, session_id) == [*stored, user("Q2"), assistant("t0 t1 ")]

    fake_upstream.configure(fail_status=500)
    session_id, _ = send(api, alice, [user("Only")])
    fake_upstream.configure(fail_status=None)
    answer = api.post("/v1/chat/stream", json={"model": "gpt-4", "messages": [user("Only")], "session_id": session_id,
                                               "stream": False}, headers=alice.headers)
    assert answer.status_code == 200 and answer.json()["content"] == "t0 t1 "
    assert messages_of(api, alice, session_id) == [user("Only"), assistant(""), assistant("t0 t1 ")]


@contextmanager
def reply_streaming(api, account, question: str):
    """A new session's reply to `question`, streaming: yields the session id, the reply's uuid, its
    first two tokens (read) and its events still to come."""
    with connect_sse(api, "POST", "/v1/chat/stream", json={"model": "gpt-4", "messages": [user(question)]},
                     headers=account.headers) as sse:
        received = sse.iter_sse()
        first = [next(received), next(received)]
        yield int(sse.response.headers["X-Session-Id"]), first[1].id.split(":")[1], [e.data for e in first], received


def chat_uuid(session_id: int) -> str:
    with runtime.session() as db:
        return db.get(Chat, session_id).uuid


def test_a_stopped_reply_is_resent_with_the_text_it_streamed(api, alice, fake_upstream):
    """A reply stopped mid-stream keeps its text (CANCELLED): it is part of the conversation."""
    fake_upstream.configure(tokens=200, delay_ms=30)
    with reply_streaming(api, alice, "Q1") as (session_id, reply_uuid, received, rest):
        stopped = api.post(f"/api/v1/chat/chats/{chat_uuid(session_id)}/messages/{reply_uuid}/stop",
                           headers=alice.headers)
        assert stopped.status_code == 200
        received += [e.data for e in rest if e.event == "message" and e.data != "[DONE]"]
    partial = "".join(received)
    assert messages_of(api, alice, session_id) == [user("Q1"), assistant(partial)]
    fake_upstream.configure(tokens=1, delay_ms=0)
    send(api, alice, [user("Q1"), assistant(partial), user("Q2")], session_id)
    assert sent_upstream(fake_upstream) == [user("Q1"), assistant(partial), user("Q2")]
    assert messages_of(api, alice, session_id) == [user("Q1"), assistant(partial), user("Q2"), assistant("t0 ")]


def test_a_reply_still_streaming_may_be_left_out_or_resent_as_received_so_far(api, alice, fake_upstream):
    """Its text is stored when it ends: a resend may leave it out or carry the tokens received so
    far; one adding nothing after it is 422 (resume the reply instead)."""
    fake_upstream.configure(tokens=80, delay_ms=50)
    with reply_streaming(api, alice, "Q1") as (session_id, _, received, _):
        again = api.post("/v1/chat/stream", json={"model": "gpt-4", "messages": [user("Q1")], "session_id": session_id},
                         headers=alice.headers)
        assert again.status_code == 422
        assert again.json() == {"detail": [{"loc": ["body", "messages"], "msg": STILL_STREAMING, "type": "value_error"}]}
        quick = "[[fake:tokens=1 delay_ms=0]]"
        send(api, alice, [user("Q1"), assistant("".join(received)), user("Q2" + quick)], session_id)
        assert sent_upstream(fake_upstream) == [user("Q1"), user("Q2" + quick)]
        send(api, alice, [user("Q1"), user("Q2" + quick), assistant("t0 "), user("Q3" + quick)], session_id)
        assert sent_upstream(fake_upstream) == [user("Q1"), user("Q2" + quick), assistant("t0 "), user("Q3" + quick)]
    whole = "".join(f"t{i} " for i in range(80))
    assert wait_for(lambda: messages_of(api, alice, session_id)[1]["content"] == whole, timeout=15)
    assert messages_of(api, alice, session_id) == [user("Q1"), assistant(whole), user("Q2" + quick), assistant("t0 "),
                                                   user("Q3" + quick), assistant("t0 ")]


def test_the_sessions_own_system_prompt_is_not_part_of_the_conversation(api, alice, fake_upstream):
    """A session made empty on 002; its system prompt, changed there (an agent's), is no message:
    history does not show it, a client does not resend it, and it goes upstream before the rest."""
    fake_upstream.configure(tokens=1)
    session_id = create(api, alice)
    assert messages_of(api, alice, session_id) == []
    send(api, alice, [SYSTEM, user("Q1")], session_id)
    agent_id = make_agent(api, alice, system_prompt="Answer in French")
    envelope(api.put(f"/chat/conversations/{session_id}", json={"agent_id": agent_id}, headers=alice.headers))
    conversation = [SYSTEM, user("Q1"), assistant("t0 "), user("Q2")]
    send(api, alice, conversation, session_id)
    assert sent_upstream(fake_upstream) == [{"role": "system", "content": "Answer in French"}, *conversation]
    assert messages_of(api, alice, session_id) == [*conversation, assistant("t0 ")]


def test_a_resend_adding_no_new_user_message_is_422_and_stores_nothing(api, alice, fake_upstream):
    chat = create_chat(api, alice)  # 003: a message there gets no AI reply
    post(api, alice, chat["id"], "hello")
    before = stored_session(api, alice, chat["id"])
    refused = api.post("/v1/chat/stream", json={"model": "gpt-4", "messages": [user("hello")], "session_id": chat["id"]},
                       headers=alice.headers)
    assert refused.status_code == 422
    assert refused.json() == {"detail": [{"loc": ["body", "messages"], "msg": NOTHING_NEW, "type": "value_error"}]}
    assert stored_session(api, alice, chat["id"]) == before and fake_upstream.completions == []


def test_a_member_resends_the_owners_system_message_and_replies(api, alice, make_user, share_session, fake_upstream):
    """Only the new messages are posted: a member's window may keep the owner's system message and
    the assistant's replies (posting them would be 403); its questions are the member's own."""
    fake_upstream.configure(tokens=1)
    member = make_user("member")
    session_id = share_session(alice, member)
    send(api, alice, [SYSTEM, user("Q1")], session_id, model="gpt-3.5-turbo")
    send(api, member, [user("M1")], session_id, model="gpt-3.5-turbo")
    send(api, member, [SYSTEM, user("M1"), assistant("t0 "), user("M2")], session_id, model="gpt-3.5-turbo")
    assert messages_of(api, alice, session_id) == [SYSTEM, user("Q1"), assistant("t0 "), user("M1"), assistant("t0 "),
                                                   user("M2"), assistant("t0 ")]
