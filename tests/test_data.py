"""Dataset manifests and sha256-checked downloads, through a real local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from bioprofile.data import fetch_dataset, file_sha256, list_manifests, load_manifest
from bioprofile.errors import BioprofileInputError


@pytest.fixture()
def http_root(tmp_path):
    """Serve ``tmp_path / 'www'`` over HTTP on a free port for the test's duration."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def _write_manifest(
    directory: Path, name: str, url: str, sha: str, verified: bool, path: str = "x/labels.csv"
):
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.toml").write_text(
        f'name = "{name}"\ndescription = "d"\nlicence = "MIT"\ncitation = "c"\n\n'
        f'[[files]]\npath = "{path}"\nurl = "{url}"\nsha256 = "{sha}"\nsize = 0\nverified = {str(verified).lower()}\n'
    )


def test_repository_manifests_parse_and_cover_the_shared_files(shared_data):
    manifests = {m.name: m for m in list_manifests()}
    for name in (
        "genept_dosage_tf",
        "gene2vec_ggi",
        "genept_gene_info",
        "geneformer_chromatin",
        "genept_embeddings",
        "geneformer_tf_range",
        "ppi_pairs",
        "citeseq_gse164378",
        "replogle_nadig_perturbseq",
    ):
        assert name in manifests
    for manifest in manifests.values():
        assert manifest.licence and manifest.citation
        for entry in manifest.files:
            assert entry.url.startswith(("http://", "https://"))
            assert entry.verified == (len(entry.sha256) == 64)
            local = shared_data / entry.path
            if entry.verified:  # every recorded hash is that of the shared copy, byte for byte
                assert local.is_file(), entry.path
                assert file_sha256(local) == entry.sha256
                assert local.stat().st_size == entry.size


