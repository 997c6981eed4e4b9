"""The `glm-edge` command line: thin click wrappers over the library (installed as glm_edge_cli.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import UnionType
from typing import Any, Callable, Literal, Union, get_args, get_origin

import click
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from glm_edge.errors import ConfigError

QUANT_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0",
               "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_NL", "IQ4_XS"]


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="glm-edge")
def main() -> None:
    """glm-edge: GLM-4 and DeepSeek-R1 distills behind the OpenAI API, on one workstation."""


# ---------------------------------------------------------------------------------------------- serve


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """The click type of a Settings field and whether the flag repeats (list fields)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin is Literal:
        return click.Choice([str(a) for a in get_args(annotation)]), False
    if origin in (Union, UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if origin is list:
        return str, True  # each value may hold several, comma-separated; pydantic converts the items
    if annotation is Path:
        return click.Path(path_type=Path), False
    if annotation in (int, float, str):
        return annotation, False
    return str, False


def _env_names(name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(a) for a in alias.choices if isinstance(a, str) and a.isupper()]
    return [f"GLM_EDGE_{name.upper()}"]


def settings_options(exclude: set[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One click option per `Settings` field (the model is the one place a setting is declared): the flag is
    the field's name (or its `flag` extra), the help its description, default and environment names."""
    from glm_edge.settings import Settings

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for name, field in reversed(list(Settings.model_fields.items())):
            if name in exclude:
                continue
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            flag = "--" + str(extra.get("flag", name.replace("_", "-")))
            notes = []
            if field.default is not None and field.default is not PydanticUndefined and field.default is not False:
                notes.append(str(field.default))
            notes.append("env " + " or ".join(_env_names(name, field)))
            help_text = f"{field.description} [{'; '.join(notes)}]"
            if field.annotation is bool:
                option = click.option(flag, name, is_flag=True, default=None, help=help_text)
            else:
                kind, repeat = _flag_type(field.annotation)
                if repeat:
                    help_text += " (repeatable, or comma-separated)"
                option = click.option(flag, name, type=kind, multiple=repeat, help=help_text)
            command = option(command)
        return command

    return decorate


def _given(flags: dict[str, Any]) -> dict[str, Any]:
    """Flags as `load_settings` takes them: repeated values split on commas, unset flags left out."""
    out: dict[str, Any] = {}
    for name, value in flags.items():
        if isinstance(value, tuple):
            value = [item.strip() for part in value for item in part.split(",") if item.strip()]
        out[name] = value
    return out


@main.command()
@click.argument("model", required=False)
@settings_options(exclude={"model"})
def serve(model: str | None, config: Path | None, **flags: Any) -> None:
    """Serve MODEL (catalog id, GGUF path or hub repo id; env GLM_MODEL) with the OpenAI and GLM-API routes.

    Without MODEL it serves the embedded default: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) and all-MiniLM-L6-v2, offline.
    Settings come from flags, then the environment (GLM_EDGE_<NAME>, GLM_MODEL, API_PORT), then --config.
    """
    from glm_edge.server import run_server
    from glm_edge.settings import load_settings

    try:
        settings = load_settings(config, model=model, **_given(flags))
        run_server(settings)
    except ConfigError as exc:
        raise _fail(exc) from None
    except ValueError as exc:  # pydantic validation of settings
        raise click.ClickException(" ".join(str(exc).split())) from None


# ------------------------------------------------------------------------------------------- download


@main.command()
@click.argument("id_or_repo")
@click.option("--revision", help="branch, tag or commit")
@click.option("--gguf", "gguf", metavar="QUANT", help="download a ready GGUF of this quant (e.g. Q4_K_M)")
@click.option("--dir", "dest", type=click.Path(path_type=Path), help="destination folder [models/<id>]")
@click.option("--token", envvar="HF_TOKEN", help="Hugging Face token [env HF_TOKEN]")
def download(id_or_repo: str, revision: str | None, gguf: str | None, dest: Path | None, token: str | None) -> None:
    """Download a model from the Hugging Face hub (resumes; honours HF_ENDPOINT and HF_HUB_OFFLINE)."""
    from glm_edge import hub

    try:
        path = hub.download(id_or_repo, revision=revision, gguf=gguf, dest=dest, token=token)
    except ConfigError as exc:
        raise _fail(exc) from None
    click.echo(str(path))


# -------------------------------------------------------------------------------------------- convert


@main.command()
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="output file (GGUF) or folder (ONNX)")
@click.option("--type", "out_type", type=click.Choice(QUANT_TYPES, case_sensitive=False), default="F16",
              show_default=True)
@click.option("--int8", is_flag=True, help="embedding models: also write a dynamically quantised int8 ONNX")
@click.option("--chat-template", type=click.Path(exists=True, path_type=Path),
              help="Jinja file to embed instead of the checkpoint's")
@click.option("--threads", type=int, help="threads for quantization")
def convert(src: Path, out: Path | None, out_type: str, int8: bool, chat_template: Path | None,
            threads: int | None) -> None:
    """Convert a checkpoint: chat models to GGUF (F16, Q8_0, Q4_K_M, ...), embedding models to ONNX."""
    import glm_edge_convert as conv

    try:
        if conv.is_embedding_checkpoint(src):
            from glm_edge_convert.embedding_onnx import convert_embedding

            target = out or src.with_name(src.name + "-onnx")
            path = convert_embedding(src, target, int8=int8)
        else:
            target = out or src.parent / f"{src.name}-{out_type.upper()}.gguf"
            template = chat_template.read_text(encoding="utf-8") if chat_template else None
            path = conv.convert_to_gguf(src, target, out_type.upper(), chat_template=template, threads=threads)
    except ConfigError as exc:
        raise _fail(exc) from None
    click.echo(str(path))


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--type", "qtype", type=click.Choice(QUANT_TYPES, case_sensitive=False), default="Q4_K_M",
              show_default=True)
@click.option("--threads", type=int, help="threads [all cores]")
def quantize(src: Path, out: Path, qtype: str, threads: int | None) -> None:
    """Quantize a GGUF with llama.cpp's own quantizer."""
    import glm_edge_convert as conv

    try:
        click.echo(str(conv.quantize_gguf(src, out, qtype.upper(), threads=threads)))
    except ConfigError as exc:
        raise _fail(exc) from None


@main.command()
@click.option("--arch", type=click.Choice(["chatglm", "glm4", "qwen2", "llama"]), required=True)
@click.option("--size", required=True, help="9b, 8b, 7b, 1.5b or tiny (which exist depends on --arch)")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--type", "out_type", type=click.Choice(QUANT_TYPES, case_sensitive=False), default="F16",
              show_default=True)
