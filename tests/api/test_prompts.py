"""Prompt templates (001): CRUD, filters, paging, system templates, previews."""
from __future__ import annotations

from models import Prompt
from tests.conftest import sent_while_deleting

PROMPT = {"title": "Text Summarizer", "content": "Summarize the following text: {text}",
          "scenario": "summarization", "description": "Generates concise summaries",
          "metadata": {"tags": ["summary", "concise"]}}


def test_create_get_update_delete(api, alice, make_user):
    created = api.post("/api/chat/prompts", json=PROMPT, headers=alice.headers)
    assert created.status_code == 200
    prompt = created.json()
    assert {k: prompt[k] for k in PROMPT} == PROMPT
    assert prompt["is_template"] is False and prompt["usage_count"] == 0 and prompt["created_at"]
    assert prompt["updated_at"] == prompt["created_at"]  # not edited yet
    pid = prompt["id"]
    assert api.get(f"/api/chat/prompts/{pid}", headers=alice.headers).json()["title"] == "Text Summarizer"
    updated = api.put(f"/api/chat/prompts/{pid}", json={"title": "Updated Title"}, headers=alice.headers).json()
    assert updated["title"] == "Updated Title" and updated["content"] == PROMPT["content"]
    eve = make_user("eve")
    assert api.get(f"/api/chat/prompts/{pid}", headers=eve.headers).status_code == 404
    assert api.put(f"/api/chat/prompts/{pid}", json={"title": "x"}, headers=eve.headers).status_code == 404
    assert api.delete(f"/api/chat/prompts/{pid}", headers=alice.headers).json() == {
        "message": "Prompt deleted successfully"}
    assert api.get(f"/api/chat/prompts/{pid}", headers=alice.headers).status_code == 404
    assert api.post("/api/chat/prompts", json={"title": ""}, headers=alice.headers).status_code == 422


def test_list_filters_search_paging_and_templates(api, make_user):
    bob = make_user("bob")
    for i in range(3):
        api.post("/api/chat/prompts", json={**PROMPT, "title": f"Mine {i}", "scenario": "mine",
                                            "description": f"needle{i}"}, headers=bob.headers)
    everything = api.get("/api/chat/prompts", headers=bob.headers).json()
    assert everything["page"] == 1 and everything["page_size"] == 20
    templates = [p for p in everything["items"] if p["is_template"]]
    assert templates and everything["total"] == 3 + len(templates)
    own = api.get("/api/chat/prompts?include_templates=false", headers=bob.headers).json()
    assert own["total"] == 3 and not any(p["is_template"] for p in own["items"])
    assert api.get("/api/chat/prompts?scenario=mine", headers=bob.headers).json()["total"] == 3
    found = api.get("/api/chat/prompts?search=NEEDLE1", headers=bob.headers).json()
    assert [p["title"] for p in found["items"]] == ["Mine 1"]
    paged = api.get("/api/chat/prompts?include_templates=false&page=2&page_size=2", headers=bob.headers).json()
    assert len(paged["items"]) == 1 and paged["total"] == 3
    assert api.get("/api/chat/prompts?page_size=101", headers=bob.headers).status_code == 400
    template_id = templates[0]["id"]
    assert api.put(f"/api/chat/prompts/{template_id}", json={"title": "x"}, headers=bob.headers).status_code == 403
    assert api.delete(f"/api/chat/prompts/{template_id}", headers=bob.headers).status_code == 403


