"""The vllm backend's engine options through the registry (tensor_parallel_size for a Ray replica on N GPUs).

The engine itself runs only where vLLM is installed (``test_vllm_backend.py``); these check what reaches it.
"""

from __future__ import annotations

import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles import backend_option_names, make_generator
from bioprofile.profiles.ray_fanout import GeneratorSpec
from bioprofile.profiles.vllm import VLLMBackendOptions, vllm_available


def test_the_vllm_backend_takes_engine_options():
    assert backend_option_names("vllm") == ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len")


def test_only_options_set_reach_the_engine():
    assert VLLMBackendOptions().engine_kwargs() == {}
    options = VLLMBackendOptions(tensor_parallel_size=4, gpu_memory_utilization=0.8, max_model_len=4096)
    assert options.engine_kwargs() == {
        "tensor_parallel_size": 4,
        "gpu_memory_utilization": 0.8,
        "max_model_len": 4096,
    }


@pytest.mark.parametrize(
    ("given", "argument"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"tensor_parallel_size": 2.0}, "tensor_parallel_size"),
        ({"tensor_parallel_size": True}, "tensor_parallel_size"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"gpu_memory_utilization": 0}, "gpu_memory_utilization"),
        ({"max_model_len": 0}, "max_model_len"),
    ],
)
def test_bad_engine_options_are_refused_naming_the_argument(given, argument):
    with pytest.raises(BioprofileInputError) as err:
        VLLMBackendOptions(**given)
    assert err.value.argument == argument and argument in str(err.value)


def test_an_engine_option_is_not_taken_by_another_backend():
    with pytest.raises(BioprofileInputError, match="tensor_parallel_size is for backend 'vllm' only") as err:
        make_generator(backend="transformers", tensor_parallel_size=2)
    assert err.value.argument == "tensor_parallel_size"
    make_generator(
        backend="transformers", tensor_parallel_size=1
    )  # at its default: a caller passing every option


@pytest.mark.skipif(vllm_available(), reason="checks the refusal where vLLM is not installed")
def test_without_vllm_the_option_is_accepted_and_the_missing_package_named():
    with pytest.raises(BioprofileInputError, match="needs vLLM"):
        make_generator(backend="vllm", tensor_parallel_size=2)


def test_a_ray_spec_carries_the_engine_options_to_each_actor():
    spec = GeneratorSpec(model="some/model", backend="vllm", options={"tensor_parallel_size": 2})
    assert spec.options == {"tensor_parallel_size": 2}
    with pytest.raises(BioprofileInputError, match="tensor_parallel_size must be"):
        GeneratorSpec(model="some/model", backend="vllm", options={"tensor_parallel_size": -1}).build()
