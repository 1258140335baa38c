"""Plug-ins: frame sources, inference engines and output devices, found by name.

Each of the three kinds of part is a :class:`PluginKind`: :data:`SOURCES` (``source: {kind: …}``
in a run config), :data:`ENGINES` (``engine: {kind: …}``) and :data:`OUTPUTS` (each entry of
``outputs:``, ``{kind: …}``). One rule for all three: ``kind`` names the plug-in. The older
spellings ``engine: {backend: …}`` and ``{device: …}`` for outputs are still read, with a
deprecation message. A plug-in is one class that

- declares its options as a pydantic model in ``Options`` (a :class:`PluginOptions`; the field
  descriptions are its documentation, printed by ``realtime-pose plugins KIND NAME``), and
- registers itself with the kind's decorator, e.g. ``@SOURCES.register("basler")``.

Built-in plug-ins are the modules of the kind's package (``realtime_pose/sources/``,
``realtime_pose/engines/``, ``realtime_pose/hardware/``). A module is imported only when its name
is asked for, or when every name is listed, so a plug-in that needs a camera SDK or a GPU stack
must import it inside its methods, never at the top of its module: choosing one plug-in never
imports what another needs. Other packages add plug-ins through an entry-point group per kind
(``realtime_pose.sources``, ``realtime_pose.engines``, ``realtime_pose.outputs``), the entry's
name being the plug-in's name and its value ``module:Class``::

    [project.entry-points."realtime_pose.sources"]
    labcam = "labcam.source:LabCamSource"

A run config section is validated by :meth:`PluginKind.choose`, which returns a :class:`Choice`
(the class and its validated options); errors carry the field's location, so the config loader
reports ``rig.yaml: field 'outputs.laser.baudrate': …``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

log = logging.getLogger(__name__)

P = TypeVar("P")


class UnknownPluginError(ValueError):
    """No plug-in of that name; the message lists the available ones and any that failed to load."""


class PluginOptions(BaseModel):
    """Base of every plug-in's ``Options`` model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def path_fields(self) -> list[str]:
        """Names of the fields holding file-system paths (resolved against the config's folder)."""
        return path_fields(self)


def path_fields(model: BaseModel) -> list[str]:
    """Names of ``model``'s fields that are typed as paths and set (not ``None``)."""
    hints = typing.get_type_hints(type(model))
    return [
        name
        for name in type(model).model_fields
        if _is_path_type(hints.get(name)) and getattr(model, name) is not None
    ]


def _is_path_type(tp: Any) -> bool:
    if tp is Path:
        return True
    return any(arg is Path for arg in typing.get_args(tp))


@dataclass(frozen=True)
class Choice(Generic[P]):
    """A plug-in chosen by a config section: its name, class and validated options."""

    name: str
    cls: type[P]
    options: PluginOptions
    key: str = field(default="kind", compare=False)

    def dump(self) -> dict[str, Any]:
        """The section as a user would write it (``{key: name, **options}``)."""
        return {self.key: self.name, **self.options.model_dump(mode="json")}

    def with_options(self, **changes: Any) -> Choice[P]:
        """A copy with some options replaced (validated again)."""
        options = type(self.options).model_validate({**self.options.model_dump(), **changes})
        return Choice(self.name, self.cls, options, self.key)


