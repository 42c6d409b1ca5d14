"""Reading a program's INI settings file, with `--set section.key=value` overrides.

Both programs (the producer service and the Spark job) take one INI file that Ansible
templates, and both read it here: the file, the overrides, the lookup by section and key,
secrets from the environment and the typed conversions. `producer.config` and
`stream.config` keep only their own settings and checks.

A wrong or missing setting must end the program with one line naming the setting and the
file (systemd then shows it in `systemctl status`), not with a stack trace: everything
here raises `SettingsError` with that text, and the programs print it and exit with
`EXIT_BAD_SETTINGS`. Each program keeps its own wording of that line (`Wording`).
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar

T = TypeVar("T")

# Exit code of a program started with wrong settings (its unit does not restart it).
EXIT_BAD_SETTINGS = 2
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it and the file."""


@dataclass(frozen=True)
class Wording:
    """How one program words its settings errors, as `str.format` templates."""

    setting: str  # a wrong setting: {source} (the file), {section}, {key}, {problem}
    missing_file: str  # {path}, {reason}
    unreadable_file: str  # {path}, {reason}
    invalid_file: str  # {path}, {error}
    bad_override: str  # {text}, the --set argument


# The default wording, the producer's.
WORDING = Wording(
    setting="setting {section}.{key} in {source} {problem}",
    missing_file="settings file {path} does not exist",
    unreadable_file="settings file {path} cannot be read: {reason}",
    invalid_file="settings file {path} is not a valid INI file: {error}",
    bad_override="--set {text!r} must look like section.key=value",
)


class Settings:
    """Typed access to an INI file plus command-line overrides."""

    def __init__(
        self,
        path: Optional[str],
        overrides: Iterable[str] = (),
        wording: Wording = WORDING,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.source = path or "(no settings file)"
        self.wording = wording
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._values: Dict[Tuple[str, str], str] = {} if path is None else read_ini(path, wording)
        for override in overrides:
            section, key, value = parse_override(override, wording)
            self._values[(section, key)] = value

    def error(self, section: str, key: str, problem: str) -> SettingsError:
        """The error naming setting `section.key` and the file."""
        return SettingsError(self.wording.setting.format(source=self.source, section=section, key=key, problem=problem))

    def items(self) -> List[Tuple[str, str, str]]:
        """Every (section, key, value), values stripped: the file's in file order, then new overrides."""
        return [(section, key, value.strip()) for (section, key), value in self._values.items()]

    def section(self, section: str) -> List[Tuple[str, str]]:
        """Every key of a free-form section (pass-through options), in file order."""
        return [(key, value) for name, key, value in self.items() if name == section]

    def _raw(self, section: str, key: str) -> Optional[str]:
        value = self._values.get((section, key), "").strip()
        return value if value != "" else None

    def convert(self, section: str, key: str, value: str, parse: Callable[[str], T]) -> T:
        """`parse(value)`; its ValueError becomes the error naming the setting."""
        try:
            return parse(value)
        except ValueError as error:
            raise self.error(section, key, str(error)) from None

    def string(self, section: str, key: str, default: Optional[str] = None) -> str:
        value = self._raw(section, key)
        if value is None:
            if default is None:
                raise self.error(section, key, "is required")
            return default
        return value

    def optional(self, section: str, key: str) -> Optional[str]:
        return self._raw(section, key)

    def integer(self, section: str, key: str, default: int, minimum: int = 0) -> int:
        value = self._raw(section, key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise self.error(section, key, f"must be a whole number, not {value!r}") from None
        if number < minimum:
            raise self.error(section, key, f"must be at least {minimum}, not {number}")
        return number

    def number(self, section: str, key: str, default: float, minimum: float = 0.0) -> float:
        value = self._raw(section, key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise self.error(section, key, f"must be a number, not {value!r}") from None
        if number < minimum:
            raise self.error(section, key, f"must be at least {minimum}, not {number}")
        return number

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self._raw(section, key)
        if value is None:
            return default
        try:
            return parse_bool(value)
        except ValueError:
            raise self.error(section, key, f"must be true or false, not {value!r}") from None

    def choice(self, section: str, key: str, default: str, choices: Iterable[str]) -> str:
        allowed = list(choices)
        value = self.string(section, key, default)
        if value not in allowed:
            raise self.error(section, key, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def secret(self, section: str, key: str) -> Optional[str]:
        """A secret is never in the file: the file names the environment variable holding it."""
        variable = self._raw(section, key)
        if variable is None:
            return None
        value = self._environ.get(variable)
        if value is None:
            raise self.error(
                section,
                key,
                f"names environment variable {variable}, which is not set"
                " (it belongs in the service's EnvironmentFile)",
            )
        return value

    def expand(self, section: str, key: str, value: str) -> str:
        """`${NAME}` in a value replaced by environment variable NAME: secrets stay out of the file."""

        def replace(match: "re.Match[str]") -> str:
            name = match.group(1)
            if name not in self._environ:
                raise self.error(section, key, f"environment variable {name} is not set")
            return self._environ[name]

        return _ENV_REFERENCE.sub(replace, value)


def read_ini(path: str, wording: Wording = WORDING) -> Dict[Tuple[str, str], str]:
    """Every (section, key) -> value of an INI file, in file order."""
    # No interpolation (`%` may appear in passwords and JAAS strings), no DEFAULT section.
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case (Kafka options)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        missing = isinstance(error, (FileNotFoundError, IsADirectoryError))
        template = wording.missing_file if missing else wording.unreadable_file
        raise SettingsError(template.format(path=path, reason=error.strerror)) from None
    except (configparser.Error, UnicodeDecodeError) as error:
        raise SettingsError(wording.invalid_file.format(path=path, error=error)) from None
    return {(section, key): value for section in parser.sections() for key, value in parser.items(section)}


def parse_bool(value: str) -> bool:
    """true/yes/on/1 or false/no/off/0, in any case; ValueError otherwise."""
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_override(text: str, wording: Wording = WORDING) -> Tuple[str, str, str]:
    """`section.key=value` as given to --set; the key may hold dots (Kafka option names)."""
    name, equals, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not equals or not dot or not section or not key.strip():
        raise SettingsError(wording.bad_override.format(text=text))
    return section, key.strip(), value
