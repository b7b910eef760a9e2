"""Readers: GPT-NeoX MMIDIDX (.bin/.idx) written here in the exact format, Pythia memmap, .npy,
Parquet token tables, HF datasets text; fingerprints are content-based and stable."""

from __future__ import annotations

import shutil

import helpers
import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.inference_jobs import data as D


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_megatron_reader_on_gpt_neox_format(tmp_path, dtype):
    rng = np.random.default_rng(0)
    docs = [
        rng.integers(0, 60000 if dtype == np.uint16 else 2**31 - 1, size=n)
        for n in (70, 64, 100, 65, 80)
    ]
    helpers.write_mmididx(tmp_path / "pile_text_document", docs, dtype=dtype)
    for spec in ("pile_text_document", "pile_text_document.bin", "pile_text_document.idx"):
        src = D.open_source(str(tmp_path / spec))
        assert isinstance(src, D.MegatronIndexed)
        assert src.index_range() == (0, 5)
        np.testing.assert_array_equal(src.doc_idx, np.arange(6))
        got = src.read(np.array([4, 0, 2]), 64)
        for row, i in zip(got, [4, 0, 2], strict=True):
            np.testing.assert_array_equal(row, docs[i][:64].astype(np.int64))
    with pytest.raises(MemwhError, match="sequence 1 has 64 tokens"):
        src.read(np.array([0, 1]), 65)


def test_megatron_reader_rejects_bad_files(tmp_path):
    helpers.write_mmididx(tmp_path / "d", [np.arange(10)], dtype=np.uint16)
    idx = tmp_path / "d.idx"
    raw = bytearray(idx.read_bytes())
    raw[0:1] = b"X"
    idx.write_bytes(bytes(raw))
    with pytest.raises(MemwhError, match="bad magic"):
        D.open_source(str(tmp_path / "d"))
    helpers.write_mmididx(tmp_path / "e", [np.arange(10), np.arange(10)], dtype=np.uint16)
    (tmp_path / "e.bin").write_bytes(b"\x00" * 8)
    with pytest.raises(MemwhError, match="shorter than its index"):
        D.open_source(str(tmp_path / "e"))


def test_pythia_memmap_and_npy(tmp_path):
    rows = np.random.default_rng(1).integers(0, 50000, size=(3, D.PYTHIA_ROW_LEN)).astype(np.uint16)
    rows.tofile(tmp_path / "pile.bin")
    src = D.open_source(str(tmp_path / "pile.bin"))
    assert src.index_range() == (0, 3)
    np.testing.assert_array_equal(src.read(np.array([2, 1]), 64), rows[[2, 1], :64])
    (tmp_path / "bad.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(MemwhError, match="not a multiple"):
        D.open_source(str(tmp_path / "bad.bin"))
    np.save(tmp_path / "rows.npy", rows[:, :70].astype(np.int32))
    src = D.open_source(str(tmp_path / "rows.npy"))
    np.testing.assert_array_equal(src.read(np.array([0]), 70), rows[:1, :70])


def test_parquet_table_with_gaps_and_row_groups(tmp_path):
    seqs = np.arange(10 * 66).reshape(10, 66) % 200
    p = helpers.write_token_table(tmp_path / "t.parquet", seqs, start=50)
    # shuffle rows and drop one index: the reader sorts by seq_idx and tolerates gaps
    t = pq.read_table(p)
    t = t.take(np.array([3, 1, 0, 9, 8, 2, 4, 5, 6])).filter(np.ones(9, bool))
    pq.write_table(t, p, row_group_size=2)
    src = D.open_source(str(p))
    assert src.index_range() == (50, 60)
    np.testing.assert_array_equal(src.indices_in(50, 60), [50, 51, 52, 53, 54, 55, 56, 58, 59])
    np.testing.assert_array_equal(src.read(np.array([59, 50, 53]), 64), seqs[[9, 0, 3], :64])
    meta = src.sequence_meta()
    assert meta.schema == contract.SEQUENCE_META_SCHEMA  # every metadata column, absent = NULL
    assert meta.column("seq_idx").to_pylist() == [50, 51, 52, 53, 54, 55, 56, 58, 59]
    assert meta.column("category").null_count == meta.num_rows


def test_duplicate_seq_idx_is_an_error(tmp_path):
    p = helpers.write_token_table(tmp_path / "t.parquet", np.ones((3, 64), int))
    t = pq.read_table(p)
    import pyarrow as pa

    pq.write_table(t.set_column(0, "seq_idx", pa.array([1, 1, 2], pa.int64())), p)
    with pytest.raises(MemwhError, match="seq_idx 1 appears more than once"):
        D.open_source(str(p))


def test_text_dataset_jsonl(tmp_path):
    tok = helpers.make_tokenizer()
    lines = [" ".join(f"t{3 + (i * 7 + j) % 250}" for j in range(70)) for i in range(4)]
    f = tmp_path / "docs.jsonl"
    f.write_text(
        "".join(f'{{"text": "{t}", "duplicates": {i + 1}}}\n' for i, t in enumerate(lines))
    )
    src = D.open_source(str(f), lambda: tok)
    assert src.index_range() == (0, 4)
    got = src.read(np.array([1, 3]), 64)
    np.testing.assert_array_equal(got[0], [3 + (7 + j) % 250 for j in range(64)])
    assert src.fingerprint.startswith("text-")
    assert src.sequence_meta().column("duplicates").to_pylist() == [1, 2, 3, 4]


def test_fingerprint_is_content_based(tmp_path):
    p = helpers.write_token_table(tmp_path / "a.parquet", np.ones((3, 64), int))
    q = tmp_path / "copy" / "b.parquet"
    q.parent.mkdir()
    shutil.copy(p, q)
    assert D.open_source(str(p)).fingerprint == D.open_source(str(q)).fingerprint
    helpers.write_token_table(q, np.full((3, 64), 2))
    assert D.open_source(str(p)).fingerprint != D.open_source(str(q)).fingerprint
    # large files: sampled (size + 3 windows), still sensitive to the size
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * (D._FULL_HASH_LIMIT + 10))
    f1 = D.file_fingerprint(big)
    with open(big, "ab") as fh:
        fh.write(b"\x01")
    assert D.file_fingerprint(big) != f1