def test_fetch_downloads_and_checks_hash(tmp_path, http_root, monkeypatch):
    root, base = http_root
    payload = b"gene,label\nTP53,1\nGAPDH,0\n"
    (root / "labels.csv").write_bytes(payload)
    _write_manifest(tmp_path / "m", "toy", f"{base}/labels.csv", hashlib.sha256(payload).hexdigest(), True)
    monkeypatch.setenv("BIOPROFILE_MANIFEST_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))

    (fetched,) = fetch_dataset("toy")
    assert fetched.path == tmp_path / "cache" / "data" / "x" / "labels.csv"
    assert fetched.path.read_bytes() == payload and fetched.verified


def test_fetch_refuses_a_file_whose_hash_differs(tmp_path, http_root):
    root, base = http_root
    (root / "labels.csv").write_bytes(b"tampered\n")
    _write_manifest(
        tmp_path / "m", "toy", f"{base}/labels.csv", hashlib.sha256(b"original\n").hexdigest(), True
    )
    with pytest.raises(BioprofileInputError, match="does not have the recorded sha256"):
        fetch_dataset(load_manifest("toy", tmp_path / "m"), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "x" / "labels.csv").exists()


def test_unverified_needs_trust_and_reports_the_hash_seen(tmp_path, http_root):
    root, base = http_root
    payload = b"ENSG00000141510\tENSG00000111640\n"
    (root / "pairs.tsv").write_bytes(payload)
    _write_manifest(tmp_path / "m", "toy", f"{base}/pairs.tsv", "", False, path="p/pairs.tsv")
    manifest = load_manifest("toy", tmp_path / "m")
    with pytest.raises(BioprofileInputError, match="set trust_unverified to download it anyway") as err:
        fetch_dataset(manifest, cache_dir=tmp_path / "cache")
    assert err.value.argument == "trust_unverified"
    (fetched,) = fetch_dataset(manifest, cache_dir=tmp_path / "cache", trust_unverified=True)
    assert fetched.sha256 == hashlib.sha256(payload).hexdigest() and not fetched.verified


def test_local_data_dir_is_used_without_download(tmp_path):
    data_dir = tmp_path / "shared"
    (data_dir / "x").mkdir(parents=True)
    payload = b"local copy\n"
    (data_dir / "x" / "labels.csv").write_bytes(payload)
    # The URL points nowhere: success proves the local copy was used.
    _write_manifest(
        tmp_path / "m", "toy", "http://127.0.0.1:9/none", hashlib.sha256(payload).hexdigest(), True
    )
    (fetched,) = fetch_dataset(
        load_manifest("toy", tmp_path / "m"), cache_dir=tmp_path / "c", data_dir=data_dir
    )
    assert fetched.path == data_dir / "x" / "labels.csv"


def test_unknown_dataset_names_the_known_ones(tmp_path):
    _write_manifest(tmp_path / "m", "toy", "http://x", "", False)
    with pytest.raises(BioprofileInputError, match="choose one of toy"):
        load_manifest("nope", tmp_path / "m")


def test_data_commands(tmp_path, http_root, monkeypatch):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    root, base = http_root
    payload = b"gene,label\nTP53,1\n"
    (root / "labels.csv").write_bytes(payload)
    _write_manifest(tmp_path / "m", "toy", f"{base}/labels.csv", hashlib.sha256(payload).hexdigest(), True)
    _write_manifest(tmp_path / "m", "raw", f"{base}/labels.csv", "", False, path="y/labels.csv")
    monkeypatch.setenv("BIOPROFILE_MANIFEST_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    listed = runner.invoke(app, ["data", "list"])
    assert listed.exit_code == 0 and listed.output.split()[0] == "raw" and "sha256 recorded" in listed.output
    assert "no sha256 yet" in listed.output.splitlines()[0]
    fetched = runner.invoke(app, ["data", "fetch", "toy"])
    assert fetched.exit_code == 0 and "(verified)" in fetched.output
    assert (tmp_path / "cache" / "data" / "x" / "labels.csv").read_bytes() == payload
    refused = runner.invoke(app, ["data", "fetch", "raw"])
    assert refused.exit_code == 2 and "set --trust-unverified to download it anyway" in refused.stderr
    trusted = runner.invoke(app, ["data", "fetch", "raw", "--trust-unverified"])
    assert trusted.exit_code == 0 and hashlib.sha256(payload).hexdigest() in trusted.output


@pytest.mark.parametrize("bad_path", ["../../x.csv", "/tmp/x.csv", "a/../../x.csv", "C:/x.csv", ".."])
def test_manifest_paths_outside_the_data_folder_are_refused(tmp_path, http_root, bad_path):
    root, base = http_root
    (root / "labels.csv").write_bytes(b"x\n")
    _write_manifest(tmp_path / "m", "toy", f"{base}/labels.csv", "", False, path=bad_path)
    with pytest.raises(BioprofileInputError, match="outside the data folder"):
        fetch_dataset(load_manifest("toy", tmp_path / "m"), cache_dir=tmp_path / "c", trust_unverified=True)
    assert not (tmp_path / "x.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "www"]


def test_a_symlink_out_of_the_cache_is_refused(tmp_path, http_root):
    root, base = http_root
    (root / "labels.csv").write_bytes(b"x\n")
    (tmp_path / "c").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "c" / "link").symlink_to(tmp_path / "outside")
    _write_manifest(tmp_path / "m", "toy", f"{base}/labels.csv", "", False, path="link/x.csv")
    with pytest.raises(BioprofileInputError, match="outside the cache folder"):
        fetch_dataset(load_manifest("toy", tmp_path / "m"), cache_dir=tmp_path / "c", trust_unverified=True)
    assert not list((tmp_path / "outside").iterdir())


def test_file_urls_are_refused_in_one_line(tmp_path):
    (tmp_path / "src.csv").write_bytes(b"x\n")
    _write_manifest(tmp_path / "m", "toy", (tmp_path / "src.csv").as_uri(), "", False)
    with pytest.raises(BioprofileInputError, match="is not http") as err:
        load_manifest("toy", tmp_path / "m")
    assert "\n" not in str(err.value) and "data_dir" in str(err.value)


def test_a_cached_file_with_another_hash_is_kept_without_overwrite(tmp_path, http_root):
    root, base = http_root
    payload = b"gene,label\nTP53,1\n"
    (root / "labels.csv").write_bytes(payload)
    _write_manifest(tmp_path / "m", "toy", f"{base}/labels.csv", hashlib.sha256(payload).hexdigest(), True)
    manifest = load_manifest("toy", tmp_path / "m")
    (tmp_path / "c" / "x").mkdir(parents=True)
    (tmp_path / "c" / "x" / "labels.csv").write_bytes(b"mine\n")
    with pytest.raises(BioprofileInputError, match="it was kept") as err:
        fetch_dataset(manifest, cache_dir=tmp_path / "c")
    assert err.value.argument == "overwrite"
    assert (tmp_path / "c" / "x" / "labels.csv").read_bytes() == b"mine\n"
    (fetched,) = fetch_dataset(manifest, cache_dir=tmp_path / "c", overwrite=True)
    assert fetched.path.read_bytes() == payload


def test_a_missing_data_dir_is_named_not_a_download_error(tmp_path):
    _write_manifest(tmp_path / "m", "toy", "http://127.0.0.1:9/none", "a" * 64, True)
    with pytest.raises(BioprofileInputError, match="is not a folder") as err:
        fetch_dataset(
            load_manifest("toy", tmp_path / "m"), cache_dir=tmp_path / "c", data_dir=tmp_path / "nope"
        )
    assert err.value.argument == "data_dir"


def test_data_fetch_traversal_is_one_line_exit_2(tmp_path, http_root, monkeypatch):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    root, base = http_root
    (root / "labels.csv").write_bytes(b"x\n")
    _write_manifest(tmp_path / "m", "toy", f"{base}/labels.csv", "", False, path="../../escaped.csv")
    monkeypatch.setenv("BIOPROFILE_MANIFEST_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache" / "deep"))
    result = CliRunner().invoke(app, ["data", "fetch", "toy", "--trust-unverified"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "escaped.csv").exists() and not (tmp_path / "cache").exists()
