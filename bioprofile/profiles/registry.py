"""The registry of generator backends: a name, the factory that builds its writer, and its own options class.

:func:`~bioprofile.profiles.backends.make_generator` looks the backend up here, so a backend is one module and one
registration line. The built-ins (``transformers``, ``vllm``, ``openai``) are registered in
:mod:`bioprofile.profiles.backends`; a third-party package registers its own when it is imported::

    from bioprofile.profiles import register_backend

    register_backend("ray", RayGenerator, options=RayBackendOptions)

An installed package can also name that call in its metadata, so that the command line finds the backend without
importing anything first: an entry point in the group ``bioprofile.backends`` whose name is the backend's and
whose value is the module that registers it, or a function that does (``ray = "bioprofile_ray:register"``). It is
loaded the first time that name is asked for.

A factory is called as ``factory(model, settings=settings)``, plus ``options=`` (an instance of the backend's
options class) when the backend declares one; it returns a
:class:`~bioprofile.profiles.generate.ProfileGenerator`. Options only one backend understands (an API root, a
retry count) are fields of that backend's options class, never parameters every backend carries.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.registry import Registry

__all__ = [
    "BACKEND_ENTRY_POINTS",
    "Backend",
    "backend_option_names",
    "get_backend",
    "register_backend",
    "registered_backends",
    "unregister_backend",
]


@dataclass(frozen=True)
class Backend:
    """A registered backend.

    Parameters
    ----------
    name
        The name ``make_generator(backend=...)`` takes.
    factory
        ``factory(model, settings=..., [options=...])`` -> a :class:`~bioprofile.profiles.generate.ProfileGenerator`.
    options
        The backend's own options class (a frozen dataclass whose fields are keyword arguments of
        ``make_generator``), or ``None`` when it takes only the shared :class:`GenerationSettings`.
    """

    name: str
    factory: Callable[..., Any]
    options: type | None = None

    def option_defaults(self) -> dict[str, Any]:
        """Each option's name and default value (empty without an options class)."""
        if self.options is None:
            return {}
        return {
            name: param.default
            for name, param in inspect.signature(self.options).parameters.items()
            if param.kind is param.KEYWORD_ONLY or param.kind is param.POSITIONAL_OR_KEYWORD
        }

    def build(self, model: Any, settings: Any, options: Mapping[str, Any]) -> Any:
        """The backend's writer for ``model``, with ``options`` (names of its options class) made into that class."""
        if self.options is None:
            return self.factory(model, settings=settings)
        return self.factory(model, settings=settings, options=self.options(**options))


#: Entry-point group of installed packages that add a backend (see the module's docstring).
BACKEND_ENTRY_POINTS = "bioprofile.backends"

_BACKENDS: Registry[Backend] = Registry("backend", BACKEND_ENTRY_POINTS)


def register_backend(
    name: str, factory: Callable[..., Any], *, options: type | None = None, replace: bool = False
) -> None:
    """Make a generator backend available under ``name`` (to ``make_generator`` and the command line).

    Parameters
    ----------
    name
        The backend's name.
    factory
        Called as ``factory(model, settings=settings)`` (plus ``options=`` when ``options`` is given); returns an
        object with ``id``, ``params`` and ``generate(messages_list)``
        (:class:`~bioprofile.profiles.generate.ProfileGenerator`).
    options
        The backend's options class: its constructor's keyword arguments are the options
        :func:`~bioprofile.profiles.backends.make_generator` accepts for this backend (checked when it is made).
    replace
        Replace a backend already registered under ``name`` (otherwise that is an error).

    Raises
    ------
    BioprofileInputError
        ``name`` is empty or already registered (without ``replace``), or ``factory`` is not callable.
    """
    if not callable(factory):
        raise BioprofileInputError(f"the factory of backend {name!r} is not callable", argument="factory")
    _BACKENDS.register(name, Backend(name, factory, options), replace=replace)


def unregister_backend(name: str) -> None:
    """Remove the backend registered under ``name`` (nothing happens when there is none).

    Parameters
    ----------
    name
        The backend's name.
    """
    _BACKENDS.unregister(name)


def registered_backends() -> tuple[str, ...]:
    """The names of the registered backends, in registration order."""
    return _BACKENDS.names()


def get_backend(name: str) -> Backend:
    """The backend registered under ``name``.

    Parameters
    ----------
    name
        The backend's name.

    Returns
    -------
    Backend
        Its factory and options class.

    Raises
    ------
    BioprofileInputError
        No backend has that name (the message lists the registered ones).
    """
    backend = _BACKENDS.get(name)  # an installed plugin of that name is loaded here
    if backend is None:
        # No argument= here: the CLI would turn the word "backend" of this message into its flag.
        raise BioprofileInputError(f"unknown backend {name!r}: use {' or '.join(_BACKENDS.names())}")
    return backend


def backend_option_names(name: str) -> tuple[str, ...]:
    """The options the backend ``name`` takes beside the shared settings (its options class's fields).

    Parameters
    ----------
    name
        A registered backend.

    Returns
    -------
    tuple of str
        Option names, e.g. ``("base_url", "api_key_env", "max_retries")`` for ``"openai"``.
    """
    return tuple(get_backend(name).option_defaults())


def split_options(backend: Backend, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``given`` that ``backend`` takes; an option of another backend is refused unless at its default.

    Parameters
    ----------
    backend
        The backend a writer is built for.
    given
        Keyword arguments of ``make_generator`` beyond the shared ones.

    Returns
    -------
    dict
        The options to make ``backend``'s options class with.

    Raises
    ------
    BioprofileInputError
        An option no backend takes, or one set (away from its default) that only other backends take.
    """
    own = backend.option_defaults()
    taken = {}
    for option, value in given.items():
        if option in own:
            taken[option] = value
            continue
        owners = {
            name: entry.option_defaults()[option]
            for name, entry in _BACKENDS.items()
            if option in entry.option_defaults()
        }
        if not owners:
            raise TypeError(f"make_generator() got an unexpected keyword argument {option!r}")
        if any(value == default for default in owners.values()):
            continue  # left at its default (a caller passing every flag), so not asked of this backend
        names = " or ".join(repr(owner) for owner in owners)
        raise BioprofileInputError(
            f"{option} is for backend {names} only, not {backend.name!r}", argument=option
        )
    return taken
