"""Tests for the fake OpenAI server, driven by the real ``openai`` client."""
from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fake_openai import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hello there friend"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture()
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture()
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=5) as c:
        yield c


def test_stream_with_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(tokens=5)
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "t0 t1 t2 t3 t4 "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].object == "chat.completion.chunk"
    assert chunks[-1].usage.model_dump() == {
        "prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8,
        "completion_tokens_details": None, "prompt_tokens_details": None}
    request = fake.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer k"
    assert request["body"]["stream"] is True


def test_stream_max_tokens_gives_length(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True, max_tokens=3))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "t0 t1 t2 "
    assert chunks[-1].choices[0].finish_reason == "length" and chunks[-1].usage is None


def test_non_stream(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(tokens=3)
    result = client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert result.object == "chat.completion"
    assert result.choices[0].message.content == "t0 t1 t2 "
    assert result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 3)


def test_reply_keeps_newlines(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    reply = "line1\nline2  with\n\n spaces "
    fake.configure(reply=reply)
    stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert pieces == ["line1\n", "line2  ", "with\n\n ", "spaces "]
    assert "".join(pieces) == reply
    assert client.chat.completions.create(model="gpt-4", messages=MESSAGES).choices[0].message.content == reply


@pytest.mark.parametrize(("status", "error"), [
    (500, openai.InternalServerError), (503, openai.InternalServerError), (429, openai.RateLimitError)])
def test_fail_status(fake: FakeOpenAI, client: openai.OpenAI, status: int, error: type[Exception]) -> None:
    fake.configure(fail_status=status)
    with pytest.raises(error) as info:
        client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
    assert info.value.status_code == status
    assert set(info.value.body) == {"message", "type", "code"}


def test_fail_after_raises_while_iterating(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(tokens=10, fail_after=2)
    stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "t0 t1 "
    assert "RemoteProtocolError" in type(info.value.__cause__).__name__


def test_fail_after_with_plain_httpx(fake: FakeOpenAI) -> None:
    fake.configure(fail_after=1)
    body = {"model": "gpt-4", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{fake.base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_models_list(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [
        "gpt-3.5-turbo", "gpt-4", "gpt-4o-mini", "text-embedding-3-small"]
    fake.configure(models=["only"])
    assert [m.id for m in client.models.list()] == ["only"]


def test_unknown_model_and_bad_request(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4", messages=[])
    assert httpx.get(f"{fake.base_url}/nowhere").status_code == 404


def test_embeddings_similarity(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quantum chromodynamics lecture notes"]
    for encoding in ("float", openai.omit):  # the client asks for base64 by default
        result = client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format=encoding)
        vectors = [d.embedding for d in result.data]
        assert [len(v) for v in vectors] == [64] * 3
        assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
        cosine = [sum(a * b for a, b in zip(vectors[0], v)) for v in vectors]
        assert cosine[0] > cosine[1] > cosine[2]
    single = client.embeddings.create(model="text-embedding-3-small", input="cat", encoding_format="float")
    assert single.data[0].index == 0 and single.usage.prompt_tokens == 1


def test_per_request_directive(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "first [[fake:tokens=99]]"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "go [[fake:tokens=2 delay_ms=1]]"}]
    assert client.chat.completions.create(model="gpt-4", messages=messages).choices[0].message.content == "t0 t1 "
    messages[-1]["content"] = "go [[fake:fail_status=429]]"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4", messages=messages)
    assert client.chat.completions.create(model="gpt-4", messages=MESSAGES).usage.completion_tokens == 8


def test_api_key_check(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(api_key="secret")
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert info.value.code == "invalid_api_key"
    with openai.OpenAI(base_url=fake.base_url, api_key="secret", max_retries=0) as good:
        assert good.chat.completions.create(model="gpt-4", messages=MESSAGES).choices[0].message.content
