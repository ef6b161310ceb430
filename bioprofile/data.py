"""Datasets named in ``data_manifests/*.toml``: list them, download them with pooch, refuse a wrong hash.

Each manifest describes one dataset: what it is, its licence and citation, and one or more files, each with an
upstream ``url``, the ``sha256`` and ``size`` of the file the benchmarks were run on, the ``path`` it takes under
the data directory (the same layout as the project's ``shared/data/``), and its ``columns``.

A file whose hash nobody has recorded yet (``verified = false``) is not trusted: :func:`fetch_dataset` refuses it
unless ``trust_unverified=True``, and then reports the hash it saw so that a maintainer can record it.

Files land in ``<cache>/data/<path>`` where ``<cache>`` is ``$BIOPROFILE_CACHE_DIR`` or the platform user cache
directory (``platformdirs.user_cache_dir("bioprofile")``).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioprofile.cache import cache_dir as user_cache_dir
from bioprofile.errors import BioprofileInputError

__all__ = [
    "DataFile",
    "FetchedFile",
    "Manifest",
    "data_cache_dir",
    "fetch_dataset",
    "file_sha256",
    "list_manifests",
    "load_manifest",
    "manifest_dir",
]

#: Where the manifests live: beside the package in a source checkout; ``$BIOPROFILE_MANIFEST_DIR`` overrides.
_DEFAULT_MANIFEST_DIR = Path(__file__).resolve().parents[1] / "data_manifests"


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    Attributes
    ----------
    path
        Relative path under the data directory, e.g. ``"genept/dosage_sens_tf_labels.csv"``.
    url
        Upstream download address.
    sha256
        Hex digest of the file, or ``""`` when not yet recorded.
    size
        Size in bytes (0 when unknown).
    verified
        Whether ``sha256`` was computed from a real copy of the file.
    columns
        Column (or field) name → meaning.
    """

    path: str
    url: str
    sha256: str
    size: int
    verified: bool
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """A dataset as its ``data_manifests/NAME.toml`` describes it."""

    name: str
    description: str
    licence: str
    citation: str
    files: tuple[DataFile, ...]
    homepage: str = ""
    tasks: tuple[str, ...] = ()
    notes: str = ""
    format: str = ""
    unpack: str = ""
    source: Path | None = None

    @property
    def verified(self) -> bool:
        """True when every file has a recorded hash."""
        return all(f.verified for f in self.files)

    @property
    def size(self) -> int:
        """Total recorded size in bytes (unknown sizes count as 0)."""
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class FetchedFile:
    """A file on disk after :func:`fetch_dataset`, with the hash it actually has."""

    path: Path
    sha256: str
    verified: bool
    extracted: tuple[Path, ...] = ()


def manifest_dir() -> Path:
    """Directory holding the dataset manifests (``$BIOPROFILE_MANIFEST_DIR`` or the project's ``data_manifests``)."""
    env = os.environ.get("BIOPROFILE_MANIFEST_DIR")
    return Path(env).expanduser() if env else _DEFAULT_MANIFEST_DIR


def data_cache_dir() -> Path:
    """Download directory: ``<cache>/data`` under :func:`bioprofile.cache.cache_dir`."""
    return user_cache_dir() / "data"


def _parse_manifest(path: Path) -> Manifest:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BioprofileInputError(f"cannot read data manifest {path}: {err}; fix the TOML file") from None
    missing = [key for key in ("name", "description", "licence", "citation", "files") if key not in raw]
    if missing:
        raise BioprofileInputError(f"data manifest {path} lacks {', '.join(missing)}: add them")
    files = []
    for entry in raw["files"]:
        absent = [key for key in ("path", "url", "sha256") if key not in entry]
        if absent:
            raise BioprofileInputError(f"data manifest {path}: a [[files]] entry lacks {', '.join(absent)}")
        sha = str(entry["sha256"]).lower()
        verified = bool(entry.get("verified", bool(sha)))
        if verified and len(sha) != 64:
            raise BioprofileInputError(
                f"data manifest {path}: {entry['path']} is marked verified but its sha256 is not 64 hex digits"
            )
        files.append(
            DataFile(
                path=str(entry["path"]),
                url=str(entry["url"]),
                sha256=sha,
                size=int(entry.get("size", 0)),
                verified=verified,
                columns={str(k): str(v) for k, v in entry.get("columns", {}).items()},
            )
        )
    return Manifest(
        name=str(raw["name"]),
        description=str(raw["description"]),
        licence=str(raw["licence"]),
        citation=str(raw["citation"]),
        files=tuple(files),
        homepage=str(raw.get("homepage", "")),
        tasks=tuple(raw.get("tasks", ())),
        notes=str(raw.get("notes", "")),
        format=str(raw.get("format", "")),
        unpack=str(raw.get("unpack", "")),
        source=path,
    )