class PluginKind(Generic[P]):
    """One kind of plug-in: its registry, its built-in package and its entry-point group.

    Parameters
    ----------
    what
        The kind in words (``"source"``), used in messages.
    package
        The package whose modules are the built-in plug-ins.
    group
        The entry-point group third-party plug-ins register under.
    key
        The field of a config section that names the plug-in (``kind`` for every kind).
    legacy_key
        An older name of that field, still read with a deprecation message (``None``: none).
    default
        The plug-in used when a section does not name one (``None``: the name is required).
    """

    def __init__(
        self,
        what: str,
        package: str,
        group: str,
        key: str = "kind",
        default: str | None = None,
        legacy_key: str | None = None,
    ) -> None:
        self.what = what
        self.package = package
        self.group = group
        self.key = key
        self.legacy_key = legacy_key
        self.default = default
        self._classes: dict[str, type[P]] = {}
        self._import_errors: dict[str, str] = {}
        self._scanned = False
        self._entry_points_loaded = False

    # -- registering ----------------------------------------------------------------------
    def register(self, name: str) -> Callable[[type[P]], type[P]]:
        """Class decorator: make the class available as ``name``.

        The class must have an ``Options`` attribute, a :class:`PluginOptions` subclass.
        """
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{self.what} plug-in names are letters, digits, - and _: {name!r}")

        def decorate(cls: type[P]) -> type[P]:
            options = getattr(cls, "Options", None)
            if not (isinstance(options, type) and issubclass(options, PluginOptions)):
                raise TypeError(
                    f"{cls.__qualname__} must declare `Options`, a PluginOptions model of its "
                    f"run-config options, to be registered as a {self.what}"
                )
            known = self._classes.get(name)
            if known is not None and known is not cls:
                raise ValueError(
                    f"two {self.what} plug-ins are called {name!r}: "
                    f"{_qualname(known)} and {_qualname(cls)}"
                )
            self._classes[name] = cls
            cls.plugin_name = name  # type: ignore[attr-defined]
            return cls

        return decorate

    # -- finding --------------------------------------------------------------------------
    def get(self, name: str) -> type[P]:
        """The class registered as ``name``, importing its module on first use.

        Raises
        ------
        UnknownPluginError
            No such plug-in; the message lists the available ones and any that failed to load.
        """
        if name in self._classes:
            return self._classes[name]
        self._import_builtin(name)
        if name not in self._classes:
            self._load_entry_points()
        if name not in self._classes:
            self._scan_builtins()
        if name not in self._classes:
            raise UnknownPluginError(self._unknown_message(name))
        return self._classes[name]

    def names(self) -> list[str]:
        """Every available plug-in name (imports every built-in module of the kind)."""
        self._scan_builtins()
        self._load_entry_points()
        return sorted(self._classes)

    def unavailable(self) -> dict[str, str]:
        """Modules or entry points that could not be loaded, with the reason."""
        self._scan_builtins()
        self._load_entry_points()
        return dict(self._import_errors)

    def _import_builtin(self, module: str) -> None:
        qualified = f"{self.package}.{module.replace('-', '_')}"
        try:
            importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:  # the module exists but needs something missing
                self._import_errors[qualified] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            self._import_errors[qualified] = f"{type(exc).__name__}: {exc}"

    def _scan_builtins(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.ispkg and not info.name.startswith("_"):
                self._import_builtin(info.name)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in importlib.metadata.entry_points(group=self.group):
            if entry.name in self._classes:
                continue
            try:
                cls = entry.load()
                if self._classes.get(entry.name) is not cls:
                    self.register(entry.name)(cls)
            except Exception as exc:
                where = f"entry point {entry.name!r} ({entry.value}) in group {self.group!r}"
                self._import_errors[where] = f"{type(exc).__name__}: {exc}"
                log.warning("%s plug-in %s could not be loaded: %s", self.what, where, exc)

    def _unknown_message(self, name: str) -> str:
        available = ", ".join(self.names()) or "none"
        message = f"unknown {self.what} {name!r}; available: {available}"
        failed = {k: v for k, v in self._import_errors.items() if name.replace("-", "_") in k}
        failed = failed or self._import_errors
        if failed:
            message += "; could not be loaded: " + "; ".join(
                f"{k} ({v})" for k, v in failed.items()
            )
        return message

    # -- config sections ------------------------------------------------------------------
    def choose(self, section: Any) -> Choice[P]:
        """Validate one config section (a mapping naming the plug-in under :attr:`key`).

        Raises
        ------
        pydantic.ValidationError
            With locations relative to the section (``baudrate``, or :attr:`key` for an
            unknown plug-in), so that errors in a run config name the whole path.
        """
        if isinstance(section, Choice):
            return section
        if section is None and self.default is not None:
            section = {}
        if not isinstance(section, Mapping):
            raise self._error((), "plugin_section", f"expected a mapping, got {section!r}", section)
        section = self._renamed_legacy_key(section)
        name = section.get(self.key, self.default)
        if name is None:
            raise self._error(
                (self.key,), "missing", f"Field required (the {self.what} to use)", section
            )
        if not isinstance(name, str):
            raise self._error((self.key,), "plugin_name", f"expected a name, got {name!r}", name)
        try:
            cls = self.get(name)
        except UnknownPluginError as exc:
            raise self._error((self.key,), "plugin_unknown", str(exc), name) from None
        options = {k: v for k, v in section.items() if k != self.key}
        validated = cls.Options.model_validate(options)  # type: ignore[attr-defined]
        return Choice(name, cls, validated, self.key)

    def _renamed_legacy_key(self, section: Mapping[str, Any]) -> Mapping[str, Any]:
        """``section`` with the old name of :attr:`key` (``backend``, ``device``) renamed."""
        old = self.legacy_key
        if old is None or old not in section:
            return section
        if self.key in section:
            raise self._error(
                (old,),
                "plugin_key",
                f"give the {self.what} as `{self.key}:` only (`{old}:` is its old spelling)",
                section[old],
            )
        message = (
            f"`{old}: {section[old]}` is the old spelling for a{_n(self.what)} {self.what}; "
            f"write `{self.key}: {section[old]}` (`{old}:` will stop being read)"
        )
        log.warning("%s", message)
        warnings.warn(message, DeprecationWarning, stacklevel=4)
        return {(self.key if k == old else k): v for k, v in section.items()}

    def section_type(self) -> Any:
        """An annotated type for a pydantic field holding one section of this kind."""
        return Annotated[
            Choice,
            PlainValidator(self.choose),
            PlainSerializer(lambda choice: choice.dump(), return_type=dict),
        ]

    def default_choice(self) -> Choice[P]:
        """The section an empty config gives (needs a :attr:`default`)."""
        return self.choose({})

    @staticmethod
    def _error(loc: tuple, kind: str, message: str, value: Any) -> ValidationError:
        details: list[InitErrorDetails] = [
            {"type": PydanticCustomError(kind, message), "loc": loc, "input": value}
        ]
        return ValidationError.from_exception_data("plugin", details)

    # -- documentation --------------------------------------------------------------------
    def describe(self, name: str) -> str:
        """A plug-in's options as text: name, type, default and description of each field."""
        cls = self.get(name)
        options: type[PluginOptions] = cls.Options  # type: ignore[attr-defined]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines = [f"{self.what} {name!r} ({_qualname(cls)}): {doc}", f"  {self.key}: {name}"]
        for field_name, info in options.model_fields.items():
            default = "required" if info.is_required() else f"default {info.get_default()!r}"
            kind = _type_name(info.annotation)
            lines.append(f"  {field_name}: {kind}, {default}")
            if info.description:
                lines.append(f"      {info.description}")
        return "\n".join(lines)


def _n(word: str) -> str:
    return "n" if word[:1] in "aeiou" else ""


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if not typing.get_args(tp) else None
    return text or str(tp).replace("typing.", "").replace("pathlib.", "")


SOURCES: PluginKind[Any] = PluginKind(
    "source", "realtime_pose.sources", "realtime_pose.sources", default="synthetic"
)
"""Frame sources (:class:`realtime_pose.sources.base.FrameSource` subclasses)."""

ENGINES: PluginKind[Any] = PluginKind(
    "engine",
    "realtime_pose.engines",
    "realtime_pose.engines",
    default="onnxruntime",
    legacy_key="backend",
)
"""Inference engines (:class:`realtime_pose.engines.base.Engine` implementations)."""

OUTPUTS: PluginKind[Any] = PluginKind(
    "output device",
    "realtime_pose.hardware",
    "realtime_pose.outputs",
    default="log",
    legacy_key="device",
)
"""Output devices (:class:`realtime_pose.hardware.base.OutputDevice` subclasses)."""

KINDS: dict[str, PluginKind[Any]] = {"source": SOURCES, "engine": ENGINES, "output": OUTPUTS}
"""The three kinds by the name ``realtime-pose plugins`` uses."""
