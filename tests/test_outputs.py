"""bioprofile.outputs: an output file or folder is checked before any work, and nothing is created by the check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_folder, check_output_path


def test_folder_that_does_not_exist_yet_is_accepted_and_not_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_output_folder(target) == target
    assert not (tmp_path / "a").exists()


def test_a_folder_the_run_owns_is_refused_once_it_holds_anything(tmp_path):
    (tmp_path / "run").mkdir()
    assert check_output_folder(tmp_path / "run") == tmp_path / "run"  # empty: used as is
    (tmp_path / "run" / "anything").write_text("x")
    with pytest.raises(BioprofileInputError, match="already holds files") as info:
        check_output_folder(tmp_path / "run", argument="output_dir")
    assert info.value.argument == "overwrite" and str(info.value).startswith("output_dir ")
    assert check_output_folder(tmp_path / "run", overwrite=True) == tmp_path / "run"


def test_only_the_named_files_of_a_run_are_refused(tmp_path):
    (tmp_path / "other.txt").write_text("not ours")
    assert check_output_folder(tmp_path, ["windows.csv", "summary.json"]) == tmp_path
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(BioprofileInputError, match="already holds summary.json from an earlier run"):
        check_output_folder(tmp_path, ["windows.csv", "summary.json"])
    check_output_folder(tmp_path, ["windows.csv", "summary.json"], overwrite=True)


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(BioprofileInputError, match="is a file, not a folder") as info:
        check_output_folder(tmp_path / "file")
    assert info.value.argument == "output"
    with pytest.raises(BioprofileInputError, match=r"cannot be created: .*file is a file, not a folder"):
        check_output_folder(tmp_path / "file" / "sub")


def test_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    # os.access, not chmod: the suite runs as root here, and root may write into a 0o500 folder
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    with pytest.raises(BioprofileInputError, match="locked is read-only"):
        check_output_folder(locked / "new")
    with pytest.raises(BioprofileInputError, match="not writable"):
        check_output_path(locked / "x.parquet", overwrite=False)
    assert check_output_folder(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_file_path_checks(tmp_path):
    with pytest.raises(BioprofileInputError, match="does not exist: create it first"):
        check_output_path(tmp_path / "missing" / "x.parquet", overwrite=False)
    with pytest.raises(BioprofileInputError, match="is a folder"):
        check_output_path(tmp_path, overwrite=True)
    (tmp_path / "x.parquet").write_text("x")
    with pytest.raises(BioprofileInputError, match="already exists") as info:
        check_output_path(tmp_path / "x.parquet", overwrite=False)
    assert info.value.argument == "overwrite"
    check_output_path(tmp_path / "x.parquet", overwrite=True)