def synth(arch: str, size: str, out: Path, out_type: str) -> None:
    """Write a GGUF with a real model's exact shapes and random weights (for benchmarks)."""
    import glm_edge_convert as conv

    try:
        click.echo(str(conv.synthesize(arch, size, out, out_type.upper())))
    except ConfigError as exc:
        raise _fail(exc) from None


# --------------------------------------------------------------------------------------------- models


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_models(as_json: bool) -> None:
    """List the catalog's models and what is on disk."""
    from glm_edge.inventory import inventory

    rows = inventory()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["id"]) for r in rows)
    for row in rows:
        click.echo(f"{row['id']:<{width}}  {row['kind']:<9}  {row['status']:<14}  {row['size']:>9}  {row['path']}")


# ---------------------------------------------------------------------------------------------- bench


@main.command()
@click.argument("model", required=False)
@click.option("--url", help="benchmark a running server instead of starting one")
@click.option("--concurrency", default="1,4,8", show_default=True, help="comma-separated concurrency levels")
@click.option("--max-tokens", type=int, default=128, show_default=True, help="tokens generated per request")
@click.option("--prompt-tokens", type=int, default=32, show_default=True, help="approximate prompt length")
@click.option("--requests", "requests_per_level", type=int, help="requests per level [2 x concurrency]")
@click.option("--no-baseline", is_flag=True, help="skip llama-cpp-python's Llama baseline")
@click.option("--parallel", type=int, help="slots of the server started for the run [max concurrency]")
@click.option("--threads", type=int, help="CPU threads of the server and the baseline")
@click.option("--long-tokens", type=int, default=1024, show_default=True,
              help="a long answer to check flat per-token cost (0 skips)")
