"""Token sources: what `--data` can point at, read as fixed-length windows per sequence index.

Three kinds (chosen from the path, see `open_source`):

* Parquet token table with columns ``seq_idx`` (int) and ``tokens`` (list<int>); optional
  ``duplicates`` / ``is_canary`` / ``category`` / ``insert_first_step`` / ``insert_last_step``
  columns are carried over as sequence metadata (contract.SEQUENCE_META_SCHEMA).
* GPT-NeoX / Megatron ``MMIDIDX`` indexed dataset (``X.bin`` + ``X.idx``; pass either file
  or the common prefix ``X``): sequence ``i`` is item ``i`` of the index (for the Pythia
  pre-shuffled Pile every item is one 2049-token training sample). A ``.bin`` without an
  ``.idx`` is read as Pythia's plain uint16 memmap of 2049-token rows; ``.npy`` files holding
  a 2-D integer array are read with ``np.load(mmap_mode="r")``.
* Anything else is handed to HF ``datasets`` (local jsonl/json/csv/parquet/arrow file, a
  ``save_to_disk`` folder, or a hub name) and its ``text`` column is tokenized with the
  model's tokenizer (``seq_idx`` = row index), ``add_special_tokens=False``: the prompt starts
  at the text's first content token, never at a BOS the tokenizer would add.

Every source exposes the same small interface: the index range it covers, a way to fetch
the first ``n`` tokens of a batch of sequence indices, and a stable data fingerprint.

Fingerprint definition (`file_fingerprint`): sha256 over the file's size and its full
content for files up to 64 MiB; for larger files over size + first 4 MiB + 4 MiB at the
middle + last 4 MiB. mtime and path are deliberately excluded so a copy of the same file on
another node gets the same fingerprint. Sources combine the digests of their files (and, for
text, of the tokenizer) and keep 16 hex digits: ``<kind>-<16 hex>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from memwh.core import contract
from memwh.core.errors import MemwhError

_FULL_HASH_LIMIT = 64 << 20
_SAMPLE = 4 << 20

# GPT-NeoX / Megatron indexed dataset (MMapIndexedDataset) constants.
MMIDIDX_MAGIC = b"MMIDIDX\x00\x00"
MMIDIDX_DTYPES: dict[int, type[np.generic]] = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    8: np.uint16,
}  # codes 6/7 are float types (meaning differs between GPT-NeoX and Megatron-LM): never tokens
PYTHIA_ROW_LEN = 2049


def file_fingerprint(path: str | os.PathLike) -> str:
    """Cheap, content-based sha256 hex digest of one file (see module docstring)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256()
    h.update(f"size={size};".encode())
    with open(p, "rb") as f:
        if size <= _FULL_HASH_LIMIT:
            while b := f.read(1 << 20):
                h.update(b)
        else:
            for off in (0, size // 2 - _SAMPLE // 2, size - _SAMPLE):
                f.seek(off)
                h.update(f.read(_SAMPLE))
    return h.hexdigest()


def one_line(e: BaseException) -> str:
    """An exception as one short line for a MemwhError message."""
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)


def _combine(kind: str, *parts: str) -> str:
    h = hashlib.sha256("|".join((kind, *parts)).encode()).hexdigest()
    return f"{kind}-{h[:16]}"


