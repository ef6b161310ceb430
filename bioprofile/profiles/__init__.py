"""Profiles: chat prompts for an entity, and the backends that write the texts, resumably through the store.

Modules
-------
prompts
    :class:`~bioprofile.profiles.prompts.PromptTemplate` and the registry of templates (shared with training).
gene_set_prompts
    :class:`~bioprofile.profiles.gene_set_prompts.GeneSetPrompt`: templates that ask which biological process a
    gene set shares (``bench gene-sets``).
de_prompts
    :class:`~bioprofile.profiles.de_prompts.DEQuestionPrompt`: templates that ask whether a drug changes a gene's
    expression in a cell line (``bench de-reasoning``), and the answer rule (:func:`~bioprofile.profiles.de_prompts.parse_answer`).
generate
    :class:`~bioprofile.profiles.generate.GenerationSettings` (decoding settings every backend takes) and
    :func:`~bioprofile.profiles.generate.generate_profiles` (cached, chunked, resumable generation).
registry
    :func:`~bioprofile.profiles.registry.register_backend`: the backends by name (a third-party package adds one
    with one call when it is imported).
backends
    :func:`~bioprofile.profiles.backends.make_generator`: a registered backend by name; the built-ins' registration
    lines.
hf
    The transformers backend (the default).
vllm
    The vLLM backend (the ``[vllm]`` extra).
http
    The OpenAI-compatible chat-completions backend (the ``[openai]`` extra).
served
    That backend's own options (:class:`~bioprofile.profiles.served.OpenAIBackendOptions`) and its factory.
models
    Where generator models come from (the bundled SmolLM2, local folders, hub ids), their cache-key ids, and the
    template a trained model folder records.
coerce
    :func:`~bioprofile.profiles.coerce.as_generator`: a ready generator from a generator or a model.
ray_fanout
    :class:`~bioprofile.profiles.ray_fanout.RayProfileWriter`: any backend on a Ray actor pool (the ``[ray]`` extra),
    the texts stored by the driver as they come back.
ray_cluster
    Ray's side of it: :class:`~bioprofile.profiles.ray_cluster.RayOptions`, the connection, the actors.
summaries
    User-supplied texts read in place of generated profiles (the GenePT recipe).
"""

from bioprofile.profiles.backends import BACKENDS, make_generator
from bioprofile.profiles.coerce import as_generator
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.models import trained_template
from bioprofile.profiles.prompts import PromptTemplate, get_template
from bioprofile.profiles.registry import (
    backend_option_names,
    register_backend,
    registered_backends,
    unregister_backend,
)
from bioprofile.profiles.served import OpenAIBackendOptions

__all__ = [
    "BACKENDS",
    "GenerationSettings",
    "OpenAIBackendOptions",
    "PromptTemplate",
    "as_generator",
    "backend_option_names",
    "get_template",
    "make_generator",
    "register_backend",
    "registered_backends",
    "trained_template",
    "unregister_backend",
]
