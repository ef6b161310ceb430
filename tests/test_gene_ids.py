"""Gene ids the way biologists have them: UniProt accessions, spreadsheet dates, mouse-cased symbols, the release."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import CaseOnlyMatchWarning, hgnc_release, normalize_genes


def _quiet(ids, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaseOnlyMatchWarning)
        return normalize_genes(ids, **kwargs)


def test_uniprot_accession_resolves_to_its_gene():
    result = normalize_genes(["P04637", "Q9UHD8"])
    assert result.inputs == {"P04637": "TP53", "Q9UHD8": "SEPTIN9"}
    assert result.repaired == {"P04637": "TP53", "Q9UHD8": "SEPTIN9"}
    assert result.genes[0].hgnc_id == "HGNC:11998"


def test_excel_dates_are_repaired_to_the_current_symbol():
    result = normalize_genes(["9-Sep", "2-Sep", "Sep-7", "SEPT2"])
    assert result.inputs == {"9-Sep": "SEPTIN9", "2-Sep": "SEPTIN2", "Sep-7": "SEPTIN7", "SEPT2": "SEPTIN2"}
    assert [g.symbol for g in result.genes] == ["SEPTIN9", "SEPTIN2", "SEPTIN7"]
    # a date is a repair (recorded), a previous symbol is ordinary resolution
    assert set(result.repaired) == {"9-Sep", "2-Sep", "Sep-7"}


def test_an_ambiguous_excel_date_is_reported_never_guessed():
    result = normalize_genes(["TP53", "1-Mar"])
    assert "1-Mar" not in result.inputs
    assert result.ambiguous == {"1-Mar": ["MARCHF1", "MTARC1"]}
    assert "1-Mar (could be MARCHF1, MTARC1)" in result.report()
    with pytest.raises(BioprofileInputError, match="1-Mar"):
        normalize_genes(["TP53", "1-Mar"], strict=True)


def test_a_date_of_no_gene_family_stays_unknown():
    result = normalize_genes(["TP53", "2-Apr", "31-Sep-2024x"])
    assert result.unknown == ["2-Apr", "31-Sep-2024x"]


def test_mouse_cased_symbols_resolve_with_a_counted_warning():
    with pytest.warns(CaseOnlyMatchWarning, match=r"2 of 3 ids matched a human gene only when upper-cased"):
        result = normalize_genes(["Brca1", "Cd4", "TP53"])
    assert result.case_only == {"Brca1": "BRCA1", "Cd4": "CD4"}
    assert "species='mouse'" in result.report()
    assert result.provenance()["case_only_matches"] == 2


def test_exact_symbols_give_no_case_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaseOnlyMatchWarning)
        result = normalize_genes(["TP53", "p53", "EGFR", "ENSG00000141510"])
    assert result.case_only == {} and result.case_report() == ""


def test_species_mouse_maps_on_purpose_by_approved_symbol_only():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaseOnlyMatchWarning)
        result = normalize_genes(["Brca1", "Ptprc", "p53", "ENSMUSG00000017146"], species="mouse")
    assert result.inputs == {"Brca1": "BRCA1", "Ptprc": "PTPRC"}
    # human aliases are not mouse names, and a mouse Ensembl id is no human one
    assert result.unknown == ["p53", "ENSMUSG00000017146"]
    assert result.provenance()["species"] == "mouse"


def test_unknown_species_is_refused_naming_the_argument():
    with pytest.raises(BioprofileInputError, match="unknown species rat: choose human or mouse") as err:
        normalize_genes(["TP53"], species="rat")
    assert err.value.argument == "species"


def test_hgnc_release_is_recorded():
    release = hgnc_release()
    assert release.startswith("complete_set_20")
    assert normalize_genes(["TP53"]).provenance() == {
        "hgnc_release": release,
        "species": "human",
        "case_only_matches": 0,
        "repaired_ids": {},
    }


def test_ordinary_symbols_resolve_as_before():
    result = _quiet(["TP53", "SEPT7", "egfr", "ENSG00000141510.17", "7157", "HGNC:11998"])
    assert result.inputs == {
        "TP53": "TP53",
        "SEPT7": "SEPTIN7",
        "egfr": "EGFR",
        "ENSG00000141510.17": "TP53",
        "7157": "TP53",
        "HGNC:11998": "TP53",
    }
    assert result.repaired == {}


@pytest.fixture(scope="module")
def summaries(tmp_path_factory):
    d = tmp_path_factory.mktemp("ids")
    (d / "summaries.txt").write_text(
        "TP53: a tumour suppressor.\nSEPTIN9: a septin.\nBRCA1: DNA repair.\n", encoding="utf-8"
    )
    return d


def test_embed_genes_cli_records_release_and_repairs(summaries, tiny_bert_dir, tmp_path):
    out = tmp_path / "genes.parquet"
    result = CliRunner().invoke(
        app,
        ["embed-genes", "P04637", "9-Sep", "1-Mar", "Brca1", "--summaries", str(summaries / "summaries.txt")]
        + ["--encoder", str(tiny_bert_dir), "--cache-dir", str(tmp_path / "cache"), "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert "1-Mar (could be MARCHF1, MTARC1)" in warning[0]
    assert "1 of 4 ids matched a human gene only when upper-cased (Brca1 -> BRCA1)" in warning[0]
    assert "pass --species='mouse'" in warning[0]
    table = GeneEmbeddings.read(out)
    assert table.symbols == ["TP53", "SEPTIN9", "BRCA1"]
    assert table.provenance["hgnc_release"] == hgnc_release()
    assert table.provenance["repaired_ids"] == {"P04637": "TP53", "9-Sep": "SEPTIN9"}
    assert table.provenance["case_only_matches"] == 1
    assert json.dumps(table.provenance)  # plain data


def test_embed_genes_cli_species_mouse_and_a_bad_species(summaries, tiny_bert_dir, tmp_path):
    out = tmp_path / "genes.parquet"
    base = ["--summaries", str(summaries / "summaries.txt"), "--encoder", str(tiny_bert_dir)]
    base += ["--cache-dir", str(tmp_path / "cache"), "-o", str(out)]
    result = CliRunner().invoke(app, ["embed-genes", "Brca1", "Tp53", "--species", "mouse", *base])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert GeneEmbeddings.read(out).provenance["species"] == "mouse"
    bad = CliRunner().invoke(app, ["embed-genes", "TP53", "--species", "rat", *base, "--force"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "--species rat: choose human or mouse" in bad.stderr
    assert not out.with_name("genes.parquet.tmp").exists()
