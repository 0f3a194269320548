"""The storage models state their fields once (`StorageFields`); the PATCH model, which cannot inherit them
(every field optional there), is held to the same list and the same types here."""

from __future__ import annotations

import typing

from spool.domain import storage
from spool.domain.storage import StorageConfigIn, StorageConfigOut, StorageConfigPatch, StorageFields, StorageSettings


def declared(model: type) -> dict[str, str]:
    """Each field's annotation as written in the module, the subclass's own winning."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        found |= getattr(cls, "__annotations__", {}) if cls.__module__ == storage.__name__ else {}
    return {name: text for name, text in found.items() if name in model.model_fields}


def test_the_patch_has_every_field_of_a_create_and_no_other() -> None:
    assert list(StorageConfigPatch.model_fields) == list(StorageConfigIn.model_fields)


def test_each_patch_field_is_the_create_type_or_null_and_defaults_to_unset() -> None:
    create = declared(StorageConfigIn)
    patch = declared(StorageConfigPatch)
    assert list(patch) == list(StorageConfigPatch.model_fields)  # every field read from this module
    for name, text in patch.items():
        expected = create[name] if create[name].endswith(" | None") else f"{create[name]} | None"
        assert text == expected, name
        assert StorageConfigPatch.model_fields[name].default is None, name


def test_the_patch_types_resolve_to_the_create_types() -> None:
    # The text check above would pass two aliases of one name in different modules; these resolve them.
    hints = typing.get_type_hints(StorageConfigPatch, include_extras=True)
    for name, hint in typing.get_type_hints(StorageConfigIn, include_extras=True).items():
        assert hints[name] == hint | None, name


def test_the_stored_and_answered_settings_are_the_shared_fields_and_their_own() -> None:
    shared = list(StorageFields.model_fields)
    assert list(StorageConfigIn.model_fields) == [*shared, "accessKeyId", "secretAccessKey"]
    assert list(StorageSettings.model_fields) == [*shared, "externalId"]
    assert list(StorageConfigOut.model_fields) == [*shared, "externalId", "credentialsConfigured"]
