"""Documents in chat messages: ``file`` content parts turned into the text the model reads, with the file name
(``DocumentReader``, which the API layer's edge calls while it converts a request's messages).

Two wire forms are taken:

- glm-api's ``{"type": "file", "file_url": {"url": URL}}``
- OpenAI's ``{"type": "file", "file": {"filename": NAME, "file_data": DATA_URL}}`` (a ``file_id`` is refused: this
  server keeps no uploaded files)

URL is a ``data:`` URL (base64 or percent-encoded), a local path or ``file://`` URL inside ``documents_dir`` (only
when that setting names a folder; the path is resolved, so ``..`` and links cannot leave it), or an http(s) URL,
which is refused (``remote_documents`` exists to say so; fetching is not implemented). PDF (pypdf), DOCX
(python-docx), plain text and Markdown are read; anything else, a file that does not parse, one over
``max_document_bytes`` or too many files is a 400.
"""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from glm_edge.errors import InvalidRequestError

TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_SUFFIX_TYPES = {".pdf": PDF, ".docx": DOCX, ".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown",
                 ".markdown": "text/markdown"}


@dataclass(frozen=True)
class DocumentLimits:
    documents_dir: Path | None = None
    remote: bool = False
    max_bytes: int = 10 * 1024 * 1024
    max_documents: int = 8

    @classmethod
    def from_settings(cls, settings: Any) -> "DocumentLimits":
        return cls(documents_dir=getattr(settings, "documents_dir", None),
                   remote=bool(getattr(settings, "remote_documents", False)),
                   max_bytes=int(getattr(settings, "max_document_bytes", cls.max_bytes)),
                   max_documents=int(getattr(settings, "max_documents", cls.max_documents)))


@dataclass
class Document:
    name: str
    media_type: str
    text: str

    def as_text(self) -> str:
        """The document as the model reads it: its text inside a tag that names the file."""
        return f'<document name="{self.name}">\n{self.text.strip()}\n</document>'


class FilePart(Protocol):
    """A ``file`` content part as the request model holds it (``protocol.ContentPart``)."""

    @property
    def file_url(self) -> dict[str, Any] | str | None: ...

    @property
    def file(self) -> dict[str, Any] | None: ...


class DocumentReader:
    """Reads one request's file parts into text, at most ``max_documents`` of them (blocking: run the conversion
    that calls it in a thread). ``documents`` lists what was read, in order."""

    def __init__(self, limits: DocumentLimits) -> None:
        self.limits = limits
        self.documents: list[Document] = []

    def read(self, part: FilePart, here: str) -> str:
        if len(self.documents) >= self.limits.max_documents:
            raise InvalidRequestError(f"{here}: a request may carry at most {self.limits.max_documents} files "
                                      "(max_documents)", param=here, code="too_many_documents")
        document = read_part(part, self.limits, here)
        self.documents.append(document)
        return document.as_text()


def read_part(part: FilePart, limits: DocumentLimits, here: str) -> Document:
    file_url = part.file_url
    file = part.file
    name: str | None = None
    if isinstance(file_url, dict) and isinstance(file_url.get("url"), str):
        url = file_url["url"]
        name = file_url.get("filename") or file_url.get("name")
    elif isinstance(file_url, str):
        url = file_url
    elif isinstance(file, dict):
        if file.get("file_id") and not file.get("file_data"):
            raise InvalidRequestError(f"{here}: file_id is not supported (this server keeps no uploaded files); "
                                      "send the file as file_data (a data URL)", param=here,
                                      code="unsupported_document")
        url = file.get("file_data")
        name = file.get("filename")
        if not isinstance(url, str):
            raise InvalidRequestError(f"{here}: a file part needs file.file_data (a data URL)", param=here)
    else:
        raise InvalidRequestError(f"{here}: a file part needs file_url.url or file.file_data", param=here)
    data, media_type, url_name = _load(url, limits, here)
    name = name or url_name or "document"
    media_type = _media_type(media_type, name, data)
    return Document(name=name, media_type=media_type, text=_extract(data, media_type, name, here))


def _too_big(size: int, limits: DocumentLimits, here: str) -> InvalidRequestError:
    return InvalidRequestError(f"{here}: the document is {size} bytes, over the limit of {limits.max_bytes} bytes "
                               "(max_document_bytes)", param=here, code="document_too_large")


