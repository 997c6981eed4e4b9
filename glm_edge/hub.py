"""Downloads from the Hugging Face hub, through huggingface_hub's own machinery.

`download()` lists the repository once (at one commit), picks the files the model's kind needs, and hands them to
`huggingface_hub.snapshot_download(local_dir=...)`: its locks, temporary files with atomic rename, Range-request
resume of a broken connection, retries, tqdm progress bars and environment switches (`HF_ENDPOINT` for mirrors,
`HF_TOKEN`, `HF_HUB_OFFLINE`, `HF_HUB_DISABLE_PROGRESS_BARS`, `HF_HUB_DOWNLOAD_TIMEOUT`) all apply.

Where files go (`local_dir_for`): `<models_home>/<catalog id>` for a catalog model, whether it is named by id or by
either of its repositories (ready GGUF files from the catalog's `gguf_repo` land in the same folder as the
checkpoint), and `<models_home>/<owner>--<name>` for any other repository. `--dir` overrides it. huggingface_hub
keeps its per-file metadata in `<folder>/.cache/huggingface/`.

Resume is huggingface_hub's: files that were complete when a run stopped are kept (a re-run fetches only the
missing ones), and a connection that breaks mid-file continues with a `Range: bytes=N-` request. huggingface_hub 2.x
does that within the same run (up to 5 retries without progress); 1.x stops the run and the next run resumes from
the kept `.incomplete` file. A run that is killed (Ctrl-C) restarts its unfinished file under 2.x, whose temporary
files are per process and deleted on failure (huggingface_hub issue #4196).

Every failure a user can cause or meet (no network, unknown repo or revision, gated repo, no matching file) is
raised as `ConfigError` with one line of text.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from glm_edge.catalog import CatalogEntry, load_catalog
from glm_edge.defaults import models_home
from glm_edge.errors import ConfigError

# Files of a transformers / sentence-transformers checkpoint that conversion and serving read, for repositories
# the catalog does not know (catalog entries list their own `files`).
CHECKPOINT_PATTERNS: tuple[str, ...] = (
    "*.json",  # config, generation_config, tokenizer_config, special_tokens_map, safetensors index, ST modules
    "*.safetensors",
    "tokenizer.model", "tokenizer.json", "*.tiktoken", "vocab.txt", "vocab.json", "merges.txt",
    "sentencepiece.bpe.model", "spiece.model",
    "1_Pooling/*", "2_Normalize/*",
)
# Used for an unknown repository only when it has no safetensors weights at all.
PYTORCH_WEIGHT_PATTERNS: tuple[str, ...] = ("pytorch_model*.bin",)

_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_QUANT_TOKEN = re.compile(r"(?<![A-Za-z0-9])(I?Q[1-8](?:_[A-Za-z0-9]+)*|BF16|F16|F32|FP16|FP32)(?![A-Za-z0-9])",
                          re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """What a user's `ID_OR_REPO` names: the repository to read and the catalog entry, if any."""

    spec: str
    repo: str
    entry: CatalogEntry | None
    folder_name: str


# --------------------------------------------------------------------------------------------- naming


def _is_repo_id(spec: str) -> bool:
    return spec.count("/") == 1 and all(part.strip() for part in spec.split("/"))


def _entry_for_repo(repo: str) -> CatalogEntry | None:
    for entry in load_catalog().entries.values():
        if repo.lower() in (entry.repo.lower(), entry.gguf_repo.lower()):
            return entry
    return None


def local_dir_for(id_or_repo: str, home: Path | None = None) -> Path:
    """The folder `download(id_or_repo)` fills: `<models_home>/<catalog id>` or `<models_home>/<owner>--<name>`.

    A catalog id may be given in any case; a repository id that belongs to a catalog entry (its `repo` or its
    `gguf_repo`) maps to that entry's folder. Nothing is checked on disk or on the network.
    """
    return (home or models_home()) / _target(id_or_repo).folder_name


def _target(spec: str) -> Target:
    spec = spec.strip()
    entry = load_catalog().get(spec)
    if entry is not None:
        return Target(spec, entry.repo, entry, entry.id)
    if not _is_repo_id(spec):
        known = ", ".join(load_catalog().ids())
        raise ConfigError(f"unknown model {spec!r}: give a catalog id ({known}) or a hub repo id like owner/name")
    entry = _entry_for_repo(spec)
    folder = entry.id if entry is not None else spec.replace("/", "--")
    return Target(spec, spec, entry, folder)


# ----------------------------------------------------------------------------------------- file choice


def checkpoint_patterns(entry: CatalogEntry | None, repo_files: Sequence[str], repo: str) -> list[str]:
    """The allow patterns for a checkpoint download: the catalog's `files` for the entry's own repo, else
    CHECKPOINT_PATTERNS (plus `pytorch_model*.bin` when the repo has no safetensors)."""
    if entry is not None and entry.files and entry.repo.lower() == repo.lower():
        return list(entry.files)
    patterns = list(CHECKPOINT_PATTERNS)
    if not any(name.endswith(".safetensors") for name in repo_files):
        patterns += PYTORCH_WEIGHT_PATTERNS
    return patterns


