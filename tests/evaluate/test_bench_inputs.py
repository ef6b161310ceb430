"""How a benchmark names its inputs (NAME=PATH or a file's stem, a model by its folder), and reads a cell .h5ad."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.inputs import model_label, named_tables


def test_a_bare_path_is_named_by_its_stem_and_a_name_is_kept():
    named = named_tables([Path("runs/genes.parquet"), "bft=runs/bft.parquet", "state.pt"])
    assert named == {
        "genes": Path("runs/genes.parquet"),
        "bft": Path("runs/bft.parquet"),
        "state": Path("state.pt"),
    }
    assert list(named) == ["genes", "bft", "state"]  # the order given: the report's rows


def test_a_stem_taken_already_names_the_later_table_by_its_path():
    named = named_tables(["run1/genes.parquet", Path("run2/genes.parquet")])
    assert named == {"genes": Path("run1/genes.parquet"), "run2/genes.parquet": Path("run2/genes.parquet")}


@pytest.mark.parametrize(
    "given",
    [
        ["a=x.parquet", "a=y.parquet"],
        ["genes.parquet", "genes=other.parquet"],
        ["t.parquet", "t.parquet"] * 2,
    ],
)
def test_one_name_for_two_tables_is_refused(given):
    with pytest.raises(BioprofileInputError, match="name them apart with NAME=PATH") as caught:
        named_tables(given)
    assert caught.value.argument == "embeddings"


def test_an_existing_file_with_an_equals_sign_is_a_path(tmp_path):
    table = tmp_path / "k=v.parquet"
    table.write_bytes(b"")
    assert named_tables([table]) == {"k=v": table}


def test_the_cli_names_its_flags_and_reads_cells_in_one_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["bench", "perturbation", str(tmp_path / "data.h5ad"), "-e", "a=x.parquet", "-e", "a=y.parquet",
         "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: two --embeddings are named 'a': name them apart with NAME=PATH"
    missing = tmp_path / "cells.h5ad"
    result = runner.invoke(
        app, ["bench", "clustering", str(missing), "--label-key", "cell_type", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: input file {missing} does not exist: give an .h5ad file"
    broken = tmp_path / "broken.h5ad"
    broken.write_text("not hdf5\n")
    result = runner.invoke(app, ["bench", "integration", str(broken), "--batch-key", "b", "--label-key", "c",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot read input file {broken}: it is not a readable .h5ad")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_model_is_named_by_its_folder_or_as_given(tmp_path):
    folder = tmp_path / "runs" / "bft-seed0"
    folder.mkdir(parents=True)
    assert model_label(folder) == "bft-seed0"
    assert model_label(str(folder)) == "bft-seed0"
    assert model_label("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert model_label(None) == "default"