def list_manifests(directory: str | Path | None = None) -> list[Manifest]:
    """All dataset manifests, sorted by name.

    Parameters
    ----------
    directory
        Where to look; defaults to :func:`manifest_dir`.

    Returns
    -------
    list of Manifest

    Raises
    ------
    BioprofileInputError
        ``directory`` is not a folder, or a manifest in it cannot be parsed.
    """
    directory = Path(directory) if directory is not None else manifest_dir()
    if not directory.is_dir():
        raise BioprofileInputError(
            f"no data manifests at {directory}: set BIOPROFILE_MANIFEST_DIR to the project's data_manifests folder"
        )
    return sorted((_parse_manifest(p) for p in directory.glob("*.toml")), key=lambda m: m.name)


def load_manifest(name: str, directory: str | Path | None = None) -> Manifest:
    """The manifest of dataset ``name``.

    Parameters
    ----------
    name
        The dataset's ``name``.
    directory
        Where to look; defaults to :func:`manifest_dir`.

    Returns
    -------
    Manifest

    Raises
    ------
    BioprofileInputError
        No manifest has that name (the message lists the known names).
    """
    manifests = {m.name: m for m in list_manifests(directory)}
    if name not in manifests:
        raise BioprofileInputError(
            f"unknown dataset {name!r}: choose one of {', '.join(manifests)} (see `bioprofile data list`)"
        )
    return manifests[name]


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _local_copy(entry: DataFile, data_dir: Path | None) -> Path | None:
    """A copy of a verified file under ``data_dir`` whose hash matches, else None."""
    if data_dir is None or not entry.verified:
        return None
    candidate = data_dir / entry.path
    if candidate.is_file() and file_sha256(candidate) == entry.sha256:
        return candidate
    return None


def fetch_dataset(
    name: str | Manifest,
    *,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    trust_unverified: bool = False,
    progress: bool = False,
) -> list[FetchedFile]:
    """Make every file of a dataset available locally, checking each against its recorded sha256.

    Parameters
    ----------
    name
        Dataset name (a manifest's ``name``) or a :class:`Manifest`.
    cache_dir
        Download directory; defaults to :func:`data_cache_dir`.
    data_dir
        A directory laid out like ``shared/data`` to use first: a file found there with the recorded hash is
        used in place without downloading.
    trust_unverified
        Download files whose hash is not recorded and accept whatever arrives; the hash seen is returned in
        :attr:`FetchedFile.sha256` so it can be recorded in the manifest.
    progress
        Show pooch's download progress bar (needs ``tqdm``).

    Returns
    -------
    list of FetchedFile
        One per file of the manifest, in manifest order.

    Raises
    ------
    BioprofileInputError
        Unknown dataset; an unverified file without ``trust_unverified``; a downloaded file whose sha256 differs
        from the recorded one (the bad file is deleted); a download that fails.
    """
    import pooch

    manifest = name if isinstance(name, Manifest) else load_manifest(name)
    cache = Path(cache_dir) if cache_dir is not None else data_cache_dir()
    data_dir = Path(data_dir) if data_dir is not None else None
    unverified = [f.path for f in manifest.files if not f.verified]
    if unverified and not trust_unverified:
        raise BioprofileInputError(
            f"dataset {manifest.name} has no recorded sha256 for {', '.join(unverified)}; set trust_unverified "
            "to download it anyway and record the hash it reports in the manifest",
            argument="trust_unverified",
        )

    fetched = []
    for entry in manifest.files:
        local = _local_copy(entry, data_dir)
        if local is not None:
            fetched.append(FetchedFile(path=local, sha256=entry.sha256, verified=True))
            continue
        target = cache / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        known_hash = f"sha256:{entry.sha256}" if entry.verified else None
        processor = pooch.Unzip(extract_dir=target.name + ".unzipped") if manifest.unpack == "zip" else None
        try:
            result = pooch.retrieve(
                entry.url,
                known_hash=known_hash,
                fname=target.name,
                path=target.parent,
                processor=processor,
                progressbar=progress,
            )
        except ValueError as err:
            if "hash" in str(err).lower():
                raise BioprofileInputError(
                    f"{entry.path} from {entry.url} does not have the recorded sha256 {entry.sha256} (the file "
                    "was deleted); upstream changed it: check the source, then update the manifest"
                ) from None
            raise
        except Exception as err:  # noqa: BLE001 - requests, ftplib, OS errors: name them on one line
            raise BioprofileInputError(
                f"cannot download {entry.path} from {entry.url}: {type(err).__name__}: {err}; check the network "
                "or fetch the file by hand into " + str(target.parent)
            ) from None
        extracted = tuple(Path(p) for p in result) if isinstance(result, list) else ()
        if not target.is_file():
            raise BioprofileInputError(f"download of {entry.url} left no file at {target}; try again")
        seen = file_sha256(target) if not entry.verified else entry.sha256
        fetched.append(FetchedFile(path=target, sha256=seen, verified=entry.verified, extracted=extracted))
    return fetched