def test_preview_by_id_and_inline(api, alice, fake_upstream):
    fake_upstream.configure(reply="A short summary.")
    pid = api.post("/api/chat/prompts", json=PROMPT, headers=alice.headers).json()["id"]
    preview = api.post("/api/chat/prompts/preview", json={"prompt_id": pid, "variables": {"text": "Long text"}},
                       headers=alice.headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["preview"] == "A short summary." and preview.json()["tokens_used"] > 0
    assert preview.json()["model_used"] == "gpt-3.5-turbo"
    assert fake_upstream.completions[-1]["body"]["messages"][-1]["content"] == "Summarize the following text: Long text"
    assert api.get(f"/api/chat/prompts/{pid}", headers=alice.headers).json()["usage_count"] == 1
    inline = api.post("/api/chat/prompts/preview", json={"content": "Say {word} {{literally}}", "variables": {"word": "hi"}},
                      headers=alice.headers)
    assert inline.status_code == 200
    assert fake_upstream.completions[-1]["body"]["messages"][-1]["content"] == "Say hi {literally}"
    missing = api.post("/api/chat/prompts/preview", json={"prompt_id": pid, "variables": {}}, headers=alice.headers)
    assert missing.status_code == 400 and "text" in missing.json()["detail"]
    both = api.post("/api/chat/prompts/preview", json={"prompt_id": pid, "content": "x"}, headers=alice.headers)
    assert both.status_code == 400


def test_a_blank_title_or_content_is_refused_naming_it(api, alice):
    pid = api.post("/api/chat/prompts", json=PROMPT, headers=alice.headers).json()["id"]
    for field in ("title", "content"):  # a template of spaces renders nothing
        created = api.post("/api/chat/prompts", json={**PROMPT, field: " \t "}, headers=alice.headers)
        assert created.status_code == 422, created.text
        assert [e["loc"] for e in created.json()["detail"]] == [["body", field]]
        updated = api.put(f"/api/chat/prompts/{pid}", json={field: "   "}, headers=alice.headers)
        assert updated.status_code == 422, updated.text
        assert [e["loc"] for e in updated.json()["detail"]] == [["body", field]]
    stored = api.get(f"/api/chat/prompts/{pid}", headers=alice.headers).json()
    assert (stored["title"], stored["content"]) == (PROMPT["title"], PROMPT["content"])


def test_update_refuses_null_for_title_and_content(api, alice):
    pid = api.post("/api/chat/prompts", json=PROMPT, headers=alice.headers).json()["id"]
    for field in ("title", "content"):
        refused = api.put(f"/api/chat/prompts/{pid}", json={field: None}, headers=alice.headers)
        assert refused.status_code == 422, refused.text
        assert [e["loc"] for e in refused.json()["detail"]] == [["body", field]]
    cleared = api.put(f"/api/chat/prompts/{pid}", json={"description": None, "scenario": None}, headers=alice.headers)
    assert cleared.status_code == 200 and cleared.json()["description"] is None
    assert cleared.json()["title"] == PROMPT["title"] and cleared.json()["content"] == PROMPT["content"]


def test_preview_puts_values_in_as_given(api, alice, fake_upstream):
    fake_upstream.configure(reply="ok")
    filled = api.post("/api/chat/prompts/preview", headers=alice.headers, json={
        "content": "{{Review}} {text}", "variables": {"text": "template code {{user.name}} here"}})
    assert filled.status_code == 200, filled.text
    assert fake_upstream.completions[-1]["body"]["messages"][-1]["content"] == "{Review} template code {{user.name}} here"


def test_a_filled_prompt_is_at_most_as_long_as_a_message(api, alice, fake_upstream):
    """A variable used many times multiplies its value: 6,000 `{x}` filled with 1,000 characters would
    be 6 MB from a 24 kB body (thousands of times that in memory from a 1 MB one). The filled prompt
    goes upstream as one message, so it takes at most a message's 50,000 characters (400 before
    anything is filled or sent)."""
    fake_upstream.configure(reply="ok")
    url = "/api/chat/prompts/preview"
    fits = api.post(url, json={"content": "{x}" * 50, "variables": {"x": "y" * 1000}}, headers=alice.headers)
    assert fits.status_code == 200, fits.text
    assert len(fake_upstream.completions[-1]["body"]["messages"][-1]["content"]) == 50_000
    sent = len(fake_upstream.completions)
    for content, value, length in (("{x}" * 50, "y" * 1001, "50,050"), ("{x}" * 6000, "y" * 1000, "6,000,000")):
        refused = api.post(url, json={"content": content, "variables": {"x": value}}, headers=alice.headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["detail"] == (f"The filled prompt would be {length} characters long: "
                                            "at most 50,000 (as a message) are allowed")
    assert len(fake_upstream.completions) == sent


def test_preview_writes_json_values_as_json(api, alice, fake_upstream):
    """Variables arrive as JSON: a number, true, null, a list or an object is written as JSON, not as Python."""
    fake_upstream.configure(reply="ok")
    filled = api.post("/api/chat/prompts/preview", headers=alice.headers, json={
        "content": "{n} {f} {b} {z} {l} {d}",
        "variables": {"n": 3, "f": 1.5, "b": True, "z": None, "l": ["a", "é"], "d": {"k": "v"}}})
    assert filled.status_code == 200, filled.text
    assert fake_upstream.completions[-1]["body"]["messages"][-1]["content"] == '3 1.5 true null ["a", "é"] {"k": "v"}'


def test_a_preview_counts_the_use_without_updating_the_prompt(api, make_user, fake_upstream):
    """Using a prompt is not editing it (the document's listed prompt: usage_count 5, updated_at = created_at)."""
    fake_upstream.configure(reply="ok")
    bob = make_user("bob")
    used = api.post("/api/chat/prompts", json=PROMPT, headers=bob.headers).json()
    newer = api.post("/api/chat/prompts", json={**PROMPT, "title": "Newer"}, headers=bob.headers).json()
    previewed = api.post("/api/chat/prompts/preview", json={"prompt_id": used["id"], "variables": {"text": "t"}},
                         headers=bob.headers)
    assert previewed.status_code == 200, previewed.text
    after = api.get(f"/api/chat/prompts/{used['id']}", headers=bob.headers).json()
    assert after["usage_count"] == 1 and after["updated_at"] == used["updated_at"]
    listed = api.get("/api/chat/prompts?include_templates=false", headers=bob.headers).json()["items"]
    assert [p["id"] for p in listed] == [newer["id"], used["id"]]


def test_search_takes_percent_and_underscore_as_text(api, make_user):
    bob = make_user("bob")
    for title in ("50% off", "snake_case", "plain"):
        api.post("/api/chat/prompts", json={**PROMPT, "title": title}, headers=bob.headers)
    found = lambda text: [p["title"] for p in api.get(  # noqa: E731
        "/api/chat/prompts", params={"search": text, "include_templates": "false"}, headers=bob.headers).json()["items"]]
    assert found("%") == ["50% off"]
    assert found("_") == ["snake_case"]
    assert found("e_c") == ["snake_case"] and found("0%") == ["50% off"]


def test_preview_answers_an_unknown_model_with_400_like_stream(api, alice):
    bogus = api.post("/api/chat/prompts/preview", json={"content": "hi", "model": "bogus"}, headers=alice.headers)
    assert bogus.status_code == 400 and "bogus" in bogus.json()["detail"]
    streamed = api.post("/v1/chat/stream", json={"model": "bogus", "messages": [{"role": "user", "content": "hi"}]},
                        headers=alice.headers)
    assert streamed.status_code == 400 and streamed.json()["detail"] == bogus.json()["detail"]


def test_an_edit_racing_the_prompts_deletion_is_404(api, alice):
    """The PUT read the prompt while its deletion was committing: 404 as after it, not the stale
    row error (a 500)."""
    prompt_id = api.post("/api/chat/prompts", json={"title": "Doomed", "content": "Say {text}"},
                         headers=alice.headers).json()["id"]
    raced = sent_while_deleting(Prompt.__table__, prompt_id, lambda: api.put(
        f"/api/chat/prompts/{prompt_id}", json={"title": "Renamed"}, headers=alice.headers))
    assert raced.status_code == 404 and raced.json() == {"detail": "Prompt not found"}


def test_a_failed_preview_answers_like_a_failed_stream_false_reply(api, alice, fake_upstream):
    """An upstream error is 502 (a bad gateway), as `stream: false` answers it; not 503."""
    fake_upstream.configure(fail_status=500)
    preview = api.post("/api/chat/prompts/preview", json={"content": "hi"}, headers=alice.headers)
    whole = api.post("/v1/chat/stream", json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}],
                                              "stream": False}, headers=alice.headers)
    assert preview.status_code == whole.status_code == 502
    assert preview.json() == {"detail": "The AI service failed while generating the reply."}


def test_a_delete_racing_another_delete_is_404(api, alice):
    """Two DELETEs at once: the one that finds the prompt gone is 404, as after it (both were 200)."""
    prompt_id = api.post("/api/chat/prompts", json={"title": "Doomed", "content": "Bye"},
                         headers=alice.headers).json()["id"]
    raced = sent_while_deleting(Prompt.__table__, prompt_id, lambda: api.delete(
        f"/api/chat/prompts/{prompt_id}", headers=alice.headers))
    assert raced.status_code == 404 and raced.json() == {"detail": "Prompt not found"}
