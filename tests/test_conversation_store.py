"""The conversation store on its own: scopes, expiry, deletion, response ids, WAL mode, threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from glm_edge.conversation_store import ANONYMOUS, ConversationNotFoundError, ConversationStore, owner_of


def test_a_key_is_kept_as_a_hash_and_no_key_is_anonymous(tmp_path: Path) -> None:
    assert owner_of(None) == owner_of("") == ANONYMOUS
    assert owner_of("k1") != owner_of("k2") and "k1" not in owner_of("k1")
    store = ConversationStore(tmp_path / "c.sqlite3", ttl=60)
    store.append("conv_a", owner_of("secret-key"), [{"role": "user", "content": "hi"}])
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"secret-key" not in raw and owner_of("secret-key").encode() in raw


def test_turns_scopes_and_deletion(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3", ttl=60)
    me, other = owner_of("k1"), owner_of("k2")
    store.append("conv_a", me, [{"role": "user", "content": "1"}, {"role": "assistant", "content": "a1"}], "r1")
    store.append("conv_a", me, [{"role": "user", "content": "2"}, {"role": "assistant", "content": "a2"}], "r2")
    assert [m["content"] for m in store.messages("conv_a", me)] == ["1", "a1", "2", "a2"]
    for ref in ("conv_a", "r2"):
        resumed = store.resume(ref, me)
        assert resumed.conversation_id == "conv_a" and len(resumed.messages) == 4
    with pytest.raises(ConversationNotFoundError):
        store.messages("conv_a", other)
    with pytest.raises(ConversationNotFoundError):
        store.resume("r1", other)
    with pytest.raises(ConversationNotFoundError):
        store.append("conv_a", other, [{"role": "user", "content": "x"}])
    # an earlier response id branches: a copy up to that answer, the original untouched
    branch = store.resume("r1", me)
    assert branch.conversation_id != "conv_a" and [m["content"] for m in branch.messages] == ["1", "a1"]
    assert len(store.messages("conv_a", me)) == 4
    store.delete("conv_a", me)
    with pytest.raises(ConversationNotFoundError):
        store.messages("conv_a", me)
    with pytest.raises(ConversationNotFoundError):
        store.delete("conv_a", me)


def test_idle_conversations_expire_and_are_purged(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path, ttl=0.3)
    store.append("conv_old", ANONYMOUS, [{"role": "user", "content": "old"}])
    time.sleep(0.5)
    with pytest.raises(ConversationNotFoundError) as caught:
        store.messages("conv_old", ANONYMOUS)
    assert caught.value.kind.status == 404 and caught.value.code == "conversation_not_found"
    store.append("conv_new", ANONYMOUS, [{"role": "user", "content": "new"}])  # a write purges what expired
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT id FROM conversations")] == ["conv_new"]
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3", ttl=60)

    def work(i: int) -> None:
        for j in range(20):
            store.append(f"conv_{i}", ANONYMOUS, [{"role": "user", "content": str(j)}])
            store.messages(f"conv_{i}", ANONYMOUS)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(store.messages(f"conv_{i}", ANONYMOUS)) == 20 for i in range(8))
