"""The sessions API (001): resends of a window of the conversation (the system message and its
last messages, as OpenAI-style clients keep a context window), resends racing each other, and
resends in sessions shared with other members."""
from __future__ import annotations

from sqlalchemy import select

from models import Chat, Message, User
from tests.api.test_sessions_resend import STILL_STREAMING, SYSTEM, assistant, messages_of, send, user
from tests.conftest import sent_while_writing
from workers import runtime


def user_id(account) -> int:
    with runtime.session() as db:
        return db.scalar(select(User.id).where(User.uuid == account["id"]))


def store_turns(session_id: int, sender_id: int, first: int, last: int) -> None:
    """Questions Q`first`..Q`last` of `sender_id`, each with its answer, stored as replies store them."""
    with runtime.session() as db:
        for turn in range(first, last + 1):
            db.add(Message(chat_id=session_id, sender_id=sender_id, role="user", content=f"Q{turn}"))
            db.add(Message(chat_id=session_id, role="assistant", content=f"A{turn}", status="DELIVERED"))
            db.flush()
        db.commit()


def test_a_window_of_a_long_conversation_stores_only_what_follows_it(api, alice, fake_upstream):
    """A request carries 200 messages at most: a client keeping the system message and the last
    messages of a longer session sends a window; only what follows it is new."""
    fake_upstream.configure(tokens=1)
    session_id, _ = send(api, alice, [SYSTEM, user("Q1")])
    store_turns(session_id, user_id(alice), 2, 120)
    stored = messages_of(api, alice, session_id)
    assert len(stored) == 241
    window = [SYSTEM, *stored[-198:], user("Next")]
    send(api, alice, window, session_id)
    stored += [user("Next"), assistant("t0 ")]
    assert messages_of(api, alice, session_id) == stored
    send(api, alice, [*stored[-3:], user("Then")], session_id)  # a window without the system message
    stored += [user("Then"), assistant("t0 ")]
    assert messages_of(api, alice, session_id) == stored
    # Only new messages: an older question asked again, or a run not ending the conversation, is new.
    send(api, alice, [user("Q7")], session_id)
    send(api, alice, [user("Q7"), assistant("A7"), user("Q9")], session_id)
    stored += [user("Q7"), assistant("t0 "), user("Q7"), assistant("A7"), user("Q9"), assistant("t0 ")]
    assert messages_of(api, alice, session_id) == stored


def test_a_window_may_leave_out_failed_replies(api, alice, fake_upstream):
    fake_upstream.configure(fail_status=500)
    session_id, _ = send(api, alice, [SYSTEM, user("Q1")])
    fake_upstream.configure(fail_status=None, tokens=1)
    send(api, alice, [SYSTEM, user("Q1")], session_id)  # answered again
    send(api, alice, [SYSTEM, user("Q1"), assistant("t0 "), user("Q2")], session_id)
    stored = [SYSTEM, user("Q1"), assistant(""), assistant("t0 "), user("Q2"), assistant("t0 ")]
    assert messages_of(api, alice, session_id) == stored
    send(api, alice, [user("Q1"), assistant("t0 "), user("Q2"), assistant("t0 "), user("Q3")], session_id)
    assert messages_of(api, alice, session_id) == [*stored, user("Q3"), assistant("t0 ")]


def test_a_resend_racing_the_same_resend_stores_nothing_twice(api, alice, fake_upstream):
    """A double submit: the second request compares under the chat's lock, after the first stored
    its message and reply (still streaming): it adds nothing, and is told to resume the reply."""
    fake_upstream.configure(tokens=1)
    session_id, _ = send(api, alice, [user("Q1")])
    messages, chat = Message.__table__, Chat.__table__
    first_request = [chat.update().where(chat.c.id == session_id).values(updated_at=chat.c.updated_at),
                     messages.insert().values(chat_id=session_id, sender_id=user_id(alice), role="user", content="Q2"),
                     messages.insert().values(chat_id=session_id, role="assistant", content="", status="PROCESSING")]
    answer = sent_while_writing(first_request, lambda: api.post("/v1/chat/stream", headers=alice.headers, json={
        "model": "gpt-4", "messages": [user("Q1"), assistant("t0 "), user("Q2")], "session_id": session_id}))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"] == STILL_STREAMING
    assert messages_of(api, alice, session_id) == [user("Q1"), assistant("t0 "), user("Q2"), assistant("")]


def test_another_members_message_is_not_the_requesters(api, alice, make_user, share_session, fake_upstream):
    """A member asking what another asked, after that reply failed, asks it too: their question
    is stored, not taken for a retry of the other's."""
    member = make_user("member")
    session_id = share_session(alice, member)
    fake_upstream.configure(fail_status=500)
    send(api, alice, [user("Q1")], session_id, model="gpt-3.5-turbo")
    fake_upstream.configure(fail_status=None, tokens=1)
    send(api, member, [user("Q1")], session_id, model="gpt-3.5-turbo")
    assert messages_of(api, alice, session_id) == [user("Q1"), assistant(""), user("Q1"), assistant("t0 ")]
    with runtime.session() as db:
        senders = db.scalars(select(Message.sender_id).where(Message.chat_id == session_id, Message.role == "user").order_by(Message.id))
        assert list(senders) == [user_id(alice), user_id(member)]