@click.option("--no-join", is_flag=True, help="skip the TTFT-while-others-stream measurement")
@click.option("--api", type=click.Choice(["completions", "chat"]), default="completions", show_default=True)
@click.option("--api-key", help="key for a server started with --api-key")
@click.option("--in-process", is_flag=True, help="drive the engine in this process (no HTTP)")
@click.option("--reference", is_flag=True, help="also measure a bare batched llama_decode loop per level")
@click.option("--ctx-size", type=int, help="context per slot of the server started for the run")
@click.option("--n-gpu-layers", type=int, default=-1, show_default=True)
@click.option("--embeddings", is_flag=True, help="benchmark the embedder instead of chat")
@click.option("--keywords", "keywords_dataset", metavar="DATASET",
              help="keyphrase quality and s/doc of glm-edge, KeyBERT and YAKE on DATASET (a LIAAD-layout zip or "
                   "folder; 'inspec' for the vendored Inspec)")
@click.option("--limit", type=int, help="with --keywords: the first N documents only")
@click.option("--skip", type=int, default=0, help="with --keywords: leave out the first N documents (a held-out slice)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench(model: str | None, url: str | None, concurrency: str, max_tokens: int, prompt_tokens: int,
          requests_per_level: int | None, no_baseline: bool, parallel: int | None, threads: int | None,
          long_tokens: int, no_join: bool, api: str, api_key: str | None, in_process: bool, reference: bool,
          ctx_size: int | None, n_gpu_layers: int, embeddings: bool, keywords_dataset: str | None, limit: int | None,
          skip: int, as_json: bool) -> None:
    """Measure tok/s, aggregate tok/s and TTFT through the HTTP API, against llama-cpp-python's Llama."""
    try:
        levels = [int(x) for x in concurrency.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of integers", param_hint="--concurrency") from None
    try:
        if keywords_dataset:
            from glm_edge.keywords.bench import DEFAULT_DATASET, format_keyword_table, run_keyword_bench

            dataset = DEFAULT_DATASET if keywords_dataset.lower() == "inspec" else Path(keywords_dataset)
            if not dataset.exists():
                raise click.BadParameter(f"{dataset} does not exist", param_hint="--keywords")
            report = run_keyword_bench(dataset, limit=limit, skip=skip, threads=threads, model=model)
            click.echo(json.dumps(report, indent=2) if as_json else format_keyword_table(report))
            return
        if embeddings:
            from glm_edge.embed.bench import format_embed_table, run_embed_bench

            result = run_embed_bench(model=model, concurrency=max(levels))
            click.echo(json.dumps(result, indent=2) if as_json else format_embed_table(result))
            return
        from glm_edge.bench import format_table, run_bench

        result = run_bench(url=url, model=model, concurrency=levels, max_tokens=max_tokens,
                           prompt_tokens=prompt_tokens, requests_per_level=requests_per_level,
                           baseline=not no_baseline, parallel=parallel, threads=threads, long_tokens=long_tokens,
                           join=not no_join, api=api, api_key=api_key, inprocess=in_process, ctx_size=ctx_size,
                           n_gpu_layers=n_gpu_layers, reference=reference)
    except ConfigError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))


if __name__ == "__main__":
    sys.exit(main())
