"""`EntityEmbeddings` (alias `GeneEmbeddings`): one vector per entity with its profile text and provenance.

Read and written as parquet, npz, h5ad and pt. The table is the same for every entity kind (genes, proteins...);
``provenance["entity_kind"]`` says which (tables written before it existed hold genes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.atomic import atomic_path
from bioprofile.display import display_value
from bioprofile.entities import DEFAULT_KIND
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path
from bioprofile.readers import UNREADABLE_FILE_ERRORS

__all__ = [
    "FORMATS",
    "UNREADABLE_FILE_ERRORS",
    "EntityEmbeddings",
    "GeneEmbeddings",
    "resolve_format",
]

FORMATS = ("parquet", "npz", "h5ad", "pt")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".npz": "npz", ".h5ad": "h5ad", ".pt": "pt"}
_METADATA_KEY = b"bioprofile"


@dataclass
class EntityEmbeddings:
    """Entity (gene, protein...) embeddings: row ``i`` of ``vectors`` belongs to ``symbols[i]`` / ``ids[i]``.

    Attributes
    ----------
    ids
        The entities' store keys: for genes the HGNC ids (e.g. ``"HGNC:11998"``), else e.g. ``"adt:CD45RA"``.
    symbols
        Symbols (approved HGNC symbols for genes).
    texts
        The profile text each vector was computed from.
    vectors
        ``float32`` array of shape ``(n_entities, dim)``.
    provenance
        Generator, template, encoder, entity kind, bioprofile version and anything else needed to reproduce the
        vectors.
    """

    ids: list[str]
    symbols: list[str]
    texts: list[str]
    vectors: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        n = len(self.ids)
        if (
            self.vectors.ndim != 2
            or self.vectors.shape[0] != n
            or len(self.symbols) != n
            or len(self.texts) != n
        ):
            raise ValueError(
                f"EntityEmbeddings needs one id, symbol, text and vector row per entity; got {n} ids, "
                f"{len(self.symbols)} symbols, {len(self.texts)} texts, vectors {self.vectors.shape}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Length of each vector."""
        return int(self.vectors.shape[1])

    @property
    def kind(self) -> str:
        """The kind of entity the rows are (``"gene"``, ``"protein"``...), from the provenance."""
        return str(self.provenance.get("entity_kind", DEFAULT_KIND))

    def select(self, symbols: Sequence[str]) -> EntityEmbeddings:
        """The rows of ``symbols``, in that order (provenance kept), e.g. to compare two tables on the same genes.

        Raises
        ------
        BioprofileInputError
            If a symbol has no row.
        """
        row = {s: i for i, s in enumerate(self.symbols)}
        missing = [s for s in symbols if s not in row]
        if missing:
            raise BioprofileInputError(
                f"{len(missing)} gene(s) not in the table, e.g. {missing[:3]}: select from its symbols only"
            )
        idx = [row[s] for s in symbols]
        return EntityEmbeddings(
            [self.ids[i] for i in idx],
            list(symbols),
            [self.texts[i] for i in idx],
            self.vectors[idx],
            dict(self.provenance),
        )

    def to_dict(self) -> dict[str, np.ndarray]:
        """``{symbol: vector}``, the shape GenePT-style cell embedding and STATE expect."""
        return {s: v for s, v in zip(self.symbols, self.vectors, strict=False)}

    def to_dataframe(self):
        """The table as a ``pandas.DataFrame`` with columns ``id``, ``symbol``, ``text`` and ``vector``."""
        import pandas as pd

        return pd.DataFrame(
            {"id": self.ids, "symbol": self.symbols, "text": self.texts, "vector": list(self.vectors)}
        )

    def to_anndata(self):
        """Entities as observations: ``X`` the vectors, ``obs`` id and text, ``uns["bioprofile"]`` the provenance."""
        import anndata as ad
        import pandas as pd

        obs = pd.DataFrame({"id": self.ids, "text": self.texts}, index=pd.Index(self.symbols, name="symbol"))
        return ad.AnnData(X=self.vectors, obs=obs, uns={"bioprofile": _jsonable(self.provenance)})

    def write(self, path: str | Path, *, format: str | None = None, overwrite: bool = False) -> Path:
        """Write to ``path`` atomically (a temporary file renamed into place); returns ``path``.

        A file already there is replaced only with ``overwrite``. ``format`` defaults to the one the suffix
        names, else parquet.
        """
        path = Path(path)
        fmt = resolve_format(path, format)
        check_output_path(path, overwrite=overwrite)
        with atomic_path(path) as tmp:
            _WRITERS[fmt](self, tmp)
        return path

    @classmethod
    def read(cls, path: str | Path, *, format: str | None = None) -> EntityEmbeddings:
        """The table in ``path`` (written by :meth:`write`); ``format`` defaults to the one the suffix names."""
        path = Path(path)
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise BioprofileInputError(
                f"embeddings file {path} {what}: pass a table written by EntityEmbeddings.write"
            )
        fmt = resolve_format(path, format, reading=True)
        try:
            return _READERS[fmt](path)
        except BioprofileInputError:
            raise
        except UNREADABLE_FILE_ERRORS as err:
            # A truncated, garbage or foreign file raises whatever its parser raises: name it on one line.
            reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 120)
            raise BioprofileInputError(
                f"embeddings file {path} is not a readable {fmt} table ({reason}); pass a table written by "
                "EntityEmbeddings.write, or write it again"
            ) from None


