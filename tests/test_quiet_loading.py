"""Loading a writer or an encoder from Python draws no "Loading weights" bar, and leaves the caller's setting."""

from __future__ import annotations

import warnings

import pytest
from transformers.utils import logging as transformers_logging

from bioprofile.progress import quiet_model_loading


@pytest.fixture()
def bars_on():
    """transformers' bars on, as in a fresh notebook; the suite's setting back afterwards."""
    was_on = transformers_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Hub's word when HF_HUB_DISABLE_PROGRESS_BARS is set
        transformers_logging.enable_progress_bar()
    yield
    (transformers_logging.enable_progress_bar if was_on else transformers_logging.disable_progress_bar)()


def test_a_plain_load_draws_the_bar_this_test_looks_for(bars_on, tiny_llama_dir, capfd):
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert "Loading weights" in capfd.readouterr().err


def test_loading_through_bioprofile_is_quiet_and_restores_the_setting(
    bars_on, tiny_llama_dir, tiny_bert_dir, capfd
):
    from bioprofile.encoders.hf import TransformersEncoder
    from bioprofile.profiles.hf import TransformersGenerator

    TransformersGenerator(tiny_llama_dir, device="cpu").load()
    TransformersEncoder(tiny_bert_dir, device="cpu")
    err = capfd.readouterr().err
    assert "Loading" not in err and "it/s" not in err, err
    assert transformers_logging.is_progress_bar_enabled()  # the caller's setting is back


def test_an_off_setting_stays_off(bars_on):
    transformers_logging.disable_progress_bar()
    with quiet_model_loading():
        pass
    assert not transformers_logging.is_progress_bar_enabled()


def test_training_loads_are_quiet_too(bars_on, tiny_llama_dir, tmp_path, capfd):
    """The merge at the end of a LoRA run reloads the base model: no bar (nor from the run's own loads)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bioprofile.train.card import merge_adapter

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
        LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj"]),
    )
    model.save_pretrained(tmp_path / "adapter")
    capfd.readouterr()  # the plain load above drew its bar
    merge_adapter(str(tiny_llama_dir), tmp_path / "adapter", tmp_path / "merged")
    err = capfd.readouterr().err
    assert (tmp_path / "merged" / "config.json").is_file()
    assert "Loading" not in err and "it/s" not in err, err
    assert transformers_logging.is_progress_bar_enabled()


def test_an_adapter_loads_without_the_libraries_deprecation_word(tiny_llama_dir, tmp_path):
    """peft reads transformers' deprecated is_gradient_checkpointing when it wraps a model: not shown to users."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bioprofile.profiles.hf import TransformersGenerator

    adapter = tmp_path / "adapter"
    get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
        LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj"]),
    ).save_pretrained(adapter)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        TransformersGenerator(adapter, device="cpu").load()
    assert not [w for w in seen if "is_gradient_checkpointing" in str(w.message)], [
        str(w.message) for w in seen
    ]
    with warnings.catch_warnings(record=True) as seen:  # outside bioprofile's loads the filter is gone
        warnings.simplefilter("always")
        with quiet_model_loading():
            pass
        warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
    assert len(seen) == 1
