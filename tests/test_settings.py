"""The settings table is the one source: the constructor and the configuration agree with it, and the
documentation's table is rendered from it (tests/test_docs.py checks the page)."""

from __future__ import annotations

import dataclasses
import inspect

from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._config import SETTINGS, ExporterConfig
from otel_redis_exporter._config.settings import ConfigArguments, ExporterOptions, settings_table


def _public_keywords() -> dict[str, str]:
    parameters = inspect.signature(RedisLogExporter.__init__).parameters
    return {
        name: str(parameter.annotation)
        for name, parameter in parameters.items()
        if name != "self" and not name.startswith("_")
    }


def test_settings_table_has_a_row_per_setting_in_order() -> None:
    """The rendered table has its header, then one row per setting, each naming its variables."""
    header, rows = settings_table()[:2], settings_table()[2:]
    assert header[0] == "| option | environment variable | default | unit / values |"
    assert [row.split("`")[1] for row in rows] == list(SETTINGS)
    for row, setting in zip(rows, SETTINGS.values(), strict=True):
        assert all(f"`{variable}`" in row for variable in setting.env), row


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
