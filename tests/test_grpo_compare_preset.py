"""``benchmarks/grpo_compare.py --preset h100``: the GPU run's sizes, which no CPU test can run.

The preset cannot be run here (it is sized for an H100), so what is checked is what it resolves to: its values,
options given beside it winning, the same comparison's data built at its sizes (five cell lines, 200 questions per
held-out set), and ``--grpo-vllm`` refused where vLLM is not installed.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import REPO, SHARED_DATA

from bioprofile.profiles.vllm import vllm_available


@pytest.fixture(scope="module")
def grpo_compare():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("grpo_compare", REPO / "benchmarks" / "grpo_compare.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_the_h100_preset_sets_the_comparison_sizes_and_given_options_win(grpo_compare):
    plain = grpo_compare.parse_args([])
    preset = grpo_compare.parse_args(["--preset", "h100"])
    assert preset.starts == ["base", "sft", "dft", "bft"] and preset.seeds == [0, 1]
    assert preset.cell_lines[-1] == "PANC-1" and len(preset.cell_lines) == 5
    assert (preset.eval_questions, preset.template, preset.prompts_per_step) == (200, "de-direct", 4)
    assert (preset.warmup_max_length, plain.warmup_max_length) == (512, 256)
    assert (plain.eval_questions, plain.template, plain.prompts_per_step) == (24, "de-reasoning", 1)
    overridden = grpo_compare.parse_args(["--preset", "h100", "--grpo-steps", "5", "--seeds", "3"])
    assert (overridden.grpo_steps, overridden.seeds, overridden.drugs) == (5, [3], preset.drugs)


@pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"reads the real GO gene sets: not found at {SHARED_DATA}"
)
def test_the_h100_preset_builds_its_questions(grpo_compare, tmp_path):
    args = grpo_compare.parse_args(["--preset", "h100", "--work-dir", str(tmp_path)])
    train_file, sets, data = grpo_compare.make_questions(args)
    assert data["held_out_cell_line"] == "PANC-1" and train_file.is_file()
    assert data["eval_sizes"] == {"held-out line (PANC-1)": 200, "held-out drugs": 200}
    # each GRPO step takes prompts_per_step questions: the preset's steps stay within one pass of the file
    assert args.grpo_steps * args.prompts_per_step <= data["n_train_questions"]
    assert all(0 < share < 1 for share in grpo_compare.majority(sets).values())


@pytest.mark.skipif(vllm_available(), reason="vLLM is installed here: nothing to refuse")
def test_grpo_vllm_is_refused_without_vllm(grpo_compare, capsys):
    with pytest.raises(SystemExit) as stop:
        grpo_compare.parse_args(["--grpo-vllm"])
    assert stop.value.code == 2
    assert "--grpo-vllm needs vLLM" in capsys.readouterr().err
