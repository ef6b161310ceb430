"""Teacher-forced confidence diagnostics: window classifier, taggers, scoring, weights view and the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bioprofile import diagnose as dx
from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_symbols, normalize_genes
from bioprofile.profiles.prompts import get_template

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A real RefSeq summary (BANF1, from GeneAgent's gene_narrative_synopsis.txt) and a sentence naming genes.
BANF1_SUMMARY = (
    "The protein encoded by this gene was first identified by its ability to protect retroviruses from "
    "intramolecular integration and therefore promote intermolecular integration into the host cell genome. "
    "Alternative splicing results in multiple transcript variants encoding the same protein."
)
GENE_SENTENCE = "TP53 activates CDKN1A and is degraded by MDM2; HLA-A and NKX2-1 too, but not p53, SET or IT."


# --- window classifier on hand-made confidences -------------------------------------------------------


def test_isolated_dip_in_confident_context_is_sparse_low():
    p = np.full(16, 0.9)
    p[5] = 0.01  # one surprising token, e.g. a gene symbol
    windows = dx.classify_windows(p, dx.WindowRule(window=16))
    assert windows["group"].tolist() == ["sparse-low"]
    assert windows.loc[0, "longest_low_run"] == 1
    assert windows.loc[0, "low_fraction"] == pytest.approx(1 / 16)


def test_long_run_of_doubt_is_dense_low():
    p = np.full(16, 0.9)
    p[4:12] = 0.05  # eight doubtful tokens in a row
    windows = dx.classify_windows(p, dx.WindowRule(window=16))
    assert windows["group"].tolist() == ["dense-low"]
    assert windows.loc[0, "longest_low_run"] == 8


def test_scattered_half_low_window_is_neither_and_flat_window_is_neither():
    alternating = np.tile([0.9, 0.1], 8)  # half low, but never two in a row
    assert dx.classify_windows(alternating, dx.WindowRule(window=16))["group"].tolist() == ["neither"]
    flat = np.full(16, 0.5)  # nothing below the median: no dip at all
    assert dx.classify_windows(flat, dx.WindowRule(window=16))["group"].tolist() == ["neither"]


def test_one_response_with_a_sparse_and_a_dense_window():
    p = np.full(32, 0.95)
    p[3] = 0.02
    p[18:26] = 0.03
    rule = dx.WindowRule(window=16, low_threshold=0.5)
    windows = dx.classify_windows(p, rule)
    assert list(zip(windows.start, windows.end, strict=False)) == [(0, 16), (16, 32)]
    assert windows["group"].tolist() == ["sparse-low", "dense-low"]
    assert windows.loc[0, "mean_p"] == pytest.approx((15 * 0.95 + 0.02) / 16)


def test_low_mask_quantile_and_absolute_threshold():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert dx.low_confidence_mask(p).tolist() == [True, True, False, False, False]  # below the median 0.3
    assert dx.low_confidence_mask(p, dx.WindowRule(low_quantile=0.9)).sum() == 4
    assert dx.low_confidence_mask(p, dx.WindowRule(low_threshold=0.25)).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_window_bounds_and_longest_run():
    assert dx.window_bounds(40, dx.WindowRule(window=16, stride=8)) == [(0, 16), (8, 24), (16, 32), (24, 40)]
    assert dx.window_bounds(40, dx.WindowRule(window=16)) == [(0, 16), (16, 32)]
    assert dx.window_bounds(10, dx.WindowRule(window=16)) == [(0, 10)]
    assert dx.window_bounds(0, dx.WindowRule()) == []
    assert dx.longest_run(np.array([1, 1, 0, 1, 1, 1, 0], dtype=bool)) == 3
    assert dx.longest_run(np.zeros(4, dtype=bool)) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"stride": 0},
        {"low_quantile": 1.0},
        {"low_threshold": 1.5},
        {"sparse_max_frac": 0.8, "dense_min_frac": 0.75},
        {"sparse_max_run": 6, "dense_min_run": 6},
    ],
)
def test_inconsistent_rules_are_input_errors(kwargs):
    with pytest.raises(BioprofileInputError):
        dx.WindowRule(**kwargs)


def test_summary_counts_and_rates():
    windows = pd.DataFrame(
        {
            "record": [0, 0, 1, 1],
            "start": [0, 16, 0, 16],
            "end": [16, 32, 16, 32],
            "low_fraction": [0.1, 0.9, 0.2, 0.5],
            "longest_low_run": [1, 12, 2, 3],
            "mean_p": [0.8, 0.2, 0.6, 0.5],
            "group": ["sparse-low", "dense-low", "sparse-low", "neither"],
            "has_entity": [True, False, False, True],
            "has_connective": [True, True, True, False],
        }
    )
    summary = dx.summarize_windows(windows).set_index("group")
    assert summary.loc["sparse-low", "windows"] == 2
    assert summary.loc["sparse-low", "frac_with_entity"] == pytest.approx(0.5)
    assert summary.loc["sparse-low", "frac_with_connective"] == pytest.approx(1.0)
    assert summary.loc["sparse-low", "mean_p"] == pytest.approx(0.7)
    assert summary.loc["dense-low", "frac_with_entity"] == 0.0
    assert summary.loc["neither", "windows"] == 1


# --- taggers on real text ---------------------------------------------------------------------------------


def test_gene_entities_are_case_sensitive_hgnc_symbols_without_english_words():
    words = [word for _, _, word in dx.gene_entity_spans(GENE_SENTENCE)]
    assert words == ["TP53", "CDKN1A", "MDM2", "HLA-A", "NKX2-1"]
    for start, end, word in dx.gene_entity_spans(GENE_SENTENCE):
        assert GENE_SENTENCE[start:end] == word
    assert dx.gene_entity_spans("the tp53 gene and a set of mice") == []


def test_connectives_in_a_refseq_summary():
    names = [name for _, _, name in dx.connective_spans(BANF1_SUMMARY)]
    assert names == ["therefore", "promotes", "results in"]
    assert dx.connective_spans("Activation of throughput inhibition") == []  # nouns and look-alikes
    text = "It is up-regulated via NF-kB and leads to apoptosis because of DNA damage."
    assert [name for _, _, name in dx.connective_spans(text)] == ["regulates", "via", "leads to", "because"]


def test_tokens_in_spans_uses_character_overlap():
    offsets = np.array([[0, 2], [2, 4], [4, 5], [5, 9], [9, 9]])
    assert dx.tokens_in_spans(offsets, [(3, 6, "x")]).tolist() == [False, True, True, True, False]


def test_entities_in_the_real_synopsis_file(shared_data):
    examples = dx.read_examples(
        shared_data / "geneagent" / "gene_narrative_synopsis.txt", refseq=True, limit=30
    )
    assert len(examples) == 30
    # the served prompt: the default template, filled from the HGNC record as embed-genes fills it
    (gene,) = normalize_genes(["ZMPSTE24"]).genes
    assert list(examples[0].prompt_messages) == get_template("concise").messages(gene)
    assert examples[0].prompt_messages[-1]["content"].startswith("Tell me about gene ZMPSTE24 (")
    found = [word for example in examples for _, _, word in dx.gene_entity_spans(example.response)]
    symbols = hgnc_symbols()
    assert found and all(word in symbols and word not in dx.ENGLISH_WORD_SYMBOLS for word in found)


# --- teacher-forced scoring on the tiny llama ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm(tiny_llama_dir):
    return dx.load_causal_lm(tiny_llama_dir)


def _examples():
    return [
        dx.PromptResponse(({"role": "user", "content": "Tell me about gene TP53."},), GENE_SENTENCE),
        dx.PromptResponse(({"role": "user", "content": "And BANF1?"},), BANF1_SUMMARY[:60]),
        dx.PromptResponse(({"role": "user", "content": "Short."},), "Yes."),
    ]


def test_confidences_match_a_direct_forward_pass_and_do_not_depend_on_batching(tiny_lm):
    model, tokenizer = tiny_lm
    examples = _examples()
    batched = dx.token_confidences(model, tokenizer, examples, batch_size=3)
    single = dx.token_confidences(model, tokenizer, examples, batch_size=1)
    for one, other, example in zip(batched, single, examples, strict=False):
        np.testing.assert_allclose(one.p, other.p, rtol=1e-5, atol=1e-7)
        assert "".join(one.tokens) == example.response  # every response byte is one token here
        assert np.all((one.p > 0) & (one.p <= 1))

    # the same numbers from the rendered chat, by hand
    text = tokenizer.apply_chat_template(
        list(examples[2].prompt_messages) + [{"role": "assistant", "content": "Yes."}], tokenize=False
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    first = len(tokenizer(text[: text.index("Yes.")], add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        log_p = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    expected = [log_p[t - 1, ids[t]].exp().item() for t in range(first, first + 4)]
    np.testing.assert_allclose(batched[2].p, expected, rtol=1e-5)


def test_a_peft_adapter_scores_as_its_merged_model(tiny_llama_dir, tmp_path):
    """An adapter folder without a tokenizer loads its base (and the base's tokenizer) from adapter_config.json."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    # init_lora_weights=False: LoRA B random rather than zero, so the adapter changes the scores
    lora = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), lora)
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    assert not (adapter_dir / "tokenizer.json").exists()

    model, tokenizer = dx.load_causal_lm(adapter_dir)
    (adapted,) = dx.token_confidences(model, tokenizer, _examples()[:1])
    merged_model, _ = dx.load_causal_lm(tiny_llama_dir)
    merged_model.load_state_dict(peft_model.merge_and_unload().state_dict())
    (merged,) = dx.token_confidences(merged_model, tokenizer, _examples()[:1])
    (plain,) = dx.token_confidences(*dx.load_causal_lm(tiny_llama_dir), _examples()[:1])
    np.testing.assert_allclose(adapted.p, merged.p, rtol=1e-5, atol=1e-7)
    assert not np.allclose(adapted.p, plain.p)


