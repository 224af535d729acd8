"""deploy/hoviyat.env.example: every HOVIYAT_* setting with its default, and valid values."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic_settings import BaseSettings

from idp.reconciliation.config import ReconciliationSettings
from idp.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "hoviyat.env.example"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_env_example", REPO / "deploy" / "env_example.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def active_lines(text: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile (and sh) read them: outer quotes removed."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key] = value
    return values


def test_example_is_what_the_settings_classes_say() -> None:
    expected = generator().render()
    assert EXAMPLE.read_text(encoding="utf-8") == expected, (
        "deploy/hoviyat.env.example is out of date: run "
        ".venv/bin/python deploy/env_example.py > deploy/hoviyat.env.example"
    )


@pytest.mark.parametrize("settings_class", [Settings, ReconciliationSettings])
def test_every_setting_is_listed_with_its_default(settings_class: type[BaseSettings]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    render_value = generator().render_value
    prefix = settings_class.model_config["env_prefix"]
    for name, field in settings_class.model_fields.items():
        variable = (prefix + name).upper()
        default = render_value(field.get_default(call_default_factory=True))
        block = text.split(f"{variable}=")[0].rsplit("\n\n", 1)[-1]
        assert f"# default: {default or '(empty)'}" in block, variable
        assert f"\n{variable}=" in text or f"\n#{variable}=" in text, variable


def test_no_variable_is_listed_that_no_setting_reads() -> None:
    known = {variable for _owner, variable, _d, _v in generator().entries()}
    listed = {
        key.lstrip("#")
        for key in (line.partition("=")[0] for line in EXAMPLE.read_text().splitlines())
        if key.lstrip("#").startswith("HOVIYAT_")
    }
    assert listed == known


def test_production_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = active_lines(EXAMPLE.read_text(encoding="utf-8"))
    assert values["HOVIYAT_MODE"] == "production"
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.is_production
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.trusted_proxies == ["127.0.0.1"]
    assert settings.issuer.startswith("https://")
    for cls in generator().settings_classes():
        cls()  # every class accepts the production values
