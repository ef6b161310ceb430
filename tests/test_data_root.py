"""One data root ($BIOPROFILE_DATA_DIR): downloads land there, `data fetch --data-dir` copies into it, and
`bench gene-tasks` reads its labels from it offline; a failed download names the variable. Loopback only."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.data import DATA_DIR_ENV, data_cache_dir, fetch_dataset
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_symbols, normalize_genes

NOWHERE = "http://127.0.0.1:9/none"  # the discard port: any download attempt fails at once


@pytest.fixture()
def served(tmp_path):
    """``tmp_path / 'www'`` over HTTP on a free loopback port."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _manifest(folder, name: str, url: str, payload: bytes, path: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(
        f'name = "{name}"\ndescription = "d"\nlicence = "MIT"\ncitation = "c"\n\n[[files]]\npath = "{path}"\n'
        f'url = "{url}"\nsha256 = "{hashlib.sha256(payload).hexdigest()}"\nsize = {len(payload)}\nverified = true\n'
    )


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    """Manifests, a data root and a cache of the test's own (the user's are never touched)."""
    monkeypatch.setenv("BIOPROFILE_MANIFEST_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "root"))
    return tmp_path


def test_the_variable_names_the_data_root_else_the_cache(roots, monkeypatch):
    assert data_cache_dir() == roots / "root"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert data_cache_dir() == roots / "cache" / "data"


def test_downloads_land_in_the_data_root(roots, served):
    www, base = served
    payload = b"gene,label\nTP53,1\n"
    (www / "labels.csv").write_bytes(payload)
    _manifest(roots / "m", "toy", f"{base}/labels.csv", payload, "x/labels.csv")
    (fetched,) = fetch_dataset("toy")
    assert fetched.path == roots / "root" / "x" / "labels.csv" and fetched.path.read_bytes() == payload


def test_data_fetch_from_a_folder_leaves_the_file_where_the_next_fetch_looks(roots):
    payload = b"gene,label\nTP53,1\n"
    (roots / "local" / "x").mkdir(parents=True)
    (roots / "local" / "x" / "labels.csv").write_bytes(payload)
    _manifest(roots / "m", "toy", NOWHERE, payload, "x/labels.csv")
    runner = CliRunner()
    copied = runner.invoke(app, ["data", "fetch", "toy", "--data-dir", str(roots / "local"), "-q"])
    assert copied.exit_code == 0, copied.output
    assert copied.stdout.startswith(f"{roots / 'root' / 'x' / 'labels.csv'}  sha256=")
    assert (roots / "root" / "x" / "labels.csv").read_bytes() == payload
    (roots / "local" / "x" / "labels.csv").unlink()  # the copy in the data root is all there is now
    again = runner.invoke(app, ["data", "fetch", "toy", "-q"])  # no --data-dir, no network
    assert again.exit_code == 0, again.output
    assert "(verified)" in again.stdout


def test_a_failed_download_names_the_data_root_variable(roots):
    _manifest(roots / "m", "toy", NOWHERE, b"x\n", "x/labels.csv")
    with pytest.raises(
        BioprofileInputError, match=rf"put the file at .*labels\.csv by hand .*\${DATA_DIR_ENV}"
    ):
        fetch_dataset("toy")
    result = CliRunner().invoke(app, ["data", "fetch", "toy", "-q"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"${DATA_DIR_ENV}" in result.stderr


def test_bench_gene_tasks_reads_its_labels_from_the_data_root(roots):
    symbols = sorted(s for s in hgnc_symbols() if s.isalnum() and s.isupper())[3000:3200]
    genes = [g for g in normalize_genes(symbols).genes if g.ensembl_id][:60]
    rows = "".join(
        f"{g.ensembl_id},{g.symbol},{'No' if i % 2 else 'Yes'},{'Yes' if i % 2 else 'No'}\n"
        for i, g in enumerate(genes)
    )
    payload = ("ensembl_id,gene_name,dosage_insensitive,dosage_sensitive\n" + rows).encode()
    _manifest(roots / "m", "genept_dosage_tf", NOWHERE, payload, "genept/dosage_sens_tf_labels.csv")
    rng = np.random.default_rng(0)
    GeneEmbeddings(
        [g.hgnc_id for g in genes],
        [g.symbol for g in genes],
        [""] * len(genes),
        rng.normal(size=(len(genes), 8)),
    ).write(roots / "t.parquet")
    bench = ["bench", "gene-tasks", "-e", str(roots / "t.parquet"), "--tasks", "dosage", "--models", "logreg"]
    bench += ["--no-random", "-q", "-o", str(roots / "out")]
    runner = CliRunner()
    missing = runner.invoke(app, bench)  # an empty data root and no network: one line naming the variable
    assert missing.exit_code == 2 and f"${DATA_DIR_ENV}" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    (roots / "root" / "genept").mkdir(parents=True, exist_ok=True)
    (roots / "root" / "genept" / "dosage_sens_tf_labels.csv").write_bytes(payload)
    scored = runner.invoke(app, bench)
    assert scored.exit_code == 0, scored.output
    assert "| dosage |" in scored.stdout and f"{len(genes)}/{len(genes)} (100.0%)" in scored.stdout
