"""What the container, compose and Kubernetes checks share: the setting names, and whether
a set of ``HOVIYAT_*`` values is one every settings class accepts."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# The names a secret has; such a value never sits in an image, a ConfigMap or a compose file.
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|PASSPHRASE|TOKEN|PIN\b|_PIN|PRIVATE|API_KEY", re.I)


def names_a_secret(variable: str) -> bool:
    """A variable whose value is a secret: a *_FILE or *_DIR only says where one is, and a
    token's label or lifetime is no secret."""
    harmless = ("_FILE", "_DIR", "_LABEL", "_SECONDS")
    return bool(SECRET_WORDS.search(variable)) and not variable.endswith(harmless)


def env_example() -> ModuleType:
    """deploy/env_example.py: it finds every HOVIYAT_* settings class the application reads."""
    spec = importlib.util.spec_from_file_location(
        "deploy_env_example_for_containers", DEPLOY / "env_example.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def setting_names() -> set[str]:
    return {variable for _owner, variable, _d, _v in env_example().entries()}


def unknown_settings(names: Iterator[str] | set[str] | list[str]) -> set[str]:
    """The HOVIYAT_* names no settings class reads (a typo there is silently ignored)."""
    known = setting_names()
    return {name for name in names if name.startswith("HOVIYAT_") and name not in known}


def accept_settings(values: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every settings class is built from exactly ``values`` (and raises if one is invalid)."""
    for name in list(os.environ):
        if name.startswith("HOVIYAT_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for cls in env_example().settings_classes():
        cls()


def load_documents(path: Path) -> list[dict[str, Any]]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    assert all(isinstance(doc, dict) for doc in documents), path
    return documents
