"""Server-side conversations and documents, end to end on the real default model (Qwen2.5-Coder-0.5B-Instruct): a
conversation continued by id answers as the full history does and reuses the slot's KV; it is private to its API
key, expires, can be deleted and survives a restart; PDF, DOCX and text documents are read into the prompt, and a
corrupt, oversized, remote or out-of-folder one is a clear 4xx."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.server_process import running_server

MODEL = "qwen2.5-coder-0.5b-instruct"
K1, K2 = "key-one", "key-two"
ARGS = ("--parallel", "2", "--ctx-size", "2048", "--threads", "2", "--no-embedding")


def _env(data: Path, docs: Path, **more: str) -> dict[str, str]:
    return {"GLM_EDGE_API_KEYS": f"{K1},{K2}", "GLM_EDGE_DATA_DIR": str(data), "GLM_EDGE_DOCUMENTS_DIR": str(docs),
            "GLM_EDGE_MAX_DOCUMENT_BYTES": "200000", **more}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("conversations")
    docs = root / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nThe office plant is called Gustav.\n", encoding="utf-8")
    (root / "secret.txt").write_text("the password is hunter2", encoding="utf-8")
    return root / "data", docs


@pytest.fixture(scope="module")
def url(folders: tuple[Path, Path]) -> Iterator[str]:
    data, docs = folders
    with running_server(*ARGS, env=_env(data, docs), log_path=data.parent / "serve.log") as url:
        yield url


def chat(url: str, body: dict[str, Any], key: str | None = K1, path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}{path}", json={"model": MODEL, "temperature": 0, "max_tokens": 24, **body},
                      headers=headers, timeout=300)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


QUESTIONS = ["My name is Ada and I live in Lisbon. Say hello to me.", "What is my name?", "Where do I live?"]


def test_three_turns_by_id_answer_as_the_full_history_and_reuse_the_kv(url: str) -> None:
    by_id: list[str] = []
    conversation_id = None
    for turn, question in enumerate(QUESTIONS):
        body: dict[str, Any] = {"messages": [user(question)]}
        if conversation_id:
            body["conversation_id"] = conversation_id
        res = chat(url, body)
        assert res.status_code == 200, res.text
        answer = res.json()
        if conversation_id:
            assert answer["conversation_id"] == conversation_id
            assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] > 0, answer["usage"]
        conversation_id = answer["conversation_id"]
        assert res.headers["x-conversation-id"] == conversation_id
        by_id.append(answer["choices"][0]["message"]["content"])

    history: list[dict[str, Any]] = []
    for question, expected in zip(QUESTIONS, by_id):
        history.append(user(question))
        res = chat(url, {"messages": history, "store": False})
        assert res.status_code == 200, res.text
        assert "conversation_id" not in res.json()
        content = res.json()["choices"][0]["message"]["content"]
        assert content == expected
        history.append({"role": "assistant", "content": content})

    stored = httpx.get(f"{url}/v1/conversations/{conversation_id}", headers={"Authorization": f"Bearer {K1}"})
    assert stored.status_code == 200, stored.text
    assert stored.json()["messages"] == history


def test_a_stream_continues_and_is_stored_too(url: str) -> None:
    first = chat(url, {"messages": [user("Remember the number 42. Reply with OK.")]})
    assert first.status_code == 200, first.text
    # glm-api sends the first answer's id back as conversation_id
    with httpx.stream("POST", f"{url}/chat", headers={"Authorization": f"Bearer {K1}"}, timeout=300,
                      json={"model": MODEL, "temperature": 0, "max_tokens": 16, "stream": True,
                            "conversation_id": first.json()["id"],
                            "messages": [user("Which number did I ask you to remember?")]}) as res:
        assert res.status_code == 200, res.read()
        conversation_id = res.headers["x-conversation-id"]
        chunks = [json.loads(line[6:]) for line in res.iter_lines() if line.startswith("data: {")]
    assert conversation_id == first.json()["conversation_id"]
    assert {c["conversation_id"] for c in chunks} == {conversation_id}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    stored = httpx.get(f"{url}/v1/conversations/{conversation_id}", headers={"Authorization": f"Bearer {K1}"}).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant", "user", "assistant"]
    assert stored["messages"][-1]["content"] == text


def test_another_key_unknown_ids_and_deletion_are_404(url: str) -> None:
    made = chat(url, {"messages": [user("Hi")], "max_tokens": 4}).json()
    conversation_id = made["conversation_id"]
    for key in (K2,):
        res = chat(url, {"messages": [user("Hi again")], "conversation_id": conversation_id}, key=key)
        assert res.status_code == 404, res.text
        error = res.json()["error"]
        assert error["type"] == "not_found_error" and error["code"] == "conversation_not_found"
        assert error["param"] == "conversation_id"
        other = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{url}/v1/conversations/{conversation_id}", headers=other).status_code == 404
        assert httpx.delete(f"{url}/v1/conversations/{conversation_id}", headers=other).status_code == 404
    assert chat(url, {"messages": [user("Hi")], "conversation_id": "conv_nothing"}).status_code == 404
    own = {"Authorization": f"Bearer {K1}"}
    deleted = httpx.delete(f"{url}/v1/conversations/{conversation_id}", headers=own)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert httpx.get(f"{url}/v1/conversations/{conversation_id}", headers=own).status_code == 404
    res = chat(url, {"messages": [user("Hi again")], "conversation_id": conversation_id})
    assert res.status_code == 404 and "no conversation" in res.json()["error"]["message"]


def _pdf(text: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.drawString(72, 760, text)
    page.showPage()
    page.save()
    return buffer.getvalue()


def _docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Meeting", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def ask(url: str, part: dict[str, Any], question: str) -> httpx.Response:
    return chat(url, {"messages": [{"role": "user", "content": [part, {"type": "text", "text": question}]}],
                      "max_tokens": 16, "store": False})


def test_a_pdf_as_glm_api_sends_it(url: str) -> None:
    pdf = _pdf("The secret code of project Falcon is 4711.")
    res = ask(url, {"type": "file", "file_url": {"url": data_url("application/pdf", pdf)}},
              "What is the secret code of project Falcon? Answer with the number only.")
    assert res.status_code == 200, res.text
    assert "4711" in res.json()["choices"][0]["message"]["content"]


def test_a_docx_as_openai_sends_it(url: str) -> None:
    media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    part = {"type": "file", "file": {"filename": "meeting.docx", "file_data": data_url(media, _docx(
        "The meeting takes place in room B12."))}}
    res = ask(url, part, "In which room does the meeting take place? Answer with the room only.")
    assert res.status_code == 200, res.text
    assert "B12" in res.json()["choices"][0]["message"]["content"]


def test_a_local_file_inside_the_documents_folder(url: str) -> None:
    res = ask(url, {"type": "file", "file_url": {"url": "notes.md"}}, "What is the office plant called?")
    assert res.status_code == 200, res.text
    assert "Gustav" in res.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("part, code, says", [
    ({"type": "file", "file_url": {"url": data_url("application/pdf", b"%PDF-1.4\nnot really a pdf")}},
     "invalid_document", "not a readable PDF"),
    ({"type": "file", "file": {"filename": "x.docx", "file_data": data_url("application/octet-stream", b"PK..")}},
     "invalid_document", "not a readable DOCX"),
    ({"type": "file", "file_url": {"url": data_url("text/plain", b"a" * 300_000)}},
     "document_too_large", "over the limit of 200000 bytes"),
    ({"type": "file", "file_url": {"url": "../secret.txt"}}, "document_path_refused", "outside the documents folder"),
    ({"type": "file", "file_url": {"url": "/etc/passwd"}}, "document_path_refused", "outside the documents folder"),
    ({"type": "file", "file_url": {"url": "https://example.invalid/a.pdf"}}, "remote_document_refused",
     "remote documents are off"),
    ({"type": "file", "file_url": {"url": data_url("image/png", b"\x89PNG....")}}, "unsupported_document",
     "PDF, DOCX, plain text or Markdown"),
    ({"type": "image_url", "image_url": {"url": "http://example.invalid/logo.png"}}, "unsupported_content_part",
     "image_url part"),
], ids=["corrupt-pdf", "corrupt-docx", "oversized", "escape", "absolute", "remote", "image-file", "image-part"])
def test_bad_documents_are_clear_400s(url: str, part: dict[str, Any], code: str, says: str) -> None:
    res = ask(url, part, "What does it say?")
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_a_document_too_long_for_the_context_says_by_how_much(url: str) -> None:
    text = " ".join(f"word{i}" for i in range(3000)).encode()
    res = ask(url, {"type": "file", "file_url": {"url": data_url("text/plain", text)}}, "Summarize.")
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "do not fit the context" in error["message"] and "tokens more than" in error["message"], error


def test_nothing_is_written_outside_the_data_folder(url: str, folders: tuple[Path, Path]) -> None:
    data, docs = folders
    assert sorted(p.name for p in docs.iterdir()) == ["notes.md"]
    assert {p.name for p in data.iterdir()} <= {"conversations.sqlite3", "conversations.sqlite3-wal",
                                                 "conversations.sqlite3-shm"}


def test_the_store_survives_a_restart_and_expires(tmp_path: Path) -> None:
    data, docs = tmp_path / "data", tmp_path / "docs"
    docs.mkdir()
    with running_server(*ARGS, env=_env(data, docs), log_path=tmp_path / "first.log") as url:
        first = chat(url, {"messages": [user("My favourite colour is green. Reply with OK.")], "max_tokens": 4})
        assert first.status_code == 200, first.text
        conversation_id = first.json()["conversation_id"]
    own = {"Authorization": f"Bearer {K1}"}
    with running_server(*ARGS, env=_env(data, docs), log_path=tmp_path / "second.log") as url:
        stored = httpx.get(f"{url}/v1/conversations/{conversation_id}", headers=own)
        assert stored.status_code == 200, stored.text
        assert stored.json()["messages"][0]["content"].startswith("My favourite colour")
        res = chat(url, {"messages": [user("What is my favourite colour?")], "conversation_id": conversation_id})
        assert res.status_code == 200, res.text
        assert "green" in res.json()["choices"][0]["message"]["content"].lower()
    # the same store with a ttl of one second: by the time this server is up, the conversation has expired
    with running_server(*ARGS, env=_env(data, docs, GLM_EDGE_CONVERSATION_TTL="1"),
                        log_path=tmp_path / "third.log") as url:
        time.sleep(1.5)
        assert httpx.get(f"{url}/v1/conversations/{conversation_id}", headers=own).status_code == 404
        res = chat(url, {"messages": [user("And again?")], "conversation_id": conversation_id})
        assert res.status_code == 404, res.text
        assert res.json()["error"]["code"] == "conversation_not_found"
