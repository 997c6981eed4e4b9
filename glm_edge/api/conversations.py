"""Stored conversations over HTTP: the store on ``app.state`` (opened on first use), the caller's scope (a hash of
the API key it sent), ``GET``/``DELETE /v1/conversations/{id}``, and what a chat request does with them
(``Turn``): continue a stored conversation, expand file parts into text, and append the answer when it is done."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Request

from glm_edge.api.auth import presented_key
from glm_edge.chat.prompt import ChatInput
from glm_edge.conversation_store import ConversationStore, new_conversation_id, owner_of
from glm_edge.documents import Document, DocumentLimits, expand_documents, has_file_parts

log = logging.getLogger("glm_edge.api")

router = APIRouter()
_OPEN_LOCK = threading.Lock()
DB_NAME = "conversations.sqlite3"


def store_of(request: Request) -> ConversationStore:
    state = request.app.state
    store: ConversationStore | None = getattr(state, "conversations", None)
    if store is None:
        with _OPEN_LOCK:
            store = getattr(state, "conversations", None)
            if store is None:
                settings = state.settings
                store = ConversationStore(settings.data_home() / DB_NAME, settings.conversation_ttl)
                state.conversations = store
    return store


def scope_of(request: Request) -> str:
    return owner_of(presented_key(request))


def _answer_message(parsed: Any) -> dict[str, Any]:
    """A parsed assistant answer as the message a client would send back in its history."""
    msg: dict[str, Any] = {"role": "assistant", "content": parsed.content}
    if parsed.reasoning_content is not None:
        msg["reasoning_content"] = parsed.reasoning_content
    if parsed.tool_calls:
        msg["tool_calls"] = [c.model_dump(mode="json", exclude_none=True) if hasattr(c, "model_dump")
                             else c.to_openai() for c in parsed.tool_calls]
    return msg


@dataclass
class Turn:
    """One chat request's part in a stored conversation."""

    conversation_id: str
    owner: str
    store: bool
    history: list[dict[str, Any]]  # the stored messages before this request's
    new_messages: list[dict[str, Any]] = field(default_factory=list)  # this request's, documents expanded
    documents: list[Document] = field(default_factory=list)

    @property
    def public_id(self) -> str | None:
        """The id the answer carries: None for an unstored turn of no stored conversation."""
        return self.conversation_id if self.store or self.history else None

    def headers(self) -> dict[str, str]:
        return {"X-Conversation-Id": self.public_id} if self.public_id else {}

    @classmethod
    async def begin(cls, request: Any, raw: Request, chat_input: ChatInput) -> tuple["Turn", ChatInput]:
        """Resolve ``conversation_id`` (404 when unknown, expired or another key's) and read the file parts of
        ``chat_input``; with the chat input to render: documents as text, the stored turns first."""
        store_wanted = request.store is not False
        owner = scope_of(raw)
        history: list[dict[str, Any]] = []
        if request.conversation_id is not None:
            store = store_of(raw)
            param = "previous_response_id" if str(request.conversation_id).startswith("resp_") else "conversation_id"
            resumed = await asyncio.to_thread(store.resume, request.conversation_id, owner, param=param)
            conversation_id, history = resumed.conversation_id, resumed.messages
        else:
            conversation_id = new_conversation_id()
        documents: list[Document] = []
        earlier, messages = chat_input.history, chat_input.messages
        if has_file_parts([*(earlier or []), *messages]):
            limits = DocumentLimits.from_settings(raw.app.state.settings)
            if earlier and has_file_parts(earlier):
                earlier, docs = await asyncio.to_thread(expand_documents, earlier, limits, "history")
                documents += docs
            messages, docs = await asyncio.to_thread(expand_documents, messages, limits)
            documents += docs
        new_messages = [*(earlier or []), *messages]
        if history:
            earlier = [*history, *(earlier or [])]
        turn = cls(conversation_id=conversation_id, owner=owner, store=store_wanted, history=history,
                   new_messages=new_messages, documents=documents)
        return turn, replace(chat_input, history=earlier, messages=messages)

    async def finish(self, raw: Request, parsed: Any, response_id: str) -> None:
        """Append this request's messages and the answer (choice 0) to the store."""
        if not self.store:
            return
        messages = [*self.new_messages, _answer_message(parsed)]
        try:
            await asyncio.to_thread(store_of(raw).append, self.conversation_id, self.owner, messages, response_id)
        except Exception:  # the answer is already out: a store failure must not turn it into an error
            log.exception("could not store the turn of conversation %s", self.conversation_id)


@router.get("/v1/conversations/{conversation_id}")
async def read_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
    messages = await asyncio.to_thread(store_of(request).messages, conversation_id, scope_of(request))
    return {"id": conversation_id, "object": "conversation", "messages": messages}


@router.delete("/v1/conversations/{conversation_id}")
async def delete_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
    await asyncio.to_thread(store_of(request).delete, conversation_id, scope_of(request))
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