def _bos_tokenizer():
    """The test tokenizer with a post-processor adding BOS (id 1 here), like Llama's."""
    from tokenizers import processors

    tok = helpers.make_tokenizer()
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|padding|> $A", special_tokens=[("<|padding|>", 1)]
    )
    return tok


def test_text_rows_start_at_the_first_content_token_with_a_bos_tokenizer(tmp_path):
    tok = _bos_tokenizer()
    assert tok("t5 t6")["input_ids"] == [1, 5, 6]  # the tokenizer really adds BOS by default
    line = " ".join(f"t{3 + j}" for j in range(40))
    f = tmp_path / "docs.jsonl"
    f.write_text(f'{{"text": "{line}"}}\n')
    src = D.open_source(str(f), lambda: tok)
    np.testing.assert_array_equal(src.read(np.array([0]), 40)[0], np.arange(3, 43))
    # such a tokenizer's fingerprint is tagged: rows scored before (with its BOS) never match
    assert D.adds_special_tokens(tok) and not D.adds_special_tokens(helpers.make_tokenizer())


def test_model_without_tokenizer_files_text_is_refused_and_zlib_is_null(tmp_path, token_table):
    """transformers builds an empty tokenizer for a folder without tokenizer files: text data
    is a one-line error (not "sequence 0 has 0 tokens"), token data gets NULL zlib_ratio."""
    import pyarrow.parquet as pq

    from memwh import inference_jobs
    from memwh.core.errors import MemwhError

    model = tmp_path / "bare"
    helpers.make_model(3).save_pretrained(model)  # weights, no tokenizer files
    text = tmp_path / "docs.jsonl"
    text.write_text('{"text": "' + " ".join(f"t{3 + j}" for j in range(70)) + '"}\n')
    kw = {"progress": False, "device": "cpu", "save_windows": False}
    with pytest.raises(MemwhError, match="the model has no tokenizer") as e:
        inference_jobs.score(str(model), str(text), tmp_path / "o1", **kw)
    assert "\n" not in str(e.value)
    res = inference_jobs.score(str(model), str(token_table), tmp_path / "o2", **kw)
    z = pq.read_table(res.parquet).column("zlib_ratio")
    assert z.null_count == len(z) > 0


def test_keep_columns_reach_the_warehouse_as_sequence_metadata(tmp_path):
    """--keep-columns: the named columns of a text dataset end in raw.sequences.extra (JSON);
    a name the data lacks is a one-line error listing the columns it has."""
    import duckdb

    from memwh import inference_jobs
    from memwh.core.errors import MemwhError
    from memwh.ingest import ingest_root

    model = tmp_path / "m"
    helpers.make_model(3).save_pretrained(model)
    helpers.make_tokenizer().save_pretrained(model)
    f = tmp_path / "docs.jsonl"
    line = " ".join(f"t{3 + j}" for j in range(70))
    f.write_text("".join(
        f'{{"text": "{line}", "source": "s{i}", "url": "http://x/{i}", "duplicates": {i + 1}}}\n'
        for i in range(5)
    ))  # fmt: skip
    kw = {"progress": False, "device": "cpu", "save_windows": False}
    with pytest.raises(MemwhError, match="--keep-columns lang not in the data; its columns: "):
        inference_jobs.score(str(model), str(f), tmp_path / "o", keep_columns="lang", **kw)
    res = inference_jobs.score(str(model), str(f), tmp_path / "o", keep_columns="source", **kw)
    assert res.status == "done"
    # keeping one more column later: the complete shard is reused (the rows do not depend on
    # it) and the sequence metadata gains the column
    res = inference_jobs.score(str(model), str(f), tmp_path / "o", keep_columns="source,url", **kw)
    assert res.status == "skipped"
    db = tmp_path / "wh.duckdb"
    assert ingest_root(tmp_path / "o", db, progress=False).ok
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT seq_idx, duplicates, extra->>'source', extra->>'url' FROM raw.sequences "
        "ORDER BY seq_idx"
    ).fetchall()
    con.close()
    assert rows == [(i, i + 1, f"s{i}", f"http://x/{i}") for i in range(5)]
