"""Role files as Ansible's template engine sees them, for tests that render a role's
variables and templates without a play."""

from __future__ import annotations

from typing import Any


def trusted(value: Any) -> Any:
    """`value` with every string marked a trusted template: Ansible trusts what it loads from a
    role's files, and renders only trusted strings (ansible-core 2.19)."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value
