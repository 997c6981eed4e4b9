"""Stored conversations over HTTP: the store on ``app.state`` (opened on first use), the caller's scope (a hash of
the API key it sent), ``GET``/``DELETE /v1/conversations/{id}``, and what a chat request does with them
(``Turn``): continue a stored conversation, convert the request at the edge (file parts read into text), and append
the answer when it is done. Messages are stored in the chat layer's ``Message`` form."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request

from glm_edge.api.auth import presented_key
from glm_edge.api.chat_input import chat_input, has_file_parts, stored_message
from glm_edge.api.protocol import ChatCompletionRequest
from glm_edge.chat.deltas import ParsedOutput
from glm_edge.chat.messages import ChatInput, Message
from glm_edge.conversation_store import ConversationStore, new_conversation_id, owner_of
from glm_edge.documents import Document, DocumentLimits, DocumentReader

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


@dataclass
class Turn:
    """One chat request's part in a stored conversation."""

    conversation_id: str
    owner: str
    store: bool
    history: list[Message]  # the stored messages before this request's
    new_messages: list[Message] = field(default_factory=list)  # this request's, documents read into them
    documents: list[Document] = field(default_factory=list)

    @property
    def public_id(self) -> str | None:
        """The id the answer carries: None for an unstored turn of no stored conversation."""
        return self.conversation_id if self.store or self.history else None

    def headers(self) -> dict[str, str]:
        return {"X-Conversation-Id": self.public_id} if self.public_id else {}

    @classmethod
    async def begin(cls, request: ChatCompletionRequest, raw: Request,
                    model: str) -> tuple["Turn", ChatInput]:
        """Resolve ``conversation_id`` (404 when unknown, expired or another key's) and convert the request at the
        edge (``glm_edge.api.chat_input``, file parts read in a thread); with the chat input to render: the stored
        turns first. ``model`` names the model in the errors."""
        owner = scope_of(raw)
        history: list[Message] = []
        if request.conversation_id is not None:
            store = store_of(raw)
            param = "previous_response_id" if str(request.conversation_id).startswith("resp_") else "conversation_id"
            resumed = await asyncio.to_thread(store.resume, request.conversation_id, owner, param=param)
            conversation_id, history = resumed.conversation_id, [stored_message(m) for m in resumed.messages]
        else:
            conversation_id = new_conversation_id()
        documents: list[Document] = []
        if has_file_parts(request):
            files = DocumentReader(DocumentLimits.from_settings(raw.app.state.settings))
            chat = await asyncio.to_thread(chat_input, request, model, earlier=history, files=files)
            documents = files.documents
        else:
            chat = chat_input(request, model, earlier=history)
        turn = cls(conversation_id=conversation_id, owner=owner, store=request.store is not False, history=history,
                   new_messages=chat.messages[len(history):], documents=documents)
        return turn, chat

    async def finish(self, raw: Request, parsed: ParsedOutput, response_id: str) -> None:
        """Append this request's messages and the answer (choice 0) to the store."""
        if not self.store:
            return
        answer = Message(role="assistant", content=parsed.content, reasoning_content=parsed.reasoning_content,
                         tool_calls=parsed.tool_calls or None)
        messages = [m.stored() for m in [*self.new_messages, answer]]
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