def test_a_template_that_trims_content_scores_the_trimmed_response(tiny_lm):
    from helpers import CHATML_TEMPLATE, build_tiny_tokenizer

    model, _ = tiny_lm
    trimming = build_tiny_tokenizer()
    trimming.chat_template = CHATML_TEMPLATE.replace("message['content']", "(message['content'] | trim)")
    example = dx.PromptResponse(({"role": "user", "content": "Hi"},), "  Yes, TP53.\n")
    (scored,) = dx.token_confidences(model, trimming, [example])
    assert scored.response == "Yes, TP53." and "".join(scored.tokens) == "Yes, TP53."


def test_max_length_cuts_the_response(tiny_lm):
    model, tokenizer = tiny_lm
    example = _examples()[0]
    full = dx.token_confidences(model, tokenizer, [example])[0]
    prompt = tokenizer.apply_chat_template(
        list(example.prompt_messages), tokenize=False, add_generation_prompt=True
    )
    prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    cut = dx.token_confidences(model, tokenizer, [example], max_length=prompt_tokens + 10)[0]
    assert cut.p.size == 10
    np.testing.assert_allclose(cut.p, full.p[:10], rtol=1e-5)
    with pytest.raises(BioprofileInputError):
        dx.token_confidences(model, tokenizer, [example], max_length=prompt_tokens - 1)