def _load(url: str, limits: DocumentLimits, here: str) -> tuple[bytes, str | None, str | None]:
    """(bytes, media type if the URL says it, file name if the URL has one)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url[:12] else ""
    if scheme == "data":
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise InvalidRequestError(f"{here}: a malformed data URL (no comma)", param=here, code="invalid_document")
        fields = header.split(";")
        media_type = fields[0].strip().lower() or None
        name = next((urllib.parse.unquote(f.split("=", 1)[1]) for f in fields[1:]
                     if f.lower().startswith(("name=", "filename="))), None)
        if "base64" in (f.strip().lower() for f in fields[1:]):
            if len(payload) * 3 // 4 > limits.max_bytes + 3:
                raise _too_big(len(payload) * 3 // 4, limits, here)
            try:
                data = base64.b64decode(payload, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise InvalidRequestError(f"{here}: the data URL is not valid base64 ({exc})", param=here,
                                          code="invalid_document") from exc
        else:
            data = urllib.parse.unquote_to_bytes(payload)
        if len(data) > limits.max_bytes:
            raise _too_big(len(data), limits, here)
        return data, media_type, name
    if scheme in ("http", "https", "ftp"):
        reason = ("fetching remote documents is not implemented" if limits.remote
                  else "remote documents are off (remote_documents)")
        raise InvalidRequestError(f"{here}: {scheme} URLs are refused: {reason}; send the file as a data URL",
                                  param=here, code="remote_document_refused")
    if scheme and scheme != "file" and len(scheme) > 1:  # "C:" is a Windows drive, not a scheme
        raise InvalidRequestError(f"{here}: unsupported URL scheme '{scheme}' in a file part", param=here,
                                  code="invalid_document")
    path_text = urllib.parse.unquote(urllib.parse.urlparse(url).path) if scheme == "file" else url
    data, name = _local(path_text, limits, here)
    return data, None, name


def _local(path_text: str, limits: DocumentLimits, here: str) -> tuple[bytes, str]:
    if limits.documents_dir is None:
        raise InvalidRequestError(f"{here}: local files are not allowed (no documents_dir is set); send the file "
                                  "as a data URL", param=here, code="document_path_refused")
    root = limits.documents_dir.expanduser().resolve()
    candidate = Path(path_text).expanduser()
    path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not path.is_relative_to(root):
        raise InvalidRequestError(f"{here}: the path is outside the documents folder", param=here,
                                  code="document_path_refused")
    if not path.is_file():
        raise InvalidRequestError(f"{here}: no such file in the documents folder: {path_text}", param=here,
                                  code="document_not_found")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _too_big(size, limits, here)
    return path.read_bytes(), path.name


def _media_type(given: str | None, name: str, data: bytes) -> str:
    if given in (PDF, DOCX) or given in TEXT_TYPES:
        return given
    by_suffix = _SUFFIX_TYPES.get(PurePosixPath(name).suffix.lower())
    if by_suffix:
        return by_suffix
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04") and b"word/" in data[:4096]:
        return DOCX
    guessed = mimetypes.guess_type(name)[0]
    return given or guessed or "application/octet-stream"


def _extract(data: bytes, media_type: str, name: str, here: str) -> str:
    def corrupt(kind: str, exc: Exception) -> InvalidRequestError:
        return InvalidRequestError(f"{here}: '{name}' is not a readable {kind} ({type(exc).__name__}: {exc})",
                                   param=here, code="invalid_document")

    if media_type == PDF:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
        except (PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError) as exc:
            raise corrupt("PDF", exc) from exc
    elif media_type == DOCX:
        import zipfile

        import docx

        try:
            document = docx.Document(io.BytesIO(data))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise corrupt("DOCX file", exc) from exc
        except Exception as exc:  # python-docx raises its own PackageNotFoundError and lxml's errors
            raise corrupt("DOCX file", exc) from exc
        lines = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                lines.append(" | ".join(cell.text for cell in row.cells))
        text = "\n".join(lines)
    elif media_type in TEXT_TYPES or media_type.startswith("text/"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise corrupt("UTF-8 text file", exc) from exc
    else:
        raise InvalidRequestError(f"{here}: '{name}' is {media_type}; documents can be PDF, DOCX, plain text or "
                                  "Markdown", param=here, code="unsupported_document")
    if not text.strip():
        raise InvalidRequestError(f"{here}: no text could be read from '{name}' (a scanned PDF needs OCR, which "
                                  "this server does not do)", param=here, code="empty_document")
    return text
