"""Profiles written on a Ray cluster: the uncached prompts fanned out with Ray Data over a pool of backend actors.

:class:`RayProfileWriter` runs any registered backend (transformers, vLLM, an OpenAI-compatible server, a plugin's)
on Ray. The backend travels as a :class:`GeneratorSpec` (its registry name, model, settings and options), never as a
loaded model: each actor builds its own writer from the spec, so a model loads once per actor. The writer cuts the
prompts into the chunks :func:`~bioprofile.profiles.generate.generate_profiles` would hand the backend (so every text
is generated in the batch a local run generates it in), sends the chunks with missing texts through
``Dataset.map_batches`` over an actor pool, and stores each chunk's texts from the driver, alone, as the results
stream back: one store transaction per result batch, committed before the next batch is taken. A killed job
therefore resumes from the store. A prompt that fails is recorded with its error (the run's provenance), the job
goes on, and the next run sends only the prompts still without a text.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile.entities import EntityLike, entity_key
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.backends import make_generator
from bioprofile.profiles.generate import (
    GenerationSettings,
    ProfileGenerator,
    PromptTemplateLike,
    profile_cache_key,
    prompt_chunks,
)
from bioprofile.profiles.ray_cluster import RayOptions, connect, one_line_error, pool_size, stream_answers
from bioprofile.profiles.registry import Backend, get_backend, register_backend

if TYPE_CHECKING:
    from bioprofile.store import Store

__all__ = ["GeneratorSpec", "RayOptions", "RayProfileWriter", "as_ray_options", "as_ray_writer"]


@dataclass(frozen=True)
class GeneratorSpec:
    """A profile writer as each Ray actor builds it: a registered backend's name, the model, settings and options.

    Parameters
    ----------
    model
        What the backend loads (a model folder, a hub id, ``None`` for the bundled SmolLM2; for ``"openai"`` the
        served name). Every worker must be able to load it (the same path, or the same hub cache).
    backend
        A registered backend (:func:`~bioprofile.profiles.registry.registered_backends`).
    settings
        Decoding settings (:class:`~bioprofile.profiles.generate.GenerationSettings`); ``None``: the defaults.
    options
        The backend's own options (``base_url``, ``max_retries``... for ``"openai"``), as
        :func:`~bioprofile.profiles.backends.make_generator` takes them. An API key is never one of them: each
        worker reads it from its own environment (``api_key_env``).
    """

    model: str | None = None
    backend: str = "transformers"
    settings: GenerationSettings | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # The registry entry, shipped so that a worker where a plugin registered it at run time (not through an entry
    # point) can build it too; its factory travels by reference, so the plugin must be importable there.
    registered: Backend | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, Path):
            object.__setattr__(self, "model", str(self.model))
        object.__setattr__(self, "options", dict(self.options))

    def build(self) -> ProfileGenerator:
        """The writer this spec describes, not yet loaded (a local model loads on its first ``generate``).

        Returns
        -------
        ProfileGenerator
        """
        if self.registered is not None:
            try:
                get_backend(self.backend)
            except BioprofileInputError:  # registered in the driver at run time only: register it here too
                register_backend(self.backend, self.registered.factory, options=self.registered.options)
        return make_generator(self.model, backend=self.backend, settings=self.settings, **dict(self.options))


def as_ray_options(ray: RayOptions | str | bool | None) -> RayOptions | None:
    """Ray options from what a caller may pass as ``ray``: options, an address, ``True`` (Ray's default) or nothing.

    Parameters
    ----------
    ray
        :class:`RayOptions`; an address (see :attr:`RayOptions.address`); ``True`` for ``RayOptions()``;
        ``None`` or ``False`` for no Ray.

    Returns
    -------
    RayOptions or None

    Raises
    ------
    BioprofileInputError
        Anything else.
    """
    if ray is None or ray is False:
        return None
    if ray is True:
        return RayOptions()
    if isinstance(ray, RayOptions):
        return ray
    if isinstance(ray, str):
        return RayOptions(address=ray)
    raise BioprofileInputError(
        f"ray must be True, an address or RayOptions, got {type(ray).__name__}", argument="ray"
    )


def as_ray_writer(
    generator: Any,
    *,
    ray: RayOptions | str | bool | None = True,
    backend: str = "transformers",
    settings: GenerationSettings | None = None,
) -> RayProfileWriter:
    """A :class:`RayProfileWriter` from a generator argument: a model, a :class:`GeneratorSpec` or a Ray writer.

    Parameters
    ----------
    generator
        A model (path, hub id or ``None``, loaded by ``backend`` with ``settings`` on each actor), a
        :class:`GeneratorSpec`, or a :class:`RayProfileWriter` (returned with ``ray`` as its options).
    ray
        Where and how wide (:func:`as_ray_options`).
    backend, settings
        The backend and decoding settings of a model given as ``generator``.

    Returns
    -------
    RayProfileWriter

    Raises
    ------
    BioprofileInputError
        A ready generator object (it cannot be sent to the actors: give its model, or a spec), or settings beside
        a spec.
    """
    options = as_ray_options(ray) or RayOptions()
    if isinstance(generator, RayProfileWriter):
        return RayProfileWriter(generator.spec, options)
    if isinstance(generator, GeneratorSpec):
        if settings is not None:
            raise BioprofileInputError(
                "settings are for a model given as generator: a GeneratorSpec carries its own",
                argument="settings",
            )
        return RayProfileWriter(generator, options)
    if generator is None or isinstance(generator, (str, Path)):
        return RayProfileWriter(GeneratorSpec(generator, backend, settings), options)
    raise BioprofileInputError(
        f"with ray, give the writer as a model or a GeneratorSpec, not a ready {type(generator).__name__}: each "
        "Ray actor builds its own",
        argument="generator",
    )


class RayProfileWriter:
    """A profile writer whose backend runs on a Ray actor pool; texts are stored by the driver as they come back.

    It has the identity of the backend it wraps (``id``, ``params``: the same store keys as a local run, so a text
    written either way serves both).

    Parameters
    ----------
    spec
        The backend each actor builds.
    options
        Where and how wide; ``None``: :class:`RayOptions`'s defaults.

    Attributes
    ----------
    last_run : dict
        What the latest :meth:`write_profiles` did, for provenance: ``address`` (no credentials), ``actors``,
        ``generated`` (texts stored), ``failed`` (entity key -> error, prompts without a text).
    """

    def __init__(self, spec: GeneratorSpec, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        # On the driver the writer is built but never loaded: only its ids, params and chunking are used here.
        self._writer = spec.build()
        self.spec = (
            spec if spec.registered is not None else replace(spec, registered=get_backend(spec.backend))
        )
        self.last_run: dict[str, Any] = {}

    @property
    def id(self) -> str:
        """The wrapped backend's id (a cache-key part)."""
        return self._writer.id

    @property
    def params(self) -> Mapping[str, Any]:
        """The wrapped backend's params (a cache-key part)."""
        return self._writer.params

    @property
    def params_in_use(self) -> Mapping[str, Any]:
        """The wrapped backend's settings as it runs them (provenance)."""
        return getattr(self._writer, "params_in_use", self._writer.params)

    @property
    def model_path(self) -> Any:
        """The wrapped backend's model folder (``None`` for a served model): the template it was trained with."""
        return getattr(self._writer, "model_path", None)

    @property
    def batch_size(self) -> Any:
        """The wrapped backend's batch size (chunks are four of them)."""
        return getattr(self._writer, "batch_size", None)

    def __repr__(self) -> str:
        return f"RayProfileWriter({self.spec.backend!r}, {self.id!r}, address={self.options.shown_address!r})"

    def generate(self, messages_list: list[list[dict]]) -> list[str]:
        """One text per chat, in input order, written on the cluster (nothing stored).

        Parameters
        ----------
        messages_list
            One chat per profile.

        Returns
        -------
        list of str
            The texts; a failed prompt's is empty (its error in :attr:`last_run`).
        """
        prompts = {str(index): list(messages) for index, messages in enumerate(messages_list)}
        texts = self._fan_out(prompts, set(prompts), lambda done: None, None)
        return [texts.get(str(index), "") for index in range(len(messages_list))]

    def write_profiles(
        self,
        entities: Sequence[EntityLike | str],
        *,
        template: PromptTemplateLike,
        store: Store | None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Profile texts for entities, generating on the cluster only those not in the store.

        Like :func:`~bioprofile.profiles.generate.generate_profiles`, with the same chunks and store keys; each
        result batch is stored (one transaction) before the next is taken. A failed prompt gets an empty text (not
        stored, so the next run retries it) and its error in :attr:`last_run` ``["failed"]``, with one warning.

        Parameters
        ----------
        entities
            Genes or other entities a template accepts; repeated entries are generated once.
        template
            Prompt template with ``name`` and ``messages(entity)``.
        store
            The store texts are read from and written to (``None``: nothing kept).
        progress
            Called with the number of texts newly stored as each batch is committed.

        Returns
        -------
        list of str
            One text per entry of ``entities``, in the same order (empty for a failed prompt).

        Raises
        ------
        BioprofileInputError
            Ray is not installed, the cluster does not answer, or every prompt failed (the first error).
        """
        keys = [entity_key(entity) for entity in entities]
        first_of: dict[str, Any] = {}
        for key, entity in zip(keys, entities, strict=False):
            first_of.setdefault(key, entity)
        cache_key = profile_cache_key(template, self)
        texts = store.get_profiles(list(first_of), **cache_key) if store is not None else {}
        prompts = {key: template.messages(entity) for key, entity in first_of.items()}
        missing = {key for key in first_of if key not in texts}

        def keep(done: dict[str, str]) -> None:
            if store is not None:
                store.put_profiles(done, **cache_key)

        texts.update(self._fan_out(prompts, missing, keep, progress))
        return [texts.get(key, "") for key in keys]

    def _fan_out(
        self,
        prompts: dict[str, list[dict]],
        missing: set[str],
        keep: Callable[[dict[str, str]], None],
        progress: Callable[[int], None] | None,
    ) -> dict[str, str]:
        """Texts of the ``missing`` prompts, each result batch passed to ``keep`` (and counted) as it arrives."""
        independent = getattr(self._writer, "independent_prompts", False) is True
        rows = []
        for chunk in prompt_chunks(prompts, self._writer):
            todo = [key for key in chunk if key in missing]
            # a backend whose texts depend on batch-mates gets the whole chunk, as generate_profiles sends it
            sent = todo if independent else chunk
            if todo:
                payload = {"keys": sent, "missing": [key in missing for key in sent]}
                payload["messages"] = [prompts[key] for key in sent]
                rows.append({"payload": json.dumps(payload)})
        self.last_run = {"address": self.options.shown_address, "actors": 0, "generated": 0, "failed": {}}
        if not rows:
            return {}
        ray = connect(self.options)
        actors = pool_size(ray, self.options, len(rows))
        self.last_run["actors"] = actors
        texts: dict[str, str] = {}
        failed: dict[str, str] = self.last_run["failed"]
        try:
            for answers in stream_answers(ray, rows, self.spec, self.options, actors):
                done = {}
                for answer in answers:
                    done.update(answer["texts"])
                    failed.update(answer["errors"])
                keep(done)  # committed before the next batch is taken
                texts.update(done)
                self.last_run["generated"] = len(texts)
                if progress is not None and done:
                    progress(len(done))
        except BioprofileInputError:
            raise
        except (
            Exception
        ) as err:  # the cluster failed (an actor lost, a worker out of memory): say how far it got
            raise BioprofileInputError(
                f"the Ray job failed after {len(texts)} of {len(missing)} profiles (kept in the store), rerun to "
                f"resume: {one_line_error(err)}"
            ) from None
        if failed and not texts:  # nothing to resume from (a model that does not load): the error alone
            raise BioprofileInputError(
                f"every profile failed on Ray; the first: {next(iter(failed.values()))}"
            )
        if failed:
            shown = ", ".join(list(failed)[:5]) + (", ..." if len(failed) > 5 else "")
            warnings.warn(
                f"{len(failed)} profiles failed on Ray ({shown}; first error: {next(iter(failed.values()))}): not "
                "stored, the next run retries only them",
                stacklevel=4,
            )
        return texts