def test_diagnose_tags_tokens_and_counts_every_window(tiny_lm):
    model, tokenizer = tiny_lm
    rule = dx.WindowRule(window=8)
    result = dx.diagnose(model, tokenizer, _examples(), rule=rule)
    first = result.responses[0]
    assert (
        "".join(t for t, e in zip(first.tokens, first.entity, strict=False) if e)
        == "TP53CDKN1AMDM2HLA-ANKX2-1"
    )
    assert "".join(t for t, c in zip(first.tokens, first.connective, strict=False) if c) == "activates"
    expected_windows = sum(len(dx.window_bounds(r.p.size, rule)) for r in result.responses)
    assert len(result.windows) == expected_windows
    assert result.summary["windows"].sum() == expected_windows
    # a window holds an entity exactly when one of its tokens is tagged
    row = result.windows.iloc[0]
    assert row["has_entity"] == bool(first.entity[row["start"] : row["end"]].any())


def test_token_weight_table_matches_the_loss_definitions(tiny_lm):
    model, tokenizer = tiny_lm
    (scored,) = dx.token_confidences(model, tokenizer, _examples()[:1])
    table = dx.token_weight_table(dx.tag_response(scored), window=5)
    assert list(table.columns[:6]) == ["position", "token", "p", "cbar", "entity", "connective"]
    np.testing.assert_allclose(table["sft"], 1.0)
    np.testing.assert_allclose(table["dft"], table["p"], rtol=1e-6)
    beta = table.attrs["sample_weight"]
    # BFT: p_t / cbar_t times 2 - min cbar; cbar is the mean p over the 5 positions centred on t
    p = table["p"].to_numpy()
    cbar = np.array([p[max(t - 2, 0) : t + 3].mean() for t in range(p.size)])
    np.testing.assert_allclose(table["cbar"], cbar, rtol=1e-6)
    assert beta["bft"] == pytest.approx(2 - cbar.min())
    np.testing.assert_allclose(table["bft"], p / cbar * (2 - cbar.min()), rtol=1e-5)
    np.testing.assert_allclose(table["bft-v1"], p * beta["bft-v1"], rtol=1e-6)