class TokenSource(Protocol):
    """What the scorer needs from a data source."""

    description: str
    fingerprint: str

    def index_range(self) -> tuple[int, int]:
        """[start, end) of the sequence indices this source can address."""
        ...

    def indices_in(self, lo: int, hi: int) -> np.ndarray:
        """Sorted sequence indices present in [lo, hi) (dense sources: arange)."""
        ...

    def read(self, seq_idx: np.ndarray, n_tokens: int) -> np.ndarray:
        """int64 array [len(seq_idx), n_tokens]: the first n_tokens of each sequence (a
        MemwhError when one is shorter)."""
        ...

    def read_padded(self, seq_idx: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """(int64 [len(seq_idx), n_tokens] with zeros past a short sequence's end, lengths)."""
        ...

    def sequence_meta(self, keep: tuple[str, ...] = ()) -> pa.Table | None:
        """seq_idx + the metadata columns (contract.SEQUENCE_META_COLUMNS) of the whole source
        when it has them, + ``extra`` (JSON of the `keep` columns) when some are kept."""
        ...

    def columns(self) -> list[str]:
        """Columns a row has besides its tokens (what --keep-columns may name)."""
        ...


def with_extra(meta: pa.Table | None, seq_idx: pa.Array, kept: pa.Table | None) -> pa.Table | None:
    """Sequence metadata plus the ``extra`` JSON column of the kept columns (contract)."""
    if kept is None or not kept.num_columns:
        return meta
    if meta is None:
        meta = contract.sequence_meta_table({}, seq_idx)
    rows = kept.to_pylist()
    extra = pa.array([json.dumps(r, default=str, sort_keys=True) for r in rows], pa.string())
    out = meta.append_column(contract.SEQUENCE_EXTRA_FIELD, extra)
    md = {contract.KEEP_COLUMNS_KEY: json.dumps(sorted(kept.column_names)).encode()}
    return out.replace_schema_metadata(md)


def check_keep_columns(source: TokenSource, keep: tuple[str, ...]) -> None:
    """--keep-columns must name columns the data has (one line listing those it has)."""
    have = source.columns()
    missing = [c for c in keep if c not in have]
    if missing:
        avail = ", ".join(have) if have else "none (token arrays carry no metadata columns)"
        raise MemwhError(
            f"{source.description}: --keep-columns {', '.join(missing)} not in the data; "
            f"its columns: {avail}"
        )


def read_window(
    source: TokenSource, seq_idx: np.ndarray, n_tokens: int, offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens [offset, offset + n_tokens) of each sequence and whether it is long enough
    (rows too short come back as zeros with ok False: the runner skips and counts them)."""
    toks, lens = source.read_padded(np.asarray(seq_idx, np.int64), offset + n_tokens)
    return toks[:, offset:], lens >= offset + n_tokens


@dataclass
class RowWindows:
    """Several scored windows per row (``--windows-per-row W``): window w of row r is the
    sequence ``seq_idx = r * W + w``, tokens ``[offset + w * width, offset + (w + 1) * width)``
    of the row (width = prompt + continuation; the run's --offset is applied by read_window),
    so windows of one row never overlap. A row too short for window w skips that window only.
    Sequence metadata of a row applies to its W windows. The fingerprint names W and the
    width: other windows are another scored dataset."""

    base: Any
    per_row: int
    width: int
    description: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self.description = (
            f"{self.base.description} ({self.per_row} windows of {self.width} per row)"
        )
        self.fingerprint = f"{self.base.fingerprint}-w{self.per_row}x{self.width}"

    def index_range(self) -> tuple[int, int]:
        lo, hi = self.base.index_range()
        return lo * self.per_row, hi * self.per_row

    def indices_in(self, lo: int, hi: int) -> np.ndarray:
        w = self.per_row
        rows = self.base.indices_in(lo // w, -(-hi // w))
        ids = (rows[:, None] * w + np.arange(w)[None, :]).ravel()
        return ids[(ids >= lo) & (ids < hi)]

    def read(self, seq_idx: np.ndarray, n_tokens: int) -> np.ndarray:
        return _strict(self.description, seq_idx, *self.read_padded(seq_idx, n_tokens))

    def read_padded(self, seq_idx: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        seq_idx = np.asarray(seq_idx, np.int64)
        rows, w = seq_idx // self.per_row, seq_idx % self.per_row
        start = w * self.width
        need = int(start.max(initial=0)) + n_tokens
        toks, lens = self.base.read_padded(rows, need)
        pos = start[:, None] + np.arange(n_tokens)[None, :]
        return np.take_along_axis(toks, pos, axis=1), np.maximum(lens - start, 0)

    def sequence_meta(self, keep: tuple[str, ...] = ()) -> pa.Table | None:
        meta = self.base.sequence_meta(keep)
        if meta is None:
            return None
        n = meta.num_rows
        rep = meta.take(pa.array(np.repeat(np.arange(n), self.per_row)))
        seq = rep.column("seq_idx").to_numpy() * self.per_row + np.tile(np.arange(self.per_row), n)
        return rep.set_column(0, "seq_idx", pa.array(seq, pa.int64()))

    def columns(self) -> list[str]:
        return self.base.columns()


def _strict(desc: str, seq_idx: np.ndarray, toks: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """`toks` when every sequence is long enough, else the one-line error for the first."""
    n = toks.shape[1]
    if (short := np.flatnonzero(lens < n)).size:
        i = int(short[0])
        raise _too_short(desc, int(seq_idx[i]), int(lens[i]), n)
    return toks


def _too_short(desc: str, seq: int, have: int, need: int) -> MemwhError:
    return MemwhError(
        f"{desc}: sequence {seq} has {have} tokens but --prompt-len + --cont-len needs {need}; "
        "lower them or drop short sequences"
    )


# --------------------------------------------------------------------------- Parquet tokens
@dataclass
class ParquetTokens:
    """A Parquet token table (seq_idx, tokens[, duplicates, is_canary])."""

    path: Path
    description: str = ""
    fingerprint: str = ""
    _seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _order: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _pf: Any = None
    _cached: Any = None
    _bounds: Any = None

    def __post_init__(self) -> None:
        self.description = str(self.path)
        try:
            self._pf = pq.ParquetFile(self.path)
            names = self._pf.schema_arrow.names
        except Exception as e:
            raise MemwhError(
                f"{self.path}: unreadable Parquet file ({one_line(e)}); check the --data path"
            ) from None
        for col in ("seq_idx", "tokens"):
            if col not in names:
                raise MemwhError(
                    f"{self.path}: no column {col!r} (a token table needs seq_idx and tokens)"
                )
        seq = self._pf.read(columns=["seq_idx"]).column("seq_idx")
        if seq.null_count:
            raise MemwhError(f"{self.path}: column seq_idx has nulls; every row needs an index")
        seq_np = seq.to_numpy().astype(np.int64)
        order = np.argsort(seq_np, kind="stable")
        s = seq_np[order]
        if len(s) > 1 and (dups := np.flatnonzero(s[1:] == s[:-1])).size:
            raise MemwhError(
                f"{self.path}: seq_idx {int(s[dups[0]])} appears more than once; make seq_idx unique"
            )
        self._seq, self._order = s, order
        md = self._pf.metadata
        self._bounds = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
        self.fingerprint = _combine("parquet", file_fingerprint(self.path))

    def index_range(self) -> tuple[int, int]:
        if not len(self._seq):
            raise MemwhError(f"{self.path}: the token table has no rows")
        return int(self._seq[0]), int(self._seq[-1]) + 1

    def indices_in(self, lo: int, hi: int) -> np.ndarray:
        a, b = np.searchsorted(self._seq, [lo, hi])
        return self._seq[a:b]

    def _rows_for(self, seq_idx: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._seq, seq_idx)
        if (pos >= len(self._seq)).any() or (
            self._seq[np.minimum(pos, len(self._seq) - 1)] != seq_idx
        ).any():
            raise MemwhError(f"{self.path}: requested seq_idx not in the table")
        return self._order[pos]

    def _group(self, g: int, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens [rows, n_tokens] and lengths of row group g (one group cached: reads are sequential)."""
        if self._cached is not None and self._cached[0] == (g, n_tokens):
            return self._cached[1], self._cached[2]
        col = self._pf.read_row_group(g, columns=["tokens"]).column("tokens").combine_chunks()
        lens = (
            pc.fill_null(pc.list_value_length(col), 0)
            .to_numpy(zero_copy_only=False)
            .astype(np.int64)
        )
        arr = np.zeros((len(col), n_tokens), np.int64)
        ok = lens >= n_tokens
        if ok.any():
            flat = pc.list_flatten(pc.list_slice(col.filter(pa.array(ok)), 0, n_tokens))
            if flat.null_count:
                raise MemwhError(f"{self.path}: column tokens holds null token ids; fix the table")
            arr[ok] = flat.to_numpy(zero_copy_only=False).astype(np.int64).reshape(-1, n_tokens)
        self._cached = ((g, n_tokens), arr, lens)
        return arr, lens

    def read(self, seq_idx: np.ndarray, n_tokens: int) -> np.ndarray:
        return _strict(self.description, seq_idx, *self.read_padded(seq_idx, n_tokens))

    def read_padded(self, seq_idx: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        seq_idx = np.asarray(seq_idx, np.int64)
        rows = self._rows_for(seq_idx)
        groups = np.searchsorted(self._bounds, rows, side="right") - 1
        out = np.zeros((len(rows), n_tokens), np.int64)
        have = np.zeros(len(rows), np.int64)
        for i, (r, g) in enumerate(zip(rows.tolist(), groups.tolist(), strict=True)):
            arr, lens = self._group(g, n_tokens)
            j = r - int(self._bounds[g])
            have[i] = lens[j]
            out[i] = arr[j]
        return out, have

    def columns(self) -> list[str]:
        return [c for c in self._pf.schema_arrow.names if c not in ("seq_idx", "tokens")]

    def sequence_meta(self, keep: tuple[str, ...] = ()) -> pa.Table | None:
        names = self._pf.schema_arrow.names
        cols = [c for c in contract.SEQUENCE_META_COLUMNS if c in names]
        if not cols and not keep:
            return None
        t = self._pf.read(columns=list(dict.fromkeys(["seq_idx", *cols, *keep])))
        t = t.sort_by("seq_idx")
        seq = t.column("seq_idx").combine_chunks()
        meta = {c: t.column(c).combine_chunks() for c in cols}
        base = contract.sequence_meta_table(meta, seq) if cols else None
        return with_extra(base, seq, t.select(list(keep)) if keep else None)


# --------------------------------------------------------------------------- memmaps
@dataclass
class MemmapRows:
    """Fixed-length rows (Pythia uint16 memmap of 2049-token rows, or a 2-D .npy)."""

    path: Path
    rows: np.ndarray
    description: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self.description = str(self.path)
        self.fingerprint = _combine("memmap", file_fingerprint(self.path), str(self.rows.shape[1]))

    def index_range(self) -> tuple[int, int]:
        return 0, int(self.rows.shape[0])

    def indices_in(self, lo: int, hi: int) -> np.ndarray:
        return np.arange(lo, hi, dtype=np.int64)

    def read(self, seq_idx: np.ndarray, n_tokens: int) -> np.ndarray:
        return _strict(self.description, seq_idx, *self.read_padded(seq_idx, n_tokens))

    def read_padded(self, seq_idx: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        width = int(self.rows.shape[1])
        out = np.zeros((len(seq_idx), n_tokens), np.int64)
        out[:, : min(width, n_tokens)] = self.rows[np.asarray(seq_idx), :n_tokens]
        return out, np.full(len(seq_idx), width, np.int64)

    def sequence_meta(self, keep: tuple[str, ...] = ()) -> pa.Table | None:
        return None

    def columns(self) -> list[str]:
        return []


def open_raw_memmap(path: Path) -> MemmapRows:
    size = path.stat().st_size
    row_bytes = PYTHIA_ROW_LEN * 2
    if size == 0 or size % row_bytes:
        raise MemwhError(
            f"{path}: no {path.with_suffix('.idx').name} beside it and the size ({size} bytes) is not a "
            f"multiple of {PYTHIA_ROW_LEN} uint16 tokens; pass a Megatron .bin+.idx pair or a Pythia memmap"
        )
    rows = np.memmap(path, dtype=np.uint16, mode="r").reshape(-1, PYTHIA_ROW_LEN)
    return MemmapRows(path, rows)


def open_npy(path: Path) -> MemmapRows:
    try:
        arr = np.load(path, mmap_mode="r")
    except Exception as e:
        raise MemwhError(f"{path}: unreadable .npy file ({one_line(e)})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise MemwhError(
            f"{path}: expected a 2-D integer array of token rows, got {arr.dtype} {arr.shape}"
        )
    return MemmapRows(path, arr)


# --------------------------------------------------------------------------- Megatron MMIDIDX
@dataclass
class MegatronIndexed:
    """GPT-NeoX / Megatron MMapIndexedDataset (.bin + .idx); sequence i = item i."""

    prefix: Path
    description: str = ""
    fingerprint: str = ""
    sizes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    pointers: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    doc_idx: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    dtype: Any = np.uint16
    _bin: Any = None

    def __post_init__(self) -> None:
        idx, binf = (
            self.prefix.with_name(self.prefix.name + ".idx"),
            self.prefix.with_name(self.prefix.name + ".bin"),
        )
        self.description = str(binf)
        self.sizes, self.pointers, self.doc_idx, self.dtype = read_mmidx(idx)
        try:
            self._bin = np.memmap(binf, dtype=self.dtype, mode="r")
        except (OSError, ValueError) as e:
            raise MemwhError(f"{binf}: unreadable data file ({one_line(e)})") from None
        itemsize = np.dtype(self.dtype).itemsize
        if len(self.sizes):
            end = int(self.pointers[-1]) + int(self.sizes[-1]) * itemsize
            if end > self._bin.size * itemsize:
                raise MemwhError(
                    f"{binf}: file is shorter than its index {idx.name} says ({end} bytes needed); re-copy it"
                )
        self.fingerprint = _combine("megatron", file_fingerprint(idx), file_fingerprint(binf))

    def index_range(self) -> tuple[int, int]:
        return 0, len(self.sizes)

    def indices_in(self, lo: int, hi: int) -> np.ndarray:
        return np.arange(lo, hi, dtype=np.int64)

    def read(self, seq_idx: np.ndarray, n_tokens: int) -> np.ndarray:
        return _strict(self.description, seq_idx, *self.read_padded(seq_idx, n_tokens))

    def read_padded(self, seq_idx: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        seq_idx = np.asarray(seq_idx, np.int64)
        sizes = self.sizes[seq_idx].astype(np.int64)
        start = self.pointers[seq_idx] // np.dtype(self.dtype).itemsize
        pos = np.arange(n_tokens, dtype=np.int64)[None, :]
        inside = pos < sizes[:, None]
        gather = np.where(inside, start[:, None] + pos, 0)
        return np.where(inside, np.asarray(self._bin[gather], dtype=np.int64), 0), sizes

    def sequence_meta(self, keep: tuple[str, ...] = ()) -> pa.Table | None:
        return None

    def columns(self) -> list[str]:
        return []


def read_mmidx(idx_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Parse a MMIDIDX index: (sizes int32, pointers int64, doc_idx int64, token dtype)."""
    try:
        with open(idx_path, "rb") as f:
            magic = f.read(9)
            if magic != MMIDIDX_MAGIC:
                raise MemwhError(
                    f"{idx_path}: not a GPT-NeoX/Megatron MMIDIDX index (bad magic {magic!r})"
                )
            (version,) = struct.unpack("<Q", f.read(8))
            if version != 1:
                raise MemwhError(f"{idx_path}: MMIDIDX version {version} is not supported (only 1)")
            (code,) = struct.unpack("<B", f.read(1))
            if code not in MMIDIDX_DTYPES:
                raise MemwhError(f"{idx_path}: dtype code {code} is not an integer token type")
            (n,) = struct.unpack("<Q", f.read(8))
            (n_doc,) = struct.unpack("<Q", f.read(8))
            offset = f.tell()
        buf = np.memmap(idx_path, dtype=np.uint8, mode="r")
        need = offset + n * 4 + n * 8 + n_doc * 8
        if buf.size < need:
            raise MemwhError(
                f"{idx_path}: truncated index ({buf.size} bytes, {need} expected); re-copy it"
            )
        sizes = np.frombuffer(buf, dtype=np.int32, count=n, offset=offset)
        pointers = np.frombuffer(buf, dtype=np.int64, count=n, offset=offset + n * 4)
        doc_idx = np.frombuffer(buf, dtype=np.int64, count=n_doc, offset=offset + n * 12)
    except MemwhError:
        raise
    except (OSError, struct.error, ValueError) as e:
        raise MemwhError(f"{idx_path}: unreadable index file ({one_line(e)})") from None
    return sizes, pointers, doc_idx, MMIDIDX_DTYPES[code]


# --------------------------------------------------------------------------- HF datasets text
@dataclass
class TextDataset:
    """Rows of an HF `datasets` source with a `text` column, tokenized on demand."""

    spec: str
    tokenizer: Any
    description: str = ""
    fingerprint: str = ""
    ds: Any = None

    def __post_init__(self) -> None:
        self.description = self.spec
        self.ds, base_fp = load_text_dataset(self.spec)
        if "text" not in self.ds.column_names:
            raise MemwhError(
                f"{self.spec}: no 'text' column (found {', '.join(self.ds.column_names)})"
            )
        parts = [base_fp, tokenizer_fingerprint(self.tokenizer)]
        if adds_special_tokens(self.tokenizer):
            # rows are its content tokens only (memwh < issue 14 scored them with its BOS/EOS)
            parts.append("content-tokens")
        self.fingerprint = _combine("text", *parts)

    def index_range(self) -> tuple[int, int]:
        return 0, len(self.ds)

    def indices_in(self, lo: int, hi: int) -> np.ndarray:
        return np.arange(lo, hi, dtype=np.int64)

    def read(self, seq_idx: np.ndarray, n_tokens: int) -> np.ndarray:
        return _strict(self.description, seq_idx, *self.read_padded(seq_idx, n_tokens))

    def read_padded(self, seq_idx: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        seq_idx = np.asarray(seq_idx, np.int64)
        texts = self.ds.select(seq_idx.tolist())["text"]
        out = np.zeros((len(seq_idx), n_tokens), np.int64)
        # content tokens only: token 0 of the window is the text's first token, whatever
        # BOS/EOS the tokenizer would add by default (a BOS would shift prompt and continuation)
        enc = self.tokenizer([t or "" for t in texts], add_special_tokens=False)["input_ids"]
        lens = np.array([len(ids) for ids in enc], np.int64)
        for i, ids in enumerate(enc):
            out[i, : min(len(ids), n_tokens)] = ids[:n_tokens]
        return out, lens

    def columns(self) -> list[str]:
        return [c for c in self.ds.column_names if c != "text"]

    def sequence_meta(self, keep: tuple[str, ...] = ()) -> pa.Table | None:
        cols = [c for c in contract.SEQUENCE_META_COLUMNS if c in self.ds.column_names]
        if not cols and not keep:
            return None
        seq = pa.array(np.arange(len(self.ds), dtype=np.int64))
        base = None
        if cols:
            sub = self.ds.select_columns(cols).data.table
            meta = {c: sub.column(c).combine_chunks() for c in cols}
            base = contract.sequence_meta_table(meta, seq)
        kept = self.ds.select_columns(list(keep)).data.table if keep else None
        return with_extra(base, seq, kept)


_DATASET_BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


def load_text_dataset(spec: str) -> tuple[Any, str]:
    """Load a local file/folder or hub dataset (split 'train' unless `name:split`)."""
    import datasets

    datasets.disable_progress_bars()
    p = Path(spec)
    try:
        if p.is_file():
            builder = _DATASET_BUILDERS.get(p.suffix.lower())
            if builder is None:
                raise MemwhError(
                    f"{p}: unknown data file type {p.suffix!r} (use .parquet, .jsonl, .json, .csv, .arrow, .bin+.idx, .npy)"
                )
            ds = datasets.load_dataset(builder, data_files=str(p), split="train")
            return ds, file_fingerprint(p)
        if p.is_dir():
            ds = datasets.load_from_disk(str(p))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
            return ds, ds._fingerprint
        if spec.startswith((".", "/", "~")) or (os.sep in spec and spec.count("/") > 1):
            raise MemwhError(f"{spec}: data file not found; check the --data path")
        name, _, split = spec.partition(":")
        ds = datasets.load_dataset(name, split=split or "train")
        return ds, ds._fingerprint
    except MemwhError:
        raise
    except Exception as e:
        raise MemwhError(
            f"{spec}: unreadable data source ({type(e).__name__}: {one_line(e)})"
        ) from None


def adds_special_tokens(tokenizer: Any) -> bool:
    """Whether the tokenizer adds tokens (BOS, EOS, ...) around a text by default."""
    probe = "memwh"
    return tokenizer(probe)["input_ids"] != tokenizer(probe, add_special_tokens=False)["input_ids"]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the tokenizer definition (tokenized data depends on it)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- dispatch
def open_source(spec: str, tokenizer_loader: Any = None) -> TokenSource:
    """Pick the reader for `spec` (see module docstring). `tokenizer_loader()` -> tokenizer."""
    p = Path(spec).expanduser()
    bin_p, idx_p = p.with_name(p.name + ".bin"), p.with_name(p.name + ".idx")
    if p.suffix in (".bin", ".idx") and p.exists():
        prefix = p.with_suffix("")
        if (
            prefix.with_name(prefix.name + ".idx").exists()
            and prefix.with_name(prefix.name + ".bin").exists()
        ):
            return MegatronIndexed(prefix)
        if p.suffix == ".bin":
            return open_raw_memmap(p)
        raise MemwhError(f"{p}: index without its .bin file; put {prefix.name}.bin beside it")
    if bin_p.exists() and idx_p.exists():
        return MegatronIndexed(p)
    if p.suffix == ".npy" and p.is_file():
        return open_npy(p)
    if p.suffix == ".parquet" and p.is_file():
        pf_names = _parquet_columns(p)
        if "tokens" in pf_names:
            return ParquetTokens(p)
        if "text" not in pf_names:
            raise MemwhError(f"{p}: needs a 'tokens' column (with seq_idx) or a 'text' column")
    if (
        p.suffix.lower() in (".bin", ".idx", ".npy", ".parquet", *_DATASET_BUILDERS)
        and not p.exists()
    ):
        raise MemwhError(f"{p}: data file not found; check the --data path")
    if tokenizer_loader is None:
        raise MemwhError(f"{spec}: text data needs the model's tokenizer")
    return TextDataset(spec, tokenizer_loader())


def _parquet_columns(p: Path) -> list[str]:
    try:
        return pq.ParquetFile(p).schema_arrow.names
    except Exception as e:
        raise MemwhError(
            f"{p}: unreadable Parquet file ({one_line(e)}); check the --data path"
        ) from None
