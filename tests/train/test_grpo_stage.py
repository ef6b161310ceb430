"""The grpo training stage: rewards from the DE answer rule, a LoRA adapter trained further (its weights move), the
per-step log and its plot, a run with no gradient reported, and bad configs as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import REPO
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.vllm import vllm_available
from bioprofile.train.grpo_data import DEQuestion, read_de_questions
from bioprofile.train.grpo_log import GRPO_LOG_CSV, GRPO_LOG_JSON, GRPOLog
from bioprofile.train.rewards import (
    MALFORMED_RATE,
    REWARDS,
    answer_format_reward,
    answer_reward,
    register_reward,
)
from bioprofile.train.stages import train_from_config

QUESTIONS = (
    "pert,cell_line,gene,label,split\n"
    "Trametinib,HOP62,DUSP6,yes,train\n"
    "Trametinib,HOP62,ACTB,no,train\n"
    "Bortezomib,PANC-1,HSPA1A,1,train\n"
    "Bortezomib,PANC-1,GAPDH,0,train\n"
    "Imatinib,C32,MYC,yes,test\n"
)

# A tiny and fast run: 2 steps of 1 question x 2 replies of at most 6 tokens, on CPU.
TINY_RUN = {
    "stage": "grpo",
    "use_cpu": True,
    "max_steps": 2,
    "num_generations": 2,
    "per_device_train_batch_size": 2,
    "max_completion_length": 6,
    "learning_rate": 0.01,
    "seed": 0,
}


@pytest.fixture
def questions_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.csv"
    path.write_text(QUESTIONS)
    return path


@pytest.fixture(scope="module")
def tiny_adapter_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    """A LoRA adapter saved on the tiny Llama (its B matrices nudged off zero, as a trained adapter's are)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    peft_model = get_peft_model(
        model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    path = tmp_path_factory.mktemp("tiny-adapter")
    peft_model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(path)
    return path


def _adapter_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def _config(tmp_path: Path, **values) -> Path:
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump({**TINY_RUN, **values}))
    return path


def test_answer_reward_scores_the_parsed_answer_against_the_label_and_logs_malformed():
    logged = {}
    completions = [
        "It inhibits MEK.\nAnswer: yes",
        [{"role": "assistant", "content": "<answer>no</answer>"}],
        "Answer: no",
        "I am not sure.",
    ]
    rewards = answer_reward(completions, label=[True, True, False, False], log_metric=logged.__setitem__)
    assert rewards == [1.0, 0.0, 1.0, 0.0]
    assert logged == {MALFORMED_RATE: 0.25}
    assert answer_format_reward(completions) == [1.0, 1.0, 1.0, 0.0]


def test_question_files_are_read_with_their_split_and_checked(tmp_path, questions_file):
    questions = read_de_questions(questions_file, split="train")
    assert [(q.gene, q.label) for q in questions] == [
        ("DUSP6", True),
        ("ACTB", False),
        ("HSPA1A", True),
        ("GAPDH", False),
    ]
    assert len(read_de_questions(questions_file)) == 5
    (tmp_path / "HOP62_DE.csv").write_text("pert,gene,label,split\nA,B,1,train\n")  # VCWorld's layout
    assert read_de_questions(tmp_path / "HOP62_DE.csv") == [DEQuestion("A", "HOP62", "B", True, "train")]
    (tmp_path / "nolabel.csv").write_text("pert,cell_line,gene\nA,C,B\n")
    with pytest.raises(BioprofileInputError, match="lacks the column.*label"):
        read_de_questions(tmp_path / "nolabel.csv")
    (tmp_path / "badlabel.csv").write_text("pert,cell_line,gene,label\nA,C,B,maybe\n")
    with pytest.raises(BioprofileInputError, match="record 1: label 'maybe' is not yes/no"):
        read_de_questions(tmp_path / "badlabel.csv")


def test_grpo_trains_a_saved_adapter_and_logs_each_step(tmp_path, questions_file, tiny_adapter_dir):
    # The answer reward gives a random model 0 everywhere; a reward that differs within every group (TRL puts a
    # question's replies side by side) makes a gradient.
    def alternating(completions, **columns):
        return [float(i % 2) for i in range(len(completions))]

    register_reward("test_alternating", alternating, replace=True)
    try:
        config = _config(
            tmp_path,
            model=str(tiny_adapter_dir),
            train_file=str(questions_file),
            output_dir=str(tmp_path / "out"),
            rewards=["answer", "test_alternating"],
            beta=0.05,
            merge_adapter=False,
        )
        out = train_from_config(config, progress=False)
    finally:
        REWARDS.unregister("test_alternating")

    before, after = _adapter_weights(tiny_adapter_dir), _adapter_weights(out)
    assert before.keys() == after.keys()  # the trained adapter alone, not TRL's frozen "ref" copy
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_A" in k)

    log = GRPOLog.read(out)
    assert [row["step"] for row in log.steps] == [1.0, 2.0]
    for row in log.steps:
        assert row["reward"] is not None and row["malformed_rate"] == 1.0 and row["kl"] is not None
        assert row["frac_reward_zero_std"] == 0.0 and row["reward"] == 0.5  # answer 0, alternating 0 or 1
    assert (out / GRPO_LOG_CSV).read_text().splitlines()[0].startswith("step,reward,")
    record = json.loads((out / "bioprofile_train.json").read_text())
    assert (
        record["stage"] == "grpo" and record["started_from"] == "adapter" and record["saved_as"] == "adapter"
    )
    assert record["question_template"] == "de-reasoning" and record["n_train"] == 4  # the test split left out
    assert record["metrics"]["made_progress"] is True and record["no_progress"] is None