# --- a real spaCy NER pipeline ------------------------------------------------------------------------------

LAMIN_SENTENCE = "Mutations in lamin A cause progeria, and p53 rises; TP53 is the gene."


@pytest.fixture(scope="module")
def ruler_pipeline(tmp_path_factory):
    """A real spaCy pipeline on disk: a blank English tokenizer plus an entity ruler for two protein names."""
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "PROTEIN", "pattern": "lamin A"},
            {"label": "PROTEIN", "pattern": "p53"},
            {"label": "CELL_TYPE", "pattern": "fibroblasts"},  # not a gene label: must not be tagged
        ]
    )
    path = tmp_path_factory.mktemp("ner") / "ruler"
    nlp.to_disk(path)
    return path


def test_ner_pipeline_adds_protein_names_the_lexicon_misses(ruler_pipeline):
    lexicon = [word for _, _, word in dx.gene_entity_spans(LAMIN_SENTENCE)]
    assert "lamin A" not in lexicon and "p53" not in lexicon  # neither is an HGNC symbol
    spans = dx.gene_entity_spans(LAMIN_SENTENCE + " In fibroblasts too.", ner_model=str(ruler_pipeline))
    assert [word for _, _, word in spans] == ["lamin A", "p53", "TP53"]
    for start, end, word in spans:
        assert LAMIN_SENTENCE[start:end] == word
    # a str and a Path name the same cached pipeline
    assert dx.load_ner_pipeline(ruler_pipeline) is dx.load_ner_pipeline(str(ruler_pipeline))


def test_diagnose_with_a_ner_model_tags_lamin_a_tokens(tiny_lm, ruler_pipeline):
    model, tokenizer = tiny_lm
    examples = [dx.PromptResponse(({"role": "user", "content": "Tell me about LMNA."},), LAMIN_SENTENCE)]
    plain = dx.diagnose(model, tokenizer, examples, rule=dx.WindowRule(window=8)).responses[0]
    tagged = dx.diagnose(
        model, tokenizer, examples, rule=dx.WindowRule(window=8), ner_model=str(ruler_pipeline)
    ).responses[0]
    assert "".join(t for t, e in zip(plain.tokens, plain.entity, strict=False) if e) == "TP53"
    assert "".join(t for t, e in zip(tagged.tokens, tagged.entity, strict=False) if e) == "lamin Ap53TP53"
    np.testing.assert_array_equal(plain.p, tagged.p)  # the pipeline changes tags, never confidences
    (scored,) = dx.token_confidences(model, tokenizer, examples)
    table = dx.token_weight_table(dx.tag_response(scored, ner_model=ruler_pipeline))
    assert "".join(table["token"][table["entity"]]) == "lamin Ap53TP53"