#: The historical (and still most common) name of the table: gene tables are entity tables of kind "gene".
GeneEmbeddings = EntityEmbeddings


def resolve_format(path: Path, format: str | None, *, reading: bool = False) -> str:
    """The format of ``path``: ``format`` if given (checked), else the suffix's, else parquet when it has none.

    A suffix that names another kind of file (``genes.csv``) is refused rather than filled with parquet bytes,
    unless ``format`` says what to write; when ``reading``, an unknown suffix is read as parquet.
    """
    if format is None:
        suffix = path.suffix.lower()
        if suffix and suffix not in _SUFFIXES and not reading and not _numeric_suffix(suffix):
            raise BioprofileInputError(
                f"{display_value(path.name)} has the suffix {display_value(suffix)}, not one of "
                f"{', '.join(sorted(_SUFFIXES))}: rename it with one of those suffixes, or set format",
                argument="format",
            )
        return _SUFFIXES.get(suffix, "parquet")
    if format not in FORMATS:
        raise BioprofileInputError(
            f"unknown format {display_value(format)}: choose one of {', '.join(FORMATS)}", argument="format"
        )
    return format


def _numeric_suffix(suffix: str) -> bool:
    # "genes.v2" or "run.2024": a version in the name, not a file type.
    return suffix[1:2].isdigit() or suffix[1:2] == "v" and suffix[2:].isdigit()


def _jsonable(provenance: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(provenance, default=str))


def _write_parquet(emb: EntityEmbeddings, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = pa.FixedSizeListArray.from_arrays(pa.array(emb.vectors.reshape(-1), type=pa.float32()), emb.dim)
    table = pa.table({"id": emb.ids, "symbol": emb.symbols, "text": emb.texts, "vector": vectors})
    meta = dict(table.schema.metadata or {})
    meta[_METADATA_KEY] = json.dumps(_jsonable(emb.provenance)).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def _read_parquet(path: Path) -> EntityEmbeddings:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size if hasattr(column.type, "list_size") else len(column[0])
    vectors = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    return EntityEmbeddings(
        ids=table.column("id").to_pylist(),
        symbols=table.column("symbol").to_pylist(),
        texts=table.column("text").to_pylist(),
        vectors=vectors,
        provenance=json.loads(meta.get(_METADATA_KEY, b"{}")),
    )


def _write_npz(emb: EntityEmbeddings, path: Path) -> None:
    with open(path, "wb") as fh:  # np.savez would append ".npz" to a temporary name
        np.savez(
            fh,
            ids=np.array(emb.ids),
            symbols=np.array(emb.symbols),
            texts=np.array(emb.texts),
            vectors=emb.vectors,
            provenance=np.array(json.dumps(_jsonable(emb.provenance))),
        )


def _read_npz(path: Path) -> EntityEmbeddings:
    with np.load(path, allow_pickle=False) as data:
        return EntityEmbeddings(
            ids=data["ids"].tolist(),
            symbols=data["symbols"].tolist(),
            texts=data["texts"].tolist(),
            vectors=data["vectors"],
            provenance=json.loads(str(data["provenance"])),
        )


def _write_h5ad(emb: EntityEmbeddings, path: Path) -> None:
    emb.to_anndata().write_h5ad(path)


def _read_h5ad(path: Path) -> EntityEmbeddings:
    import anndata as ad

    adata = ad.read_h5ad(path)
    return EntityEmbeddings(
        ids=adata.obs["id"].astype(str).tolist(),
        symbols=adata.obs_names.astype(str).tolist(),
        texts=adata.obs["text"].astype(str).tolist(),
        vectors=np.asarray(adata.X),
        provenance=dict(adata.uns.get("bioprofile", {})),
    )


def _write_pt(emb: EntityEmbeddings, path: Path) -> None:
    # STATE reads a plain {gene symbol: 1-D tensor} dict; provenance has no place in it.
    import torch

    torch.save({s: torch.from_numpy(v.copy()) for s, v in emb.to_dict().items()}, path)


def _read_pt(path: Path) -> EntityEmbeddings:
    import torch

    table = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(table, dict) or not table:
        raise BioprofileInputError(
            f"{path} is not a {{symbol: tensor}} dict as EntityEmbeddings.write writes in the pt format"
        )
    symbols = list(table)
    vectors = np.stack([table[s].float().numpy() for s in symbols])
    return EntityEmbeddings(ids=symbols, symbols=symbols, texts=[""] * len(symbols), vectors=vectors)


_WRITERS = {"parquet": _write_parquet, "npz": _write_npz, "h5ad": _write_h5ad, "pt": _write_pt}
_READERS = {"parquet": _read_parquet, "npz": _read_npz, "h5ad": _read_h5ad, "pt": _read_pt}
