"""read_summaries: SYMBOL: text files and tables, bad lines, duplicates, the real GeneAgent synopsis file."""

from __future__ import annotations

import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.summaries import read_summaries


def _write(tmp_path, text: str, name: str = "summaries.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_symbol_lines_with_separators_and_crlf(tmp_path):
    path = _write(
        tmp_path,
        "# RefSeq summaries\r\nTP53: Tumor suppressor; binds DNA: p53 motifs.\r\n\r\n////\r\n"
        "BRCA1 :  DNA repair by homologous recombination.  \r\nHLA-DRB1: MHC class II beta chain.\r\n",
    )
    assert read_summaries(path) == {
        "TP53": "Tumor suppressor; binds DNA: p53 motifs.",
        "BRCA1": "DNA repair by homologous recombination.",
        "HLA-DRB1": "MHC class II beta chain.",
    }


def test_bad_line_is_named(tmp_path):
    path = _write(tmp_path, "TP53: a\nBRCA1: b\nthis line has no symbol\nEGFR: c\n")
    with pytest.raises(BioprofileInputError, match=r"line 3: expected `SYMBOL: text`") as err:
        read_summaries(path)
    assert "\n" not in str(err.value)


def test_skip_bad_lines_warns(tmp_path):
    path = _write(tmp_path, "TP53: a\nnot a summary\nBRCA1: b\nEGFR:\n")
    with pytest.warns(UserWarning, match=r"skipped 2 line\(s\).*lines 2, 4"):
        assert read_summaries(path, errors="skip") == {"TP53": "a", "BRCA1": "b"}


def test_duplicates(tmp_path):
    path = _write(tmp_path, "TP53: short...\nBRCA1: b\nTP53: the  full text\nTP53: the full text\n")
    assert read_summaries(path) == {"TP53": "the  full text", "BRCA1": "b"}
    assert read_summaries(path, duplicates="first")["TP53"] == "short..."
    with pytest.raises(BioprofileInputError, match=r"line 3: TP53 already has a different text on line 1"):
        read_summaries(path, duplicates="raise")
    # Copies that differ only in whitespace are not conflicts.
    same = _write(tmp_path, "TP53: a  b\nTP53: a b\n", "same.txt")
    assert read_summaries(same, duplicates="raise") == {"TP53": "a  b"}


def test_tsv_with_header(tmp_path):
    path = _write(
        tmp_path, 'Gene\tsource\tSummary\nTP53\tNCBI\tbinds DNA\nBRCA1\tNCBI\t"repairs DNA"\n', "s.tsv"
    )
    assert read_summaries(path) == {"TP53": "binds DNA", "BRCA1": "repairs DNA"}


def test_csv_with_header(tmp_path):
    path = _write(tmp_path, 'symbol,text\nTP53,"binds DNA, as a tetramer"\n', "s.csv")
    assert read_summaries(path) == {"TP53": "binds DNA, as a tetramer"}


def test_table_errors(tmp_path):
    ragged = _write(tmp_path, "symbol\ttext\nTP53\tbinds DNA\nBRCA1\n", "ragged.tsv")
    with pytest.raises(BioprofileInputError, match="line 3: 1 fields where the header has 2"):
        read_summaries(ragged)
    empty_text = _write(tmp_path, "symbol\ttext\nTP53\t \n", "empty.tsv")
    with pytest.raises(BioprofileInputError, match="line 2: empty text for TP53"):
        read_summaries(empty_text)
    no_text_col = _write(tmp_path, "symbol\tscore\nTP53\t1\n", "nocol.tsv")
    with pytest.raises(BioprofileInputError, match="text column"):
        read_summaries(no_text_col)
    no_header = _write(tmp_path, "TP53,binds DNA\n", "nohead.csv")
    with pytest.raises(BioprofileInputError, match="symbol column"):
        read_summaries(no_header)


def test_missing_empty_and_binary_files(tmp_path):
    with pytest.raises(BioprofileInputError, match="not found"):
        read_summaries(tmp_path / "nope.txt")
    with pytest.raises(BioprofileInputError, match="holds no summaries"):
        read_summaries(_write(tmp_path, "\n////\n", "empty.txt"))
    binary = tmp_path / "x.txt"
    binary.write_bytes(b"\xff\xfe\x00TP53")
    with pytest.raises(BioprofileInputError, match="not UTF-8"):
        read_summaries(binary)


def test_real_geneagent_synopsis(shared_data):
    """GeneAgent's RefSeq synopsis: ~4,000 genes, repeated genes with truncated copies, a block of prompt text."""
    path = shared_data / "geneagent" / "gene_narrative_synopsis.txt"
    with pytest.raises(BioprofileInputError, match=r"line \d+: expected `SYMBOL: text`"):
        read_summaries(path)
    with pytest.warns(UserWarning, match="skipped"):
        summaries = read_summaries(path, errors="skip")
    assert 3500 < len(summaries) < 6536
    assert summaries["ZMPSTE24"].startswith("This gene encodes a member of the peptidase M48A family.")
    assert "lamin A" in summaries["ZMPSTE24"]
    # BANF1 appears twice; the second copy is a truncated version of the first.
    assert len(summaries["BANF1"]) > 700
    assert not any(text.endswith("\r") for text in summaries.values())
    with pytest.warns(UserWarning):
        first = read_summaries(path, errors="skip", duplicates="first")
    assert first.keys() == summaries.keys()
    assert sum(len(t) for t in first.values()) < sum(len(t) for t in summaries.values())
