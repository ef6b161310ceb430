import numpy as np
import pytest

from bioprofile.encoders import DEFAULT_ENCODER_ID, TransformersEncoder, get_encoder
from bioprofile.errors import BioprofileInputError


def test_bert_mean_pooling_matches_manual(tiny_bert_dir):
    import torch
    from transformers import AutoModel, AutoTokenizer

    enc = get_encoder(f"hf:{tiny_bert_dir}")
    texts = ["TP53 binds DNA.", "A much longer profile text about BRCA1 and homologous recombination."]
    vecs = enc.encode(texts)
    assert vecs.shape == (2, 32) and vecs.dtype == np.float32

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    with torch.no_grad():  # each text alone: padding in the batch must not change its vector
        for text, vec in zip(texts, vecs, strict=False):
            hidden = model(**tok(text, return_tensors="pt")).last_hidden_state[0]
            np.testing.assert_allclose(vec, hidden.mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_cls_pooling_differs_and_id_names_pooling(tiny_bert_dir):
    mean = get_encoder(f"hf:{tiny_bert_dir}")
    cls = get_encoder(f"hf-cls:{tiny_bert_dir}")
    assert mean.id != cls.id
    assert not np.allclose(mean.encode(["EGFR"]), cls.encode(["EGFR"]))


def test_bad_encoder_path(tmp_path):
    with pytest.raises(BioprofileInputError, match="cannot load encoder"):
        TransformersEncoder(tmp_path)


@pytest.mark.slow
def test_default_minilm_encoder():
    enc = get_encoder()
    assert enc.id == DEFAULT_ENCODER_ID and enc.dim == 384
    vecs = enc.encode(
        ["TP53 is a tumour suppressor that induces apoptosis.", "KRAS is a small GTPase.", "TP53 protein"]
    )
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)  # the model ends with Normalize
    # related texts are closer than unrelated ones
    assert vecs[0] @ vecs[2] > vecs[1] @ vecs[2]