def matching_files(repo_files: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The repo files huggingface_hub would download for these allow patterns (its own filter)."""
    from huggingface_hub.utils import filter_repo_objects

    return sorted(filter_repo_objects(repo_files, allow_patterns=list(patterns)))


def available_quants(repo_files: Sequence[str]) -> list[str]:
    """The quant names (Q4_K_M, Q8_0, IQ4_XS, F16, ...) that occur in the repo's .gguf file names."""
    quants: set[str] = set()
    for name in repo_files:
        if name.lower().endswith(".gguf"):
            quants.update(token.upper() for token in _QUANT_TOKEN.findall(_SPLIT.sub(".gguf", name)))
    return sorted(quants)


def select_gguf(repo_files: Sequence[str], quant: str, repo: str) -> list[str]:
    """The .gguf file(s) of one quant: all parts of a split GGUF (`-00001-of-0000N`), in order.

    `quant` is matched case-insensitively as a whole token of the file name (Q4_K never matches Q4_K_M, Q4_XS
    never matches IQ4_XS); an exact file name (path in the repo or base name) is accepted too.
    """
    ggufs = [name for name in repo_files if name.lower().endswith(".gguf")]
    exact = [name for name in ggufs if quant in (name, name.rsplit("/", 1)[-1])]
    if exact:
        chosen = exact
    else:
        token = re.compile(rf"(?<![A-Za-z0-9]){re.escape(quant)}(?![A-Za-z0-9_])", re.IGNORECASE)
        chosen = [name for name in ggufs if token.search(_SPLIT.sub(".gguf", name))]
    if not chosen:
        if not ggufs:
            raise ConfigError(f"{repo} has no .gguf files; download the checkpoint without --gguf and convert it")
        quants = ", ".join(available_quants(ggufs)) or ", ".join(sorted(ggufs))
        raise ConfigError(f"no GGUF file for quant {quant!r} in {repo}; available: {quants}")
    groups: dict[str, list[str]] = {}
    for name in chosen:
        groups.setdefault(_SPLIT.sub("", name), []).append(name)
    if len(groups) > 1:
        names = ", ".join(sorted(groups))
        raise ConfigError(f"several GGUF files in {repo} match {quant!r} ({names}); pass the exact file name to --gguf")
    parts = sorted(next(iter(groups.values())))
    split = _SPLIT.search(parts[0])
    if split is not None:
        count = int(split[2])
        numbers = sorted(int(_SPLIT.search(p)[1]) for p in parts)  # type: ignore[index]
        if numbers != list(range(1, count + 1)):
            raise ConfigError(f"{repo} holds only parts {numbers} of {count} of the split GGUF {parts[0]}")
    return parts


# ------------------------------------------------------------------------------------------- errors


def _offline_mode() -> bool:
    """huggingface_hub's own offline switch (HF_HUB_OFFLINE, read when it is imported)."""
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if callable(is_offline) else constants.HF_HUB_OFFLINE)


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport errors of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx in 1.x, requests before)."""
    found: list[type[BaseException]] = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "RequestException")):
        try:
            found.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _is_offline_error(error: BaseException) -> bool:
    from huggingface_hub.errors import OfflineModeIsEnabled

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OfflineModeIsEnabled):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def _hub_errors(repo: str, revision: str | None) -> Iterator[None]:
    """Turn huggingface_hub's and the HTTP client's exceptions into one-line ConfigErrors."""
    from huggingface_hub.errors import (
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = _endpoint()
    unreachable = f"cannot reach the hub at {endpoint} (set HF_ENDPOINT to use a mirror, or check the network)"
    try:
        yield
    except ConfigError:
        raise
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:
        if _is_offline_error(exc):
            raise ConfigError(f"HF_HUB_OFFLINE is set: cannot download {repo}; unset it to use the hub") from None
        cause = exc.__cause__
        if isinstance(cause, FileMetadataError):
            raise ConfigError(f"downloading {repo}: the server at {endpoint} does not answer like a hub (no commit "
                              f"or ETag headers); check HF_ENDPOINT") from None
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            raise ConfigError(f"downloading {repo}: the hub at {endpoint} answered HTTP "
                              f"{cause.response.status_code}; try again later") from None
        raise ConfigError(f"downloading {repo}: {unreachable}") from None
    except GatedRepoError:
        raise ConfigError(f"{repo} is gated: accept its conditions on the hub page, then set HF_TOKEN "
                          f"(or --token) to a token with access") from None
    except RevisionNotFoundError:
        raise ConfigError(f"revision {revision!r} not found in {repo} on {endpoint}") from None
    except RemoteEntryNotFoundError as exc:
        raise ConfigError(f"a file is missing from {repo} on {endpoint}: {_one_line(exc)[:200]}") from None
    except RepositoryNotFoundError:
        raise ConfigError(f"repository {repo} not found on {endpoint} (if it is private or gated, set HF_TOKEN)") \
            from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise ConfigError(f"access to {repo} denied (HTTP {status}): set HF_TOKEN to a token with access") \
                from None
        raise ConfigError(f"downloading {repo}: the hub at {endpoint} answered HTTP {status}: "
                          f"{_one_line(exc)[:200]}") from None
    except HFValidationError as exc:
        raise ConfigError(f"invalid repo id or revision for {repo}: {_one_line(exc)[:200]}") from None
    except _network_errors() as exc:
        kind = type(exc).__name__
        if "Connect" in kind or "Timeout" in kind:
            raise ConfigError(f"downloading {repo}: {unreachable} ({kind})") from None
        raise ConfigError(f"downloading {repo} was interrupted ({kind}: {_one_line(exc)[:160]}); "
                          f"run the same command again to continue (complete files are kept)") from None
    except OSError as exc:
        raise ConfigError(f"downloading {repo} failed: {_one_line(exc)[:240]}") from None


# ------------------------------------------------------------------------------------------ download


def _list_repo(repo: str, revision: str | None, token: str | None) -> tuple[str, list[str]]:
    """The commit `revision` points at and the repo's file paths at that commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    info = api.model_info(repo, revision=revision)
    if info.sha is None:
        raise ConfigError(f"the hub at {_endpoint()} gave no commit for {repo}; is HF_ENDPOINT a hub mirror?")
    files = [sibling.rfilename for sibling in info.siblings or []]
    return info.sha, files


