"""A stand-in of the Hugging Face hub's file endpoints, served on loopback for the download tests.

It answers the requests huggingface_hub makes for `snapshot_download` / `hf_hub_download` / `model_info`:

- `GET /api/models/{repo}[/revision/{rev}]`: model info with `sha` and `siblings`;
- `GET /api/models/{repo}/tree/{rev}?recursive=...`: the file listing (with `lfs` entries for large files);
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: small files are served directly with `X-Repo-Commit` and `ETag`;
  large (LFS) files answer `302` to a "CDN" URL on another host name (`localhost` instead of `127.0.0.1`) with
  `X-Linked-Etag` / `X-Linked-Size`, as the real hub does;
- `HEAD|GET /cdn/{sha256}`: the blob, honouring `Range: bytes=N-` with `206` and `Content-Range`.

Errors carry the hub's `X-Error-Code` headers (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), so the
library raises its own typed errors. Faults can be injected per file, keyed "owner/name/path":
`cut_after[key] = [n1, n2, ...]` makes the next GETs of that file send n bytes of the body and then drop the
connection; `fail_status[key] = [503, ...]` answers the next GETs with those statuses. Every request is recorded in
`requests`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 1024  # files at least this large are "LFS" files, served through the CDN redirect


@dataclass
class StandinRepo:
    files: dict[str, bytes]
    sha: str = ""
    revisions: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit
    gated_token: str | None = None  # set: the repo is gated, files need `Authorization: Bearer <token>`

    def __post_init__(self) -> None:
        if not self.sha:
            self.sha = hashlib.sha1(repr(sorted(self.files)).encode()).hexdigest()
        self.revisions.setdefault("main", self.sha)

    def commit_for(self, revision: str) -> str | None:
        if revision == self.sha:
            return self.sha
        return self.revisions.get(revision)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandin:
    """A threaded HTTP server on 127.0.0.1 (free port) imitating the hub for the given repos."""

    def __init__(self, repos: dict[str, StandinRepo]) -> None:
        self.repos = repos
        self.requests: list[Recorded] = []
        self.cut_after: dict[str, list[int]] = {}
        self.fail_status: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        return f"http://localhost:{self.port}"

    def __enter__(self) -> HubStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ----------------------------------------------------------------------------- helpers for the tests

    def mark(self) -> int:
        """A position in `requests`, for `blob_requests(..., since=mark)`."""
        with self._lock:
            return len(self.requests)

    def blob_requests(self, repo: str, path: str, since: int = 0) -> list[Recorded]:
        """The GETs that fetched the bytes of one file (directly or through the CDN), after `since`."""
        data = self.repos[repo].files[path]
        cdn_path = f"/cdn/{hashlib.sha256(data).hexdigest()}"
        with self._lock:
            recorded = self.requests[since:]
        resolve_path = f"/resolve/{self.repos[repo].sha}/{path}"
        return [r for r in recorded if r.method == "GET"
                and (r.path == cdn_path or (len(data) < LFS_THRESHOLD and r.path.endswith(resolve_path)))]

    def record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(Recorded(method, path, headers))

    def next_fault(self, table: dict[str, list[int]], key: str) -> int | None:
        with self._lock:
            queue = table.get(key)
            return queue.pop(0) if queue else None

    def find_blob(self, sha256: str) -> tuple[str, bytes] | None:
        for repo_id, repo in self.repos.items():
            for path, data in repo.files.items():
                if hashlib.sha256(data).hexdigest() == sha256:
                    return f"{repo_id}/{path}", data
        return None


_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<what>revision|tree)/(?P<rev>[^/?]+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")


def _handler_for(hub: HubStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        # ----------------------------------------------------------------------------------- plumbing

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message})

        def _route(self) -> None:
            hub.record(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            path = urlsplit(self.path).path
            if m := _API.match(path):
                return self._api(unquote(m["repo"]), m["what"], unquote(m["rev"] or "main"))
            if m := _RESOLVE.match(path):
                return self._resolve(unquote(m["repo"]), unquote(m["rev"]), unquote(m["path"]))
            if m := _CDN.match(path):
                found = hub.find_blob(m["sha"])
                if found is None:
                    return self._error(404, "EntryNotFound", "blob not found")
                return self._blob(found[0], found[1], {"ETag": f'"{m["sha"]}"'})
            return self._error(404, "NotFound", f"no route for {path}")

        do_GET = _route
        do_HEAD = _route

        # ------------------------------------------------------------------------------------ the API

        def _repo_and_commit(self, repo_id: str, revision: str) -> tuple[StandinRepo, str] | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(401, "RepoNotFound", "Repository not found")
                return None
            commit = repo.commit_for(revision)
            if commit is None:
                self._error(404, "RevisionNotFound", "Invalid rev id: " + revision)
                return None
            return repo, commit

        def _api(self, repo_id: str, what: str | None, revision: str) -> None:
            found = self._repo_and_commit(repo_id, revision)
            if found is None:
                return
            repo, commit = found
            if what == "tree":
                return self._send(200, json.dumps(_tree(repo)).encode())
            info = {
                "_id": repo_id.replace("/", "-"), "id": repo_id, "modelId": repo_id, "sha": commit,
                "private": False, "gated": "manual" if repo.gated_token else False, "disabled": False,
                "lastModified": "2025-01-01T00:00:00.000Z", "tags": [], "downloads": 0, "likes": 0,
                "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            }
            return self._send(200, json.dumps(info).encode())

        def _resolve(self, repo_id: str, revision: str, path: str) -> None:
            found = self._repo_and_commit(repo_id, revision)
            if found is None:
                return
            repo, commit = found
            if repo.gated_token and self.headers.get("Authorization") != f"Bearer {repo.gated_token}":
                return self._error(401, "GatedRepo", "Access to model " + repo_id + " is restricted.")
            data = repo.files.get(path)
            if data is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
            headers = {"X-Repo-Commit": commit}
            if len(data) >= LFS_THRESHOLD:
                sha256 = hashlib.sha256(data).hexdigest()
                headers.update({"Location": f"{hub.cdn}/cdn/{sha256}", "X-Linked-Etag": f'"{sha256}"',
                                "X-Linked-Size": str(len(data)), "ETag": f'"{git_blob_sha1(data)}"'})
                return self._send(302, b"", headers, content_type="text/plain")
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
            return self._blob(f"{repo_id}/{path}", data, headers)

        # --------------------------------------------------------------------------------- the bytes

        def _blob(self, key: str, data: bytes, headers: dict[str, str]) -> None:
            if self.command == "GET":
                status = hub.next_fault(hub.fail_status, key)
                if status is not None:
                    return self._error(status, "Unavailable", "injected failure")
            start, status = 0, 200
            wanted = self.headers.get("Range")
            if wanted:
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
                if m is None or int(m[1]) >= len(data):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                start, status = int(m[1]), 206
                end = int(m[2]) + 1 if m[2] else len(data)
                headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
                data_out = data[start:end]
            else:
                data_out = data
            headers = {**headers, "Accept-Ranges": "bytes"}
            cut = hub.next_fault(hub.cut_after, key) if self.command == "GET" else None
            if cut is None:
                return self._send(status, data_out, headers, content_type="application/octet-stream")
            # Announce the whole body, send part of it, then drop the connection.
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data_out)))
            self.end_headers()
            self.wfile.write(data_out[:cut])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler


def _tree(repo: StandinRepo) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    folders = sorted({"/".join(p.split("/")[:i]) for p in repo.files for i in range(1, p.count("/") + 1)})
    for folder in folders:
        entries.append({"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0,
                        "path": folder})
    for path, data in sorted(repo.files.items()):
        entry: dict[str, object] = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if len(data) >= LFS_THRESHOLD:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        entries.append(entry)
    return entries