def test_a_run_whose_groups_are_all_equal_says_it_made_no_progress(tmp_path, questions_file, tiny_llama_dir):
    """From a full model (LoRA attached), through `bioprofile train`: a random model never answers, so every
    group's rewards are 0: a warning line, the record, the log and the reward plot say so."""
    config = _config(
        tmp_path,
        model=str(tiny_llama_dir),
        train_file=str(questions_file),
        output_dir=str(tmp_path / "out"),
        lora={"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]},
    )
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 0, result.output
    assert "warning: GRPO made no progress: in all 2 logged step(s)" in result.stderr
    out = tmp_path / "out"
    assert f"wrote {out / 'grpo_rewards.png'}" in result.stdout and (out / "grpo_rewards.png").stat().st_size
    record = json.loads((out / "bioprofile_train.json").read_text())
    assert record["metrics"]["made_progress"] is False and record["no_progress"].startswith("GRPO made no")
    assert (
        record["saved_as"] == "merged"
        and record["started_from"] == "model"
        and (out / "config.json").is_file()
    )
    steps = json.loads((out / GRPO_LOG_JSON).read_text())["steps"]
    assert [s["frac_reward_zero_std"] for s in steps] == [1.0, 1.0]
    assert [s["reward"] for s in steps] == [0.0, 0.0] and [s["kl"] for s in steps] == [None, None]  # beta 0

    import matplotlib.pyplot as plt

    from bioprofile import pl

    fig, given = plt.subplots(1, 2)
    axes = pl.grpo_rewards({"tiny": out}, ax=given, show=False)
    assert list(axes) == list(given) and "no progress: tiny" in axes[0].get_title()
    plt.close(fig)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_generations": 1}, "at least 2 generations"),
        ({"rewards": ["nonsense"]}, "unknown reward 'nonsense'"),
        ({"template": "concise"}, "'concise'"),
        ({"loss_method": "bft"}, "unknown config key 'loss_method'"),
        ({"train_file": None}, "give train_file"),
        ({"model_init_kwargs": {"dtype": "float16"}}, "not used by the grpo stage"),
        pytest.param(
            {"use_vllm": True},
            "use_vllm: true needs vLLM",
            marks=pytest.mark.skipif(vllm_available(), reason="vLLM is installed here: nothing to refuse"),
        ),
    ],
)
def test_bad_grpo_configs_are_one_line_and_exit_2(tmp_path, questions_file, values, message):
    given = {"train_file": str(questions_file), "output_dir": str(tmp_path / "out"), **values}
    config = _config(tmp_path, **given)
    result = CliRunner().invoke(app, ["train", str(config), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_the_example_config_is_a_valid_grpo_config():
    from bioprofile.train.config import read_config_file
    from bioprofile.train.grpo import GRPOStageConfig
    from bioprofile.train.stages import get_stage

    values = read_config_file(REPO / "bioprofile" / "configs" / "grpo_de_reasoning.yaml")
    stage = get_stage(values.pop("stage"))
    config = stage.from_dict(values, use_cpu=True)
    assert (
        isinstance(config, GRPOStageConfig) and config.rewards == ["answer"] and config.num_generations == 8
    )
    assert stage.from_dict(config.to_config_dict()).to_config_dict() == config.to_config_dict()


def test_bad_question_records_stop_before_the_model_loads(tmp_path, tiny_adapter_dir):
    bad = tmp_path / "q.csv"
    bad.write_text("pert,cell_line,gene,label\nA,C,B,perhaps\n")
    config = _config(
        tmp_path, model=str(tiny_adapter_dir), train_file=str(bad), output_dir=str(tmp_path / "out")
    )
    result = CliRunner().invoke(app, ["train", str(config), "--quiet"])
    assert result.exit_code == 2 and "label 'perhaps'" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("n_runs", "below"), [(2, False), (5, True)])
def test_the_reward_plot_moves_its_legend_under_the_panels_past_three_runs(n_runs, below):
    import matplotlib.pyplot as plt

    from bioprofile import pl

    history = [{"step": s, "reward": s / 4, "frac_reward_zero_std": 0.5} for s in (1, 2, 3)]
    runs = {f"run {i}": GRPOLog.from_log_history(history, num_generations=4) for i in range(n_runs)}
    fig = pl.grpo_rewards(runs, show=False, return_fig=True)
    fig.canvas.draw()
    for axes in fig.axes:
        legend = axes.get_legend().get_window_extent()
        assert bool(legend.y1 <= axes.get_window_extent().y0) is below  # under the panel, or inside it
    plt.close(fig)