def test_a_bad_ner_model_is_a_clear_input_error(tmp_path, ruler_pipeline):
    import spacy

    with pytest.raises(BioprofileInputError, match="cannot load spaCy pipeline .*nlp.to_disk"):
        dx.gene_entity_spans("TP53", ner_model=str(tmp_path / "no_such_pipeline"))
    with pytest.raises(BioprofileInputError, match="cannot load spaCy pipeline 'en_no_such_model'"):
        dx.load_ner_pipeline("en_no_such_model")
    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)  # loads, but could never tag a gene
    with pytest.raises(BioprofileInputError, match="predicts none of the gene/protein labels"):
        dx.load_ner_pipeline(blank)


def test_a_ner_model_without_spacy_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spacy", None)  # makes `import spacy` raise ImportError
    with pytest.raises(BioprofileInputError, match=r"needs spaCy: pip install 'bioprofile\[ner\]'"):
        dx.load_ner_pipeline("somewhere/not/cached/yet")


# --- the CLI ----------------------------------------------------------------------------------------------


def _write_jsonl(path, examples):
    with path.open("w") as handle:
        for example in examples:
            handle.write(
                json.dumps(
                    {"instruction": example.prompt_messages[0]["content"], "response": example.response}
                )
            )
            handle.write("\n")
    return path


