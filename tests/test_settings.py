"""The settings table is the one source: the README, the constructor and the configuration agree with it."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._config import SETTINGS, ExporterConfig
from otel_redis_exporter._config.settings import ConfigArguments, ExporterOptions, readme_table

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_configuration_table() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(readme_table()[0])
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


def _public_keywords() -> dict[str, str]:
    parameters = inspect.signature(RedisLogExporter.__init__).parameters
    return {
        name: str(parameter.annotation)
        for name, parameter in parameters.items()
        if name != "self" and not name.startswith("_")
    }


def test_readme_configuration_table_is_the_settings_table() -> None:
    """Each row of the README's configuration table is the row the settings table renders."""
    readme, table = _readme_configuration_table(), readme_table()
    for readme_row, table_row in zip(readme, table, strict=False):
        assert readme_row == table_row
    assert len(readme) == len(table), f"README rows: {len(readme)}, settings: {len(table)}"


def test_constructor_keywords_are_the_settings() -> None:
    """RedisLogExporter takes exactly the table's settings as keywords (besides its test seams)."""
    assert sorted(_public_keywords()) == sorted(SETTINGS)


def test_constructor_keyword_types_match_the_typed_options() -> None:
    """configure_logging's typed options carry the constructor's annotation for every setting."""
    typed = {**ExporterOptions.__annotations__, **ConfigArguments.__annotations__}
    for name, annotation in _public_keywords().items():
        # Under postponed annotations a TypedDict keeps each type as a ForwardRef of its text.
        assert getattr(typed[name], "__forward_arg__", typed[name]) == annotation, name


def test_configuration_fields_are_the_settings() -> None:
    """ExporterConfig has a field per setting, plus what resolution derives (disabled, cluster_set_by)."""
    fields = {field.name for field in dataclasses.fields(ExporterConfig)}
    settings = {setting.config_field for name, setting in SETTINGS.items() if name != "meter_provider"}
    assert fields - settings == {"cluster_set_by", "disabled"}
    assert settings <= fields


def test_every_setting_of_the_environment_has_a_distinct_variable() -> None:
    """No environment variable feeds two settings."""
    variables = [variable for setting in SETTINGS.values() for variable in setting.env]
    assert len(variables) == len(set(variables))
