"""Protein profiles: antibody targets -> protein entities mapped to genes, embed_proteins and embed-proteins."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import EntityEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_table_path
from bioprofile.profiles.prompts import get_template, template_names
from bioprofile.proteins import (
    Protein,
    clean_target_name,
    curated_targets,
    is_isotype_control,
    normalize_proteins,
    read_target_list,
)

# A 30-antibody TotalSeq-style PBMC panel, named as vendors and 10x feature references write the targets.
PANEL = [
    "CD3", "CD4", "CD8", "CD14", "CD16", "CD19", "CD45RA", "CD45RO", "HLA-DR", "TCRab",
    "CD56", "CD11c", "CD127", "CD25", "CD27", "CD28", "CD38", "CD57", "CD69", "CD161",
    "PD-1", "TIGIT", "CCR7", "CD62L", "CD123", "CD1c", "IgD", "IgM", "TCRgd", "Mouse IgG1 kappa isotype Ctrl",
]  # fmt: skip
# What each target's protein comes from: curated (isoforms, complexes, shared aliases) or HGNC aliases.
EXPECTED_GENES = {
    "CD3": ["CD3E"],
    "CD4": ["CD4"],
    "CD8": ["CD8A"],
    "CD14": ["CD14"],
    "CD16": ["FCGR3A"],
    "CD19": ["CD19"],
    "CD45RA": ["PTPRC"],
    "CD45RO": ["PTPRC"],
    "HLA-DR": ["HLA-DRA", "HLA-DRB1"],
    "TCRab": ["TRAC", "TRBC1", "TRBC2"],
    "CD56": ["NCAM1"],
    "CD11c": ["ITGAX"],
    "CD127": ["IL7R"],
    "CD25": ["IL2RA"],
    "CD27": ["CD27"],
    "CD28": ["CD28"],
    "CD38": ["CD38"],
    "CD57": ["B3GAT1"],
    "CD69": ["CD69"],
    "CD161": ["KLRB1"],
    "PD-1": ["PDCD1"],
    "TIGIT": ["TIGIT"],
    "CCR7": ["CCR7"],
    "CD62L": ["SELL"],
    "CD123": ["IL3RA"],
    "CD1c": ["CD1C"],
    "IgD": ["IGHD"],
    "IgM": ["IGHM"],
    "TCRgd": ["TRDC", "TRGC1", "TRGC2"],
}
CURATED = {"CD3", "CD16", "CD45RA", "CD45RO", "HLA-DR", "TCRab", "CD25", "IgD", "IgM", "TCRgd"}


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def tiny_options(tiny_llama_dir, tiny_bert_dir, tmp_path):
    from bioprofile import GenerationSettings, make_generator

    return {
        "generator": make_generator(tiny_llama_dir, settings=GenerationSettings(max_new_tokens=12)),
        "encoder": f"hf:{tiny_bert_dir}",
    }


@pytest.fixture
def tiny_args(tiny_llama_dir, tiny_bert_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    return ["--model", str(tiny_llama_dir), "--encoder", f"hf:{tiny_bert_dir}", "--cache-dir", str(cache),
            "--max-new-tokens", "12"]  # fmt: skip


def test_every_panel_target_is_resolved_or_reported():
    resolution = normalize_proteins(PANEL)
    assert resolution.gene_map() == EXPECTED_GENES  # in panel order, the isotype control left out
    assert [p.key for p in resolution.proteins] == [f"adt:{t}" for t in EXPECTED_GENES]
    assert all(p.kind == "protein" for p in resolution.proteins)
    assert {p.target for p in resolution.proteins if p.mapped_by == "curated"} == CURATED
    assert {p.target for p in resolution.proteins if p.mapped_by == "hgnc"} == set(EXPECTED_GENES) - CURATED
    assert resolution.isotype_controls == ["Mouse IgG1 kappa isotype Ctrl"]
    assert resolution.without_gene == [] and resolution.unknown == [] and resolution.ambiguous == {}
    # every input is accounted for: a target, or a reported isotype control
    assert set(resolution.inputs) | set(resolution.isotype_controls) == set(PANEL)
    report = resolution.report()
    assert report.startswith("29 of 30 ids resolved to 29 protein targets")
    assert "genes from the curated table for 10, from HGNC for 19" in report
    assert "1 isotype control skipped: Mouse IgG1 kappa isotype Ctrl" in report
    assert "include_isotype_controls" in report and "\n" not in report


def test_isoforms_of_one_gene_are_two_entities_with_two_prompts():
    ra, ro = normalize_proteins(["CD45RA", "CD45RO"]).proteins
    assert ra.key == "adt:CD45RA" and ro.key == "adt:CD45RO"
    assert ra.gene_symbols == ro.gene_symbols == ["PTPRC"] and ra.relation == ro.relation == "isoform"
    for name in template_names("protein"):
        first, second = (get_template(name).messages(p)[-1]["content"] for p in (ra, ro))
        assert first != second
        assert "CD45RA" in first and "CD45RO" in second
        assert "PTPRC" in first and "PTPRC" in second  # the gene, and its curated description
        assert "exon 4 (A)" in first and "without exons 4, 5 and 6" in second
    concise = get_template("protein-concise").messages(ra)
    assert [m["role"] for m in concise] == ["system", "user"]
    assert concise[1]["content"].startswith(
        "Tell me about the protein CD45RA (CD45RA isoform of protein tyrosine phosphatase receptor type C). "
        "Gene: PTPRC (protein tyrosine phosphatase receptor type C). The CD45 isoform"
    )


def test_a_target_without_a_gene_is_embeddable_by_name_and_reported():
    resolution = normalize_proteins(["CD19", "FOO-X1", "CD32"])
    foo = resolution.proteins[1]
    assert foo.key == "adt:FOO-X1" and foo.genes == () and foo.mapped_by is None
    assert get_template("protein-concise").messages(foo)[1]["content"] == (
        "Tell me about the protein FOO-X1 (FOO-X1)."
    )
    assert resolution.without_gene == ["FOO-X1"]
    assert "1 without a gene, embedded by name: FOO-X1" in resolution.report()
    # a curated shared alias: both genes a pan-CD32 antibody binds
    assert resolution.gene_map()["CD32"] == ["FCGR2A", "FCGR2B"]
    with pytest.raises(BioprofileInputError, match="drop strict") as err:
        normalize_proteins(["CD19", "FOO-X1"], strict=True)
    assert err.value.argument == "strict"


def test_vendor_spellings_name_the_same_target():
    resolution = normalize_proteins(
        ["CD3_TotalSeqB", "ADT_CD3", "anti-human CD19", "TCR_alpha_beta", "HLA DR", "CD279 (PD-1)", "LAG-3"]
    )
    assert [p.target for p in resolution.proteins] == ["CD3", "CD19", "TCRab", "HLA-DR", "CD279", "LAG-3"]
    assert resolution.inputs["ADT_CD3"] == resolution.inputs["CD3_TotalSeqB"] == "CD3"
    assert resolution.gene_map()["CD279"] == ["PDCD1"] and resolution.gene_map()["LAG-3"] == ["LAG3"]
    assert clean_target_name("  CD8a-TotalSeq-C ") == "CD8a" and clean_target_name("TCRab") == "TCRab"
    # surface immunoglobulins are curated: HGNC's case-insensitive alias IGA would name CD79A
    assert normalize_proteins(["IgA", "Kappa"]).gene_map() == {
        "IgA": ["IGHA1", "IGHA2"],
        "Ig kappa": ["IGKC"],
    }


def test_isotype_controls_are_recognised_and_skipped_unless_asked():
    for name in (
        "Mouse IgG1 kappa isotype Ctrl",
        "IgG2a_control_TotalSeqB",
        "Rat IgG2b",
        "IgG1",
        "isotype_ctrl",
    ):
        assert is_isotype_control(name), name
    for name in ("IgG", "IgD", "IgM", "CD45RA", "TIGIT", "TCRgd"):
        assert not is_isotype_control(name), name
    with pytest.raises(BioprofileInputError, match="no target is left") as err:
        normalize_proteins(["Mouse IgG1 kappa isotype Ctrl"])
    assert err.value.argument == "include_isotype_controls"
    kept = normalize_proteins(["CD4", "Mouse IgG1 kappa isotype Ctrl"], include_isotype_controls=True)
    isotype = kept.proteins[1]
    assert (
        isotype.isotype_control and isotype.genes == () and isotype.key == "adt:Mouse IgG1 kappa isotype Ctrl"
    )
    assert "1 isotype control embedded" in kept.report() and kept.without_gene == [isotype.target]


def test_every_curated_row_has_real_genes_and_a_source_naming_their_ids():
    """Each curated gene is an approved HGNC symbol whose HGNC id and a UniProt accession the source cites."""
    import pandas as pd

    hgnc = pd.read_csv(hgnc_table_path(), sep="\t", dtype=str, keep_default_na=False).set_index("symbol")
    records = curated_targets()
    assert {"CD45RA", "CD45RO", "CD45RB", "HLA-DR", "TCRab", "CD16"} <= {r.target for r in records}
    for record in records:
        assert record.source and record.description and record.relation, record
        assert record.genes, f"{record.target}: a curated row maps to genes (unmapped targets need no row)"
        cited_hgnc = set(re.findall(r"HGNC:\d+", record.source))
        assert cited_hgnc == {hgnc.loc[g, "hgnc_id"] for g in record.genes}, record.target
        for gene in record.genes:
            accessions = hgnc.loc[gene, "uniprot_ids"].split("|")
            assert any(a in record.source for a in accessions), (record.target, gene, accessions)
    spellings = [s.casefold() for r in records for s in (r.target, *r.aliases)]
    assert len(spellings) == len(set(spellings)), "a spelling names two curated targets"


def test_read_target_list(tmp_path):
    text = tmp_path / "panel.txt"
    text.write_text("# my panel\nCD45RA\n\nMouse IgG1 kappa isotype Ctrl\nCD3  # T cells\n")
    assert read_target_list(text) == ["CD45RA", "Mouse IgG1 kappa isotype Ctrl", "CD3"]
    feature_ref = tmp_path / "feature_ref.csv"
    feature_ref.write_text(
        "id,name,read,pattern,sequence,feature_type\n"
        "CD3_TotalSeqB,CD3,R2,5PNNNNNNNNNN(BC),CTCATTGTAACTCCT,Antibody Capture\n"
        "CD45RA_TotalSeqB,CD45RA,R2,5PNNNNNNNNNN(BC),TCAATCCTTCCGCTT,Antibody Capture\n"
    )
    assert read_target_list(feature_ref) == ["CD3", "CD45RA"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nx\ty\n")
    with pytest.raises(BioprofileInputError, match="no target column") as err:
        read_target_list(bad)
    assert err.value.argument == "targets_file"
    with pytest.raises(BioprofileInputError, match="cannot read target file"):
        read_target_list(tmp_path / "missing.txt")


def test_embed_proteins_on_the_panel(tiny_options, tmp_path):
    from bioprofile.pipeline import embed_proteins
    from bioprofile.store import Store

    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_proteins(PANEL, store=store, **tiny_options)
    assert emb.kind == "protein" and emb.provenance["entity_kind"] == "protein"
    assert emb.symbols == list(EXPECTED_GENES) and emb.ids == [f"adt:{t}" for t in EXPECTED_GENES]
    assert emb.provenance["template"].startswith("protein-concise@")
    assert emb.provenance["template_source"] == "default"
    assert emb.provenance["isotype_controls"] == ["Mouse IgG1 kappa isotype Ctrl"]
    mapping = emb.provenance["protein_targets"]
    assert {t: m["genes"] for t, m in mapping.items()} == EXPECTED_GENES
    assert mapping["CD45RA"]["hgnc_ids"] == ["HGNC:9666"] and mapping["CD45RA"]["mapped_by"] == "curated"
    assert mapping["CD4"]["mapped_by"] == "hgnc" and "HGNC:" in mapping["CD4"]["source"]
    assert all(emb.texts) and np.isfinite(emb.vectors).all()
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        keys = {row[0] for row in conn.execute("SELECT entity FROM profiles")}
    assert keys == set(emb.ids)  # one profile per target: the two PTPRC isoforms never share one

    out = emb.write(tmp_path / "proteins.parquet")
    back = EntityEmbeddings.read(out)
    assert back.kind == "protein" and back.ids == emb.ids and back.texts == emb.texts
    assert back.provenance["protein_targets"] == mapping
    np.testing.assert_array_equal(back.vectors, emb.vectors)


def test_a_gene_trained_model_asks_proteins_with_the_protein_template(
    tiny_llama_dir, tiny_bert_dir, tmp_path
):
    from bioprofile import GenerationSettings
    from bioprofile.pipeline import embed_proteins
    from bioprofile.store import Store

    trained = tmp_path / "trained"
    shutil.copytree(tiny_llama_dir, trained)
    (trained / "bioprofile_train.json").write_text(json.dumps({"template": "genept", "method": "bft"}))
    options = {"encoder": f"hf:{tiny_bert_dir}", "settings": GenerationSettings(max_new_tokens=12)}
    with Store(tmp_path / "store.sqlite") as store, warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not the template it was trained with" for another kind
        default = embed_proteins(["CD45RA", "TCRab"], generator=trained, store=store, **options)
        plain = embed_proteins(
            ["CD45RA", "TCRab"], generator=trained, template="protein-plain", store=store, **options
        )
    assert default.provenance["template"].startswith("protein-concise@")
    assert default.provenance["template_source"] == "default"
    assert plain.provenance["template"].startswith("protein-plain@")
    assert plain.provenance["template_source"] == "argument"
    with pytest.raises(BioprofileInputError, match="describes a gene, not a protein"):
        embed_proteins(["CD4"], generator=trained, template="concise", **options)


def test_cli_embed_proteins(tmp_path, tiny_args):
    panel = tmp_path / "panel.txt"
    panel.write_text("\n".join(PANEL[6:10] + ["Mouse IgG1 kappa isotype Ctrl"]) + "\n")
    out = tmp_path / "proteins.parquet"
    result = run_cli("embed-proteins", "CD4", "--targets-file", str(panel), "-o", str(out), *tiny_args)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "--include-isotype-controls" in result.stderr
    assert "wrote 5 proteins" in result.stdout
    emb = EntityEmbeddings.read(out)
    assert emb.kind == "protein" and emb.symbols == ["CD4", "CD45RA", "CD45RO", "HLA-DR", "TCRab"]
    # a random tiny model may answer two prompts alike; what must differ is the prompt and the store row
    store = tmp_path / "cache" / "store.sqlite"
    with sqlite3.connect(store) as conn:
        rows = dict(conn.execute("SELECT entity, template FROM profiles WHERE entity LIKE 'adt:CD45R%'"))
    assert sorted(rows) == ["adt:CD45RA", "adt:CD45RO"]

    again = run_cli("embed-proteins", "CD4", "-o", str(out), *tiny_args, "--quiet")
    assert again.exit_code == 2 and "--force" in again.stderr  # an existing output, before any model work
    none = run_cli("embed-proteins", "-o", str(tmp_path / "x.parquet"), *tiny_args)
    assert none.exit_code == 2 and "no targets given" in none.stderr
    strict = run_cli(
        "embed-proteins", "CD4", "FOO-X1", "--strict", "-o", str(tmp_path / "s.parquet"), *tiny_args
    )
    assert strict.exit_code == 2 and "drop --strict" in strict.stderr
    only_isotype = run_cli("embed-proteins", "IgG1", "-o", str(tmp_path / "i.parquet"), *tiny_args)
    assert only_isotype.exit_code == 2 and "--include-isotype-controls" in only_isotype.stderr
    assert not (tmp_path / "s.parquet").exists() and not (tmp_path / "i.parquet").exists()


def test_protein_is_an_entity():
    from bioprofile.entities import EntityLike

    protein = normalize_proteins(["CD45RA"]).proteins[0]
    assert isinstance(protein, Protein) and isinstance(protein, EntityLike)
    assert protein.symbol == "CD45RA" and protein.name.startswith("CD45RA isoform")


@pytest.mark.slow
def test_default_models_write_different_profiles_for_isoforms(tmp_path):
    """The bundled SmolLM2 and MiniLM on a few targets: each isoform gets its own text and vector."""
    from bioprofile import GenerationSettings
    from bioprofile.pipeline import embed_proteins
    from bioprofile.store import Store

    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_proteins(
            ["CD45RA", "CD45RO", "HLA-DR"], settings=GenerationSettings(max_new_tokens=48), store=store
        )
    assert emb.symbols == ["CD45RA", "CD45RO", "HLA-DR"]
    assert len(set(emb.texts)) == 3, emb.texts
    assert not np.allclose(emb.vectors[0], emb.vectors[1])