def _offline_copy(folder: Path, gguf: str | None, patterns: Sequence[str]) -> Path | None:
    """With HF_HUB_OFFLINE, what an earlier download left in `folder` (only complete files are ever there)."""
    if not folder.is_dir():
        return None
    present = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and ".cache" not in p.relative_to(folder).parts]
    if gguf is not None:
        try:
            return folder / select_gguf(present, gguf, str(folder))[0]
        except ConfigError:
            return None
    return folder if matching_files(present, patterns) else None


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if enabled or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def download(id_or_repo: str, *, revision: str | None = None, gguf: str | None = None, dest: Path | None = None,
             token: str | None = None, progress: bool = True) -> Path:
    """Download a model from the hub and return where it is.

    `id_or_repo` is a catalog id or a hub repo id (owner/name). Without `gguf`, the checkpoint files its kind
    needs are fetched (the catalog's `files` patterns, else CHECKPOINT_PATTERNS) and the folder is returned. With
    `gguf` (a quant such as "Q4_K_M", or an exact .gguf file name), the matching GGUF (all parts of a split one)
    is fetched from the catalog's `gguf_repo` or from the given repo, and the path of its (first) file is
    returned. `dest` defaults to `local_dir_for(id_or_repo)`; `token` defaults to huggingface_hub's (HF_TOKEN or
    the saved login). Raises ConfigError with one line for every failure.
    """
    from huggingface_hub import snapshot_download

    target = _target(id_or_repo)
    repo = target.repo
    if gguf is not None and target.entry is not None and target.spec.lower() == target.entry.id.lower():
        if not target.entry.gguf_repo:
            raise ConfigError(f"the catalog knows no GGUF repository for {target.entry.id}: download the "
                              f"checkpoint without --gguf and convert it, or give a GGUF repo id")
        repo = target.entry.gguf_repo
    folder = Path(dest) if dest is not None else models_home() / target.folder_name

    if _offline_mode():
        # HF_HUB_OFFLINE: what an earlier download left is the answer, if there is one.
        local = _offline_copy(folder, gguf, checkpoint_patterns(target.entry, [], repo) if gguf is None else [])
        if local is None:
            raise ConfigError(f"HF_HUB_OFFLINE is set and {target.spec} is not in {folder}; "
                              f"unset HF_HUB_OFFLINE to download it")
        return local

    with _hub_errors(repo, revision):
        commit, repo_files = _list_repo(repo, revision, token)
    if gguf is not None:
        wanted = select_gguf(repo_files, gguf, repo)
        allow = [glob.escape(name) for name in wanted]
    else:
        allow = checkpoint_patterns(target.entry, repo_files, repo)
        wanted = matching_files(repo_files, allow)
        if not wanted:
            hint = ""
            if quants := available_quants(repo_files):
                hint = f"; it holds GGUF files: add --gguf with one of {', '.join(quants)}"
            raise ConfigError(f"no files in {repo} match {', '.join(allow)}{hint}")

    with _hub_errors(repo, revision), _progress_bars(progress):
        snapshot_download(repo, revision=commit, local_dir=folder, allow_patterns=allow, token=token)

    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"download of {repo} is incomplete, missing {', '.join(missing[:5])}; run it again")
    return folder / wanted[0] if gguf is not None else folder
