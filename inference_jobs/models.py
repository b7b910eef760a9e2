"""Resolve `--model/--revision` to something loadable, load it, and describe it for provenance.

Resolution rules:
* a local folder with ``stepN/`` (or other checkpoint) subfolders: ``--revision stepN`` picks the
  subfolder; without ``--revision`` the highest ``stepN`` is used;
* a local model folder (has ``config.json``): loaded as is (revision "main", or the folder's
  own name when ``--revision`` equals it);
* otherwise a hub id: ``from_pretrained(id, revision=...)`` (the real hub path; tests only use
  local folders), labelled ``org--name`` unless ``--name`` is given (`hub_label`).
If the model folder's parent (the suite root) has ``suite_manifest.json``, the checkpoint's entry
(n_params, family, step, tokens_seen, ...) is copied into the shard manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memwh.core.errors import MemwhError

from .data import one_line

SUITE_KEYS = (
    "n_params",
    "non_embedding_params",
    "family",
    "step",
    "tokens_seen",
    "train_flops",
    "sequences_per_step",
    "tokens_per_step",
)
_STEP_RE = re.compile(r"^step(\d+)$")
_HASH_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class ModelRef:
    """Where a model comes from and what to call it."""

    spec: str  # as given on the command line
    name: str  # warehouse label
    revision: str  # "main" when none
    load_path: str  # local folder or hub id passed to from_pretrained
    hub_revision: str | None = None  # only for hub ids
    is_local: bool = True
    commit_hash: str | None = None
    suite_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def resolved_path(self) -> str:
        """Absolute folder of a local checkpoint (same model whatever the cwd), or the hub id."""
        return str(Path(self.load_path).resolve()) if self.is_local else self.load_path


def _is_model_dir(p: Path) -> bool:
    return (p / "config.json").is_file()


def _checkpoint_dirs(p: Path) -> list[str]:
    subs = [d.name for d in p.iterdir() if d.is_dir() and _is_model_dir(d)] if p.is_dir() else []

    def key(n: str) -> tuple[int, int, str]:
        m = _STEP_RE.match(n)
        return (0, int(m.group(1)), n) if m else (1, 0, n)

    return sorted(subs, key=key)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec


def resolve_model(spec: str, revision: str | None = None, name: str | None = None) -> ModelRef:
    """Turn --model/--revision/--name into a ModelRef, with one-line errors for bad input."""
    p = Path(spec).expanduser()
    if p.exists():
        if not p.is_dir():
            raise MemwhError(f"{p}: --model must be a model folder (with config.json) or a hub id")
        ckpts = _checkpoint_dirs(p)
        if revision is not None and revision in ckpts:
            load, rev, label_dir = p / revision, revision, p
        elif revision is None and not _is_model_dir(p) and ckpts:
            steps = [c for c in ckpts if _STEP_RE.match(c)]
            rev = steps[-1] if steps else ckpts[-1]
            load, label_dir = p / rev, p
        elif _is_model_dir(p) and (revision is None or revision in (p.name, "main")):
            load, label_dir = p, p
            rev = revision or (p.name if _STEP_RE.match(p.name) else "main")
            if _STEP_RE.match(p.name):  # <model>/stepN given directly: label from the model folder
                label_dir = p.parent
        else:
            avail = (
                ", ".join(ckpts) if ckpts else "none (it is a single checkpoint: drop --revision)"
            )
            if not ckpts and not _is_model_dir(p):
                raise MemwhError(
                    f"{p}: not a model folder (no config.json and no checkpoint subfolders)"
                )
            raise MemwhError(f"{p}: unknown revision {revision!r}; available: {avail}")
        ref = ModelRef(
            spec=spec,
            name=name or label_dir.resolve().name,
            revision=rev,
            load_path=str(load),
            is_local=True,
            commit_hash=_commit_from_path(load),
        )
        ref.suite_meta = suite_metadata(label_dir, ref.name, rev, load)
        return ref
    if _looks_like_path(spec):
        raise MemwhError(
            f"{spec}: model folder not found; check --model (a local folder or a hub id like EleutherAI/pythia-70m)"
        )
    rev = revision or "main"
    return ModelRef(
        spec=spec,
        name=name or hub_label(spec),
        revision=rev,
        load_path=spec,
        hub_revision=rev,
        is_local=False,
    )


def hub_label(hub_id: str) -> str:
    """Default warehouse label of a hub id: the organisation is kept, joined by ``--`` (as in
    the HF cache's ``models--org--name``), so ``EleutherAI/pythia-160m`` and
    ``someone/pythia-160m`` never share a unit: ``EleutherAI--pythia-160m``."""
    return hub_id.strip("/").replace("/", "--")


def _commit_from_path(p: Path) -> str | None:
    """HF cache layout .../snapshots/<40-hex>/ tells the commit."""
    for part in (p.resolve(), *p.resolve().parents):
        if part.parent.name == "snapshots" and _HASH_RE.match(part.name):
            return part.name
    return None


def _manifest_entries(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        if isinstance(data.get("checkpoints"), list):
            # a demo suite's controlled-experiment models (standard, edited) are listed apart
            rows = data["checkpoints"] + (data.get("controls") or [])
            return [d for d in rows if isinstance(d, dict)]
        for v in data.values():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                return [d for d in v if isinstance(d, dict)]
    return []


def suite_checkpoints(suite: Path) -> list[dict[str, Any]]:
    """Checkpoint entries of `<suite>/suite_manifest.json` (empty when absent or unreadable)."""
    try:
        return _manifest_entries(json.loads((Path(suite) / "suite_manifest.json").read_text()))
    except (OSError, json.JSONDecodeError):
        return []


def suite_metadata(model_dir: Path, name: str, revision: str, load_path: Path) -> dict[str, Any]:
    """Entry of `suite_manifest.json` (in the model folder's parent) for this checkpoint, if any."""
    model_dir = model_dir.resolve()
    for root in (model_dir.parent, model_dir):
        f = root / "suite_manifest.json"
        if not f.is_file():
            continue
        try:
            entries = _manifest_entries(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            return {}
        for e in entries:
            same_model = e.get("model") in (model_dir.name, name)
            same_path = (
                e.get("path") and Path(root / str(e["path"])).resolve() == load_path.resolve()
            )
            if (same_model and str(e.get("revision")) == revision) or same_path:
                return {k: e[k] for k in SUITE_KEYS if e.get(k) is not None}
    return {}


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MemwhError(
            f"--device {device}: CUDA is not available on this machine; use --device cpu"
        )
    return device


# --dtype spellings -> torch dtype names (the names settings and manifests record).
DTYPE_NAMES = {
    "fp32": "float32", "float32": "float32",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "float16": "float16",
}  # fmt: skip


def dtype_name(dtype: str) -> str | None:
    """Recorded name of a --dtype value without torch; None for auto (decided by the device)."""
    if dtype == "auto":
        return None
    if dtype not in DTYPE_NAMES:
        raise MemwhError(f"--dtype {dtype}: use auto, fp32, bf16 or fp16")
    return DTYPE_NAMES[dtype]


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    name = dtype_name(dtype)
    if name is None:
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {cpu}"


def load_model(ref: ModelRef, torch_dtype: Any, device: str) -> Any:
    """from_pretrained for local folders and hub ids; errors become one-liners."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is enough
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if not ref.is_local:
        kwargs["revision"] = ref.hub_revision
    try:
        model = AutoModelForCausalLM.from_pretrained(ref.load_path, **kwargs)
    except Exception as e:  # hub errors (httpx/requests based) and bad folders alike -> one line
        msg = one_line(e)
        if not ref.is_local and ("Revision" in type(e).__name__ or "revision" in msg.lower()):
            avail = _hub_revisions(ref.load_path)
            raise MemwhError(
                f"{ref.load_path}: unknown revision {ref.hub_revision!r}{avail}"
            ) from None
        where = (
            ref.load_path
            if ref.is_local
            else f"hub model {ref.load_path} (revision {ref.hub_revision})"
        )
        raise MemwhError(f"{where}: cannot load model ({type(e).__name__}: {msg})") from None
    if ref.commit_hash is None:
        ref.commit_hash = getattr(model.config, "_commit_hash", None) or None
    model.eval()
    model.to(device)
    return model


def _hub_revisions(repo: str) -> str:
    try:
        from huggingface_hub import list_repo_refs

        refs = list_repo_refs(repo)
        names = [b.name for b in refs.branches] + [t.name for t in refs.tags]
        return f"; available: {', '.join(sorted(names)[:20])}" if names else ""
    except Exception:
        return ""


def load_tokenizer(ref: ModelRef) -> Any:
    """The model's tokenizer (needed for text data and zlib ratios); None if it has none."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {}
    if not ref.is_local:
        kwargs["revision"] = ref.hub_revision
    try:
        tok = AutoTokenizer.from_pretrained(ref.load_path, **kwargs)
    except (OSError, ValueError, TypeError):
        return None
    return None if is_empty_tokenizer(tok) else tok


def is_empty_tokenizer(tok: Any) -> bool:
    """A tokenizer without any ordinary token: transformers 5 builds one from a model folder
    that holds no tokenizer files (it tokenizes every text to nothing). memwh treats it as no
    tokenizer: text data is refused, token data gets NULL zlib ratios."""
    try:
        vocab = tok.get_vocab()
    except (AttributeError, NotImplementedError):
        return False
    return len(set(vocab) - set(getattr(tok, "all_special_tokens", []) or [])) == 0


def count_params(model: Any) -> tuple[int, int]:
    """(all parameters, non-embedding parameters: minus input embedding and untied output head)."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    non_emb = total - emb.numel()
    if out is not None and out.weight.data_ptr() != emb.data_ptr():
        non_emb -= out.weight.numel()
    return total, non_emb


def eos_ids(model: Any) -> list[int]:
    """EOS id(s) from the generation config, falling back to the model config."""
    ids: Any = None
    gc = getattr(model, "generation_config", None)
    if gc is not None:
        ids = gc.eos_token_id
    if ids is None:
        ids = getattr(model.config, "eos_token_id", None)
    if ids is None:
        return []
    return [int(i) for i in (ids if isinstance(ids, list | tuple) else [ids])]
