"""Reading a program's INI settings file, with `--set section.key=value` overrides.

Both programs take one file that Ansible templates. A wrong or missing setting must end
the program with one line naming the setting and the file (systemd then shows it in
`systemctl status`), not with a stack trace: every getter raises `SettingsError` with
that text.
"""

from __future__ import annotations

import configparser
import os
from typing import Iterable, List, Optional, Sequence, Tuple


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it."""


class Settings:
    """Typed access to an INI file plus command-line overrides."""

    def __init__(self, path: Optional[str], overrides: Sequence[str] = ()) -> None:
        self.source = path or "(no settings file)"
        self._parser = configparser.ConfigParser(interpolation=None, default_section="__defaults__")
        self._parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
        if path is not None:
            if not os.path.isfile(path):
                raise SettingsError(f"settings file {path} does not exist")
            try:
                with open(path, encoding="utf-8") as handle:
                    self._parser.read_file(handle)
            except (configparser.Error, UnicodeDecodeError) as error:
                raise SettingsError(f"settings file {path} is not a valid INI file: {error}") from None
        for override in overrides:
            section, key, value = parse_override(override)
            if not self._parser.has_section(section):
                self._parser.add_section(section)
            self._parser.set(section, key, value)

    def _raw(self, section: str, key: str) -> Optional[str]:
        if self._parser.has_option(section, key):
            value = self._parser.get(section, key).strip()
            return value if value != "" else None
        return None

    def _name(self, section: str, key: str) -> str:
        return f"{section}.{key} in {self.source}"

    def string(self, section: str, key: str, default: Optional[str] = None) -> str:
        value = self._raw(section, key)
        if value is None:
            if default is None:
                raise SettingsError(f"setting {self._name(section, key)} is required")
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
            raise SettingsError(f"setting {self._name(section, key)} must be a whole number, not {value!r}") from None
        if number < minimum:
            raise SettingsError(f"setting {self._name(section, key)} must be at least {minimum}, not {number}")
        return number

    def number(self, section: str, key: str, default: float, minimum: float = 0.0) -> float:
        value = self._raw(section, key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"setting {self._name(section, key)} must be a number, not {value!r}") from None
        if number < minimum:
            raise SettingsError(f"setting {self._name(section, key)} must be at least {minimum}, not {number}")
        return number

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self._raw(section, key)
        if value is None:
            return default
        try:
            return parse_bool(value)
        except ValueError:
            raise SettingsError(f"setting {self._name(section, key)} must be true or false, not {value!r}") from None

    def choice(self, section: str, key: str, default: str, choices: Iterable[str]) -> str:
        allowed = list(choices)
        value = self.string(section, key, default)
        if value not in allowed:
            raise SettingsError(f"setting {self._name(section, key)} must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def section(self, section: str) -> List[Tuple[str, str]]:
        """Every key of a free-form section (pass-through options), in file order."""
        if not self._parser.has_section(section):
            return []
        return [(key, value.strip()) for key, value in self._parser.items(section)]

    def secret(self, section: str, key: str) -> Optional[str]:
        """A secret is never in the file: the file names the environment variable holding it."""
        variable = self._raw(section, key)
        if variable is None:
            return None
        value = os.environ.get(variable)
        if value is None:
            raise SettingsError(
                f"setting {self._name(section, key)} names environment variable {variable}, which is not set"
                " (it belongs in the service's EnvironmentFile)"
            )
        return value


def parse_bool(value: str) -> bool:
    """true/yes/on/1 or false/no/off/0, in any case; ValueError otherwise."""
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_override(text: str) -> Tuple[str, str, str]:
    """`section.key=value` as given to --set."""
    name, equals, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not equals or not dot or not section or not key:
        raise SettingsError(f"--set {text!r} must look like section.key=value")
    return section, key, value
