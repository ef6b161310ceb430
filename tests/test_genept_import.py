"""GenePT pickle import: real pickles of dicts and numpy arrays load; a hostile pickle is refused unrun."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.genept import import_genept, read_genept_pickle
from bioprofile.safe_pickle import safe_load_pickle


class _RunsCodeOnLoad:
    """Pickles to a call of os.system: the classic hostile pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_list_and_numpy_values_load_as_float32(tmp_path):
    rng = np.random.default_rng(0)
    table = {
        "TP53": list(rng.normal(size=8)),
        "GAPDH": rng.normal(size=8),
        "BRCA1": rng.normal(size=8).astype(np.float32),
    }
    path = tmp_path / "genept.pickle"
    path.write_bytes(pickle.dumps(table, protocol=4))
    out = read_genept_pickle(path)
    assert list(out) == ["TP53", "GAPDH", "BRCA1"]
    assert all(v.dtype == np.float32 and v.shape == (8,) for v in out.values())
    np.testing.assert_allclose(out["GAPDH"], table["GAPDH"].astype(np.float32))


def test_numpy_scalars_and_protocol_2(tmp_path):
    table = {"TP53": [np.float64(0.5), np.float64(1.5)]}
    path = tmp_path / "p2.pickle"
    path.write_bytes(pickle.dumps(table, protocol=2))
    np.testing.assert_allclose(read_genept_pickle(path)["TP53"], [0.5, 1.5])


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pickle"
    path.write_bytes(pickle.dumps({"TP53": _RunsCodeOnLoad(marker)}))
    with pytest.raises(BioprofileInputError, match="refusing to load .*system"):
        read_genept_pickle(path)
    assert not marker.exists()
    # The same bytes do run code under plain pickle: the test file really is hostile.
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_other_classes_refused(tmp_path):
    import collections

    path = tmp_path / "od.pickle"
    path.write_bytes(pickle.dumps(collections.OrderedDict(TP53=[1.0])))
    with pytest.raises(BioprofileInputError, match="collections.OrderedDict"):
        safe_load_pickle(path)


def test_persistent_ids_refused(tmp_path):
    import io

    class _WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "TP53" else None

    buffer = io.BytesIO()
    _WithPersistentId(buffer).dump({"TP53": [1.0]})
    path = tmp_path / "pid.pickle"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(BioprofileInputError, match="persistent ids"):
        safe_load_pickle(path)


def test_ragged_or_non_dict_rejected(tmp_path):
    path = tmp_path / "ragged.pickle"
    path.write_bytes(pickle.dumps({"TP53": [1.0, 2.0], "GAPDH": [1.0]}))
    with pytest.raises(BioprofileInputError, match="shape"):
        read_genept_pickle(path)
    path.write_bytes(pickle.dumps([1.0, 2.0]))
    with pytest.raises(BioprofileInputError, match="dict"):
        read_genept_pickle(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(BioprofileInputError, match="not a readable pickle"):
        read_genept_pickle(path)


def test_import_normalises_symbols_and_keeps_unknown(tmp_path):
    table = {"p53": [1.0, 0.0], "GAPDH": [0.0, 1.0], "NOT_A_GENE_XYZ": [1.0, 1.0], "TP53": [9.0, 9.0]}
    path = tmp_path / "g.pickle"
    path.write_bytes(pickle.dumps(table))
    emb = import_genept(path)
    assert emb.symbols == ["TP53", "GAPDH", "NOT_A_GENE_XYZ"]  # alias p53 resolved; duplicate TP53 dropped
    assert emb.ids[0] == "HGNC:11998" and emb.ids[2] == "NOT_A_GENE_XYZ"
    np.testing.assert_allclose(emb.vectors[0], [1.0, 0.0])
