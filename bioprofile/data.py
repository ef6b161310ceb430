"""Datasets named in ``bioprofile/data_manifests/*.toml``: list them, download them with pooch, refuse a wrong hash.

Each manifest describes one dataset: what it is, its licence and citation, and one or more files, each with an
upstream ``url``, the ``sha256`` and ``size`` of the file the benchmarks were run on, the ``path`` it takes under
the data directory (the same layout as the project's ``shared/data/``), and its ``columns``.

A file whose hash nobody has recorded yet (``verified = false``) is not trusted: :func:`fetch_dataset` refuses it
unless ``trust_unverified=True``, and then reports the hash it saw so that a maintainer can record it.

Files land in ``<data root>/<path>``. The data root is one folder for every command that reads a dataset, named
as pooch's ``env=`` names one: ``$BIOPROFILE_DATA_DIR`` when set (a copy of the project's ``shared/data`` works as
it is), else ``<cache>/data`` where ``<cache>`` is ``$BIOPROFILE_CACHE_DIR`` or the platform user cache directory
(``platformdirs.user_cache_dir("bioprofile")``). A file already there with the recorded hash is never downloaded
again, so a data root filled once (by a download, or by copying from a local folder with ``copy_local``) serves
every later run offline.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from bioprofile.atomic import atomic_path
from bioprofile.cache import cache_dir as user_cache_dir
from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError

__all__ = [
    "DATA_DIR_ENV",
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

#: Where the manifests live: package data of ``bioprofile`` (a checkout and an installed wheel alike);
#: ``$BIOPROFILE_MANIFEST_DIR`` overrides. ``str()`` because a wheel installed on disk is a plain folder.
_DEFAULT_MANIFEST_DIR = Path(str(resources.files("bioprofile").joinpath("data_manifests")))
#: The environment variable that names the data root (see :func:`data_cache_dir`).
DATA_DIR_ENV = "BIOPROFILE_DATA_DIR"


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
    """A dataset as its ``bioprofile/data_manifests/NAME.toml`` describes it."""

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
    """Directory holding the dataset manifests (``$BIOPROFILE_MANIFEST_DIR``, else the package's ``data_manifests``)."""
    env = os.environ.get("BIOPROFILE_MANIFEST_DIR")
    return Path(env).expanduser() if env else _DEFAULT_MANIFEST_DIR


def data_cache_dir() -> Path:
    """The data root, where datasets are downloaded to and read from.

    ``$BIOPROFILE_DATA_DIR`` when set (:data:`DATA_DIR_ENV`), else ``<cache>/data`` under
    :func:`bioprofile.cache.cache_dir`.
    """
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else user_cache_dir() / "data"


def _data_root_hint() -> str:
    """Where the data root is and how it is chosen, for error messages."""
    set_to = os.environ.get(DATA_DIR_ENV)
    return f"the data root: ${DATA_DIR_ENV}" + (
        " is set" if set_to else " (unset: the user cache's data folder)"
    )


def _parse_manifest(path: Path) -> Manifest:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BioprofileInputError(f"cannot read data manifest {path}: {err}; fix the TOML file") from None
    missing = [key for key in ("name", "description", "licence", "citation", "files") if key not in raw]
    if missing:
        raise BioprofileInputError(f"data manifest {path} lacks {', '.join(missing)}: add them")
    if not isinstance(raw["files"], list) or not all(isinstance(entry, dict) for entry in raw["files"]):
        raise BioprofileInputError(f"data manifest {path}: files must be [[files]] tables; fix the TOML file")
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
        try:
            size = int(entry.get("size", 0))
            columns = {str(k): str(v) for k, v in dict(entry.get("columns", {})).items()}
        except (TypeError, ValueError):
            raise BioprofileInputError(
                f"data manifest {path}: {entry['path']} has a size that is not a number or columns that are not a "
                "table; fix the TOML file"
            ) from None
        files.append(
            DataFile(
                path=_safe_relative_path(str(entry["path"]), path),
                url=_checked_url(str(entry["url"]), path),
                sha256=sha,
                size=size,
                verified=verified,
                columns=columns,
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


# URL schemes pooch downloads from; a local file is used through data_dir instead.
_URL_SCHEMES = ("https://", "http://", "ftp://", "sftp://", "doi:")


def _safe_relative_path(relative: str, manifest: Path) -> str:
    """``relative`` if it names a file inside the data folder: no absolute path, drive or ``..`` part."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if (
        not relative.strip()
        or pure.is_absolute()
        or ".." in pure.parts
        or ":" in relative
        or "\x00" in relative
    ):
        raise BioprofileInputError(
            f"data manifest {manifest}: file path {display_value(relative)} would land outside the data folder; give "
            "a relative path such as 'genept/labels.csv' (no '..', no absolute path)"
        )
    return pure.as_posix()


def _checked_url(url: str, manifest: Path) -> str:
    """``url`` if pooch can download it (http, https, ftp, sftp, doi)."""
    if not url.lower().startswith(_URL_SCHEMES):
        raise BioprofileInputError(
            f"data manifest {manifest}: url {display_value(url)} is not http(s), ftp, sftp or doi; for a file already "
            "on disk, put it in a folder laid out like shared/data and pass that folder as data_dir"
        )
    return url


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
            f"no data manifests at {directory}: set BIOPROFILE_MANIFEST_DIR to a folder of manifests such as the "
            "package's bioprofile/data_manifests"
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
            f"unknown dataset {name!r}: choose one of {', '.join(manifests)} (see bioprofile.data.list_manifests())"
        )
    return manifests[name]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, as pooch computes it to check a download (:func:`pooch.file_hash`).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        64 hex digits: what a manifest's ``sha256`` records.
    """
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def _local_copy(entry: DataFile, data_dir: Path | None) -> Path | None:
    """A copy of a verified file under ``data_dir`` whose hash matches, else None."""
    if data_dir is None or not entry.verified:
        return None
    candidate = data_dir / entry.path
    if candidate.is_file() and file_sha256(candidate) == entry.sha256:
        return candidate
    return None


@contextmanager
def _quiet_pooch_log(pooch) -> Iterator[None]:
    """Turn pooch's own INFO lines off for the block: its progress bar stays, and errors are one line of ours.

    Its handler is also pointed at today's ``sys.stderr``: it is bound to the stream of the moment pooch was first
    imported, which a test runner or a notebook may since have replaced and closed.
    """
    logger = pooch.get_logger()
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.stream = sys.stderr  # not setStream: it flushes the old stream, which may be closed
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch_dataset(
    name: str | Manifest,
    *,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    trust_unverified: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    copy_local: bool = False,
) -> list[FetchedFile]:
    """Make every file of a dataset available locally, checking each against its recorded sha256.

    Parameters
    ----------
    name
        Dataset name (a manifest's ``name``) or a :class:`Manifest`.
    cache_dir
        Download directory; defaults to :func:`data_cache_dir` (``$BIOPROFILE_DATA_DIR``, else the user cache's
        ``data`` folder).
    data_dir
        A directory laid out like ``shared/data`` to use first: a file found there with the recorded hash is
        used without downloading (in place, unless ``copy_local``).
    trust_unverified
        Download files whose hash is not recorded and accept whatever arrives; the hash seen is returned in
        :attr:`FetchedFile.sha256` so it can be recorded in the manifest.
    progress
        Show pooch's download progress bar (needs ``tqdm``).
    overwrite
        Replace a file already in the cache whose sha256 differs from the recorded one; without it such a file
        is kept and the fetch refused, before anything is downloaded.
    copy_local
        Copy each file found in ``data_dir`` into the download directory (unless a copy with the recorded hash
        is there already), so that later fetches without ``data_dir`` find it offline.

    Returns
    -------
    list of FetchedFile
        One per file of the manifest, in manifest order.

    Raises
    ------
    BioprofileInputError
        Unknown dataset; an unverified file without ``trust_unverified``; a downloaded file whose sha256 differs
        from the recorded one (the download is discarded); a cached file with another hash and no ``overwrite``;
        a file path outside the cache folder; a cache folder that cannot be written; a download that fails.
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

    if data_dir is not None and not data_dir.is_dir():
        raise BioprofileInputError(
            f"data_dir {data_dir} is not a folder: pass a folder laid out like shared/data, or leave it out to "
            "download",
            argument="data_dir",
        )
    targets = {entry.path: _cache_target(cache, entry) for entry in manifest.files}
    # Every check before the first download, so a refusal never leaves half a dataset behind.
    for entry in manifest.files:
        target = targets[entry.path]
        if (_local_copy(entry, data_dir) is not None and not copy_local) or not target.exists():
            continue
        if not target.is_file():
            raise BioprofileInputError(
                f"{target} is in the way and not a file: move it away, then fetch again"
            )
        if entry.verified and not overwrite and file_sha256(target) != entry.sha256:
            raise BioprofileInputError(
                f"{target} is already in the cache but its sha256 is not the recorded {entry.sha256}; it was kept: "
                "move it away, or set overwrite to replace it with a fresh download",
                argument="overwrite",
            )

    fetched = []
    for entry in manifest.files:
        local = _local_copy(entry, data_dir)
        if local is not None and not copy_local:
            fetched.append(FetchedFile(path=local, sha256=entry.sha256, verified=True))
            continue
        target = targets[entry.path]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise BioprofileInputError(
                f"cannot create {target.parent} ({err.strerror}): point ${DATA_DIR_ENV} at a writable folder"
            ) from None
        if not os.access(target.parent, os.W_OK):
            raise BioprofileInputError(
                f"cannot write to {target.parent}: point ${DATA_DIR_ENV} at a writable folder"
            )
        if local is not None:
            if not (target.is_file() and file_sha256(target) == entry.sha256):
                with atomic_path(target) as tmp:
                    shutil.copyfile(local, tmp)
            fetched.append(FetchedFile(path=target, sha256=entry.sha256, verified=True))
            continue
        existed = target.is_file()
        known_hash = f"sha256:{entry.sha256}" if entry.verified else None
        processor = pooch.Unzip(extract_dir=target.name + ".unzipped") if manifest.unpack == "zip" else None
        try:
            with _quiet_pooch_log(pooch):
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
                kept = "the file already there was kept" if existed else "the download was discarded"
                raise BioprofileInputError(
                    f"{entry.path} from {entry.url} does not have the recorded sha256 {entry.sha256} ({kept}); "
                    "upstream changed it: check the source, then update the manifest"
                ) from None
            raise BioprofileInputError(
                f"cannot download {entry.path} from {entry.url}: {' '.join(str(err).split())}; check the url in "
                "the manifest"
            ) from None
        except Exception as err:  # noqa: BLE001 - requests, ftplib, OS errors: name them on one line
            raise BioprofileInputError(
                f"cannot download {entry.path} from {entry.url}: {type(err).__name__}: "
                f"{display_value(' '.join(str(err).split()), 200)}; check the network, or put the file at "
                f"{target} by hand ({_data_root_hint()})"
            ) from None
        extracted = tuple(Path(p) for p in result) if isinstance(result, list) else ()
        if not target.is_file():
            raise BioprofileInputError(f"download of {entry.url} left no file at {target}; try again")
        seen = file_sha256(target) if not entry.verified else entry.sha256
        fetched.append(FetchedFile(path=target, sha256=seen, verified=entry.verified, extracted=extracted))
    return fetched


def _cache_target(cache: Path, entry: DataFile) -> Path:
    """Where ``entry`` lands under ``cache``, refused if it would resolve outside (a ``..`` or a symlink)."""
    root = cache.resolve()
    target = (cache / entry.path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise BioprofileInputError(
            f"{display_value(entry.path)} would be written outside the cache folder {root}; the manifest must give "
            "a relative path inside it"
        )
    return cache / entry.path