def test_cli_writes_group_table_and_plots(tmp_path, tiny_llama_dir):
    data = _write_jsonl(tmp_path / "set.jsonl", _examples())
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["diagnose", "windows", str(data), "--model", str(tiny_llama_dir), "-o", str(out), "--window", "8"],
    )
    assert result.exit_code == 0, result.output
    assert "sparse-low" in result.stdout and "dense-low" in result.stdout
    summary = pd.read_csv(out / "diagnose_groups.csv")
    assert summary["group"].tolist() == list(dx.GROUPS)
    windows = pd.read_csv(out / "diagnose_windows.csv")
    assert summary["windows"].sum() == len(windows) > 0
    payload = json.loads((out / "diagnose_groups.json").read_text())
    assert payload["responses"] == 3 and payload["rule"]["window"] == 8
    assert (out / "diagnose_groups.png").read_bytes()[:8] == PNG_MAGIC

    result = CliRunner().invoke(
        app,
        ["diagnose", "weights", str(data), "--model", str(tiny_llama_dir), "-o", str(out), "--index", "1"],
    )
    assert result.exit_code == 0, result.output
    weights = pd.read_csv(out / "weights_1.csv", keep_default_na=False)
    assert "".join(weights["token"]) == BANF1_SUMMARY[:60]
    assert {"sft", "dft", "bft", "bft-v1"} <= set(weights.columns)
    assert (out / "weights_1.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_ner_model_tags_entities_and_rejects_a_bad_pipeline(tmp_path, tiny_llama_dir, ruler_pipeline):
    examples = [dx.PromptResponse(({"role": "user", "content": "LMNA?"},), LAMIN_SENTENCE)]
    data = _write_jsonl(tmp_path / "set.jsonl", examples)
    out = tmp_path / "out"
    common = [str(data), "--model", str(tiny_llama_dir), "-o", str(out)]
    result = CliRunner().invoke(app, ["diagnose", "weights", *common, "--ner-model", str(ruler_pipeline)])
    assert result.exit_code == 0, result.output
    weights = pd.read_csv(out / "weights_0.csv", keep_default_na=False)
    assert "".join(weights["token"][weights["entity"]]) == "lamin Ap53TP53"
    result = CliRunner().invoke(
        app, ["diagnose", "windows", *common, "--window", "8", "--ner-model", str(ruler_pipeline)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out / "diagnose_windows.csv")["has_entity"].sum() >= 2

    for command in ("windows", "weights"):
        result = CliRunner().invoke(
            app, ["diagnose", command, *common, "--ner-model", str(tmp_path / "missing")]
        )
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot load spaCy pipeline" in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["windows", "missing.jsonl"], "does not exist"),
        (["weights", "missing.jsonl"], "does not exist"),
        (["windows", "set.jsonl", "--model", "nowhere/at/all/"], "does not exist"),
        (["weights", "set.jsonl", "--index", "7"], "--index 7"),
        (["windows", "set.jsonl", "--sparse-max-run", "9"], "sparse max run (9) < dense min run (6)"),
        (["windows", "set.jsonl", "--low-quantile", "1.5"], "low quantile must lie in (0, 1)"),
        (["windows", "bad.jsonl"], "not valid JSON"),
        (["windows", "set.jsonl", "-o", "set.jsonl"], "output"),
        (["weights", "set.jsonl", "-o", "set.jsonl/sub"], "is a file, not a folder"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, tiny_llama_dir, args, needle):
    _write_jsonl(tmp_path / "set.jsonl", _examples())
    (tmp_path / "bad.jsonl").write_text('{"instruction": "x", "response": "y"}\n{oops\n')
    command, data, *rest = args
    if "-o" in rest:  # an output path inside tmp_path, and no default one after it
        rest[rest.index("-o") + 1] = str(tmp_path / rest[rest.index("-o") + 1])
    else:
        rest += ["-o", str(tmp_path / "out")]
    if "--model" not in rest:
        rest += ["--model", str(tiny_llama_dir)]
    result = CliRunner().invoke(app, ["diagnose", command, str(tmp_path / data), *rest])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    # argument names as words, however the boundary spells them (sparse_max_run, --sparse-max-run)
    words = " ".join(re.sub(r"(?<![\w-])--(?=\w)|(?<=\w)[-_](?=\w)", " ", lines[0]).split()).lower()
    assert needle in lines[0] or needle.lower() in words, lines[0]


def test_cli_errors_name_the_flags(tmp_path):
    _write_jsonl(tmp_path / "set.jsonl", _examples())
    (tmp_path / "taken").write_text("x")
    data = str(tmp_path / "set.jsonl")
    result = CliRunner().invoke(app, ["diagnose", "windows", data, "--sparse-max-run", "9"])
    assert "need --sparse-max-run (9) < --dense-min-run (6)" in result.stderr, result.stderr
    result = CliRunner().invoke(app, ["diagnose", "weights", data, "-o", str(tmp_path / "taken")])
    assert "--output " in result.stderr, result.stderr


def test_a_bad_output_fails_before_the_model_loads(tmp_path):
    _write_jsonl(tmp_path / "set.jsonl", _examples())
    (tmp_path / "taken").write_text("a file where the output folder would go")
    # a model that does not exist: had the output check come after loading, this would be the error
    args = [str(tmp_path / "set.jsonl"), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "taken")]
    for command in ("windows", "weights"):
        result = CliRunner().invoke(app, ["diagnose", command, *args])
        assert result.exit_code == 2 and "is a file, not a folder" in result.stderr, result.stderr
        assert "does not exist" not in result.stderr  # what the missing model would have said


@pytest.mark.parametrize(
    ("command", "option"),
    [("weights", ["--window", "8"]), ("weights", ["--sparse-max-run", "1"]), ("windows", ["--index", "1"]),
     ("windows", ["--loss-window", "5"]), ("weights", ["--batch-size", "2"])],
)  # fmt: skip
def test_each_diagnose_command_takes_only_its_own_options(tmp_path, command, option):
    _write_jsonl(tmp_path / "set.jsonl", _examples())
    result = CliRunner().invoke(app, ["diagnose", command, str(tmp_path / "set.jsonl"), *option])
    assert result.exit_code == 2 and "No such option" in result.output, result.output


def test_library_errors_name_python_arguments_not_flags():
    with pytest.raises(
        BioprofileInputError, match=r"need sparse_max_run \(9\) < dense_min_run \(6\)"
    ) as info:
        dx.WindowRule(sparse_max_run=9)
    assert "--" not in str(info.value)
    with pytest.raises(BioprofileInputError, match="window must be at least 1") as info:
        dx.WindowRule(window=0)
    assert info.value.argument == "window"
    with pytest.raises(BioprofileInputError, match="limit must be at least 1") as info:
        dx.read_examples("unused.jsonl", limit=0)
    assert info.value.argument == "limit"


def test_output_dir_check_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b"
    assert dx.check_output_dir(target) == target and not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(BioprofileInputError, match="not a folder") as info:
            dx.check_output_dir(bad)
        assert info.value.argument == "output"


def test_tagging_imports_no_model_library():
    """The taggers are pure text functions: importing them (and the package) loads no torch or model code."""
    import subprocess
    import sys

    code = (
        "import sys; from bioprofile.diagnose.tagging import gene_entity_spans, connective_spans, token_tags; "
        "import bioprofile.diagnose; "
        "heavy = {'torch', 'transformers', 'spacy', 'matplotlib'} & set(sys.modules); "
        "assert not heavy, heavy; "
        # the lexicon alone (an empty NER pass) imports nothing heavy either; the default NER may import spaCy
        "assert gene_entity_spans('TP53 binds MDM2', ner_model=None) and connective_spans('it causes'); "
        "assert 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_token_tags_on_offsets():
    text = "TP53 activates MDM2."
    offsets = np.array([[0, 4], [4, 5], [5, 14], [14, 15], [15, 19], [19, 20]])
    entity, connective = dx.token_tags(text, offsets)
    assert entity.tolist() == [True, False, False, False, True, False]
    assert connective.tolist() == [False, False, True, False, False, False]


def test_plots_draw_and_save_when_given_a_path(tmp_path):
    from matplotlib.figure import Figure

    from bioprofile import pl

    summary = dx.summarize_windows(
        pd.DataFrame({"group": ["sparse-low", "neither"], "has_entity": [True, False],
                      "has_connective": [False, True], "mean_p": [0.5, 0.4], "low_fraction": [0.1, 0.5]})
    )  # fmt: skip
    assert isinstance(pl.plot_group_summary(summary, show=False, return_fig=True), Figure)
    pl.plot_group_summary(summary, tmp_path / "groups.png")
    assert (tmp_path / "groups.png").read_bytes()[:8] == PNG_MAGIC
    table = pd.DataFrame({"position": [0, 1], "token": ["a", "b"], "p": [0.2, 0.9], "entity": [True, False],
                          "connective": [False, False], "sft": [1.0, 1.0], "dft": [0.2, 0.9]})  # fmt: skip
    figure = pl.plot_token_weights(table, tmp_path / "weights.png", show=False, return_fig=True)
    assert isinstance(figure, Figure) and (tmp_path / "weights.png").read_bytes()[:8] == PNG_MAGIC


# --- the real default generator ------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_on_refseq_summaries(shared_data):
    from bioprofile.profiles.models import default_generator_path

    model, tokenizer = dx.load_causal_lm(default_generator_path())
    examples = dx.read_examples(
        shared_data / "geneagent" / "gene_narrative_synopsis.txt", refseq=True, limit=20
    )
    result = dx.diagnose(model, tokenizer, examples, batch_size=4)

    assert len(result.responses) == 20
    for response, example in zip(result.responses, examples, strict=False):
        assert "".join(response.tokens) == example.response  # offsets cover the response exactly
        assert np.all((response.p > 0) & (response.p <= 1))
    all_p = np.concatenate([r.p for r in result.responses])
    # SmolLM2 gives RefSeq text a mean p of about 0.3; scoring each token with the wrong position's logits
    # (an off-by-one) gives p near 1/vocab
    assert np.mean(all_p) > 0.15 and np.median(all_p) > 0.05, (np.mean(all_p), np.median(all_p))
    assert result.summary["windows"].sum() == len(result.windows)
    assert result.windows["has_entity"].any() and result.windows["has_connective"].any()
    # right padding must not change a response's confidences
    alone = dx.token_confidences(model, tokenizer, examples[:1])[0]
    np.testing.assert_allclose(alone.p, result.responses[0].p, rtol=1e-3, atol=1e-5)
