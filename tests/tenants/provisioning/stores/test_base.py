"""Every kind of store implements the whole DatabaseStore interface, with the same signatures."""

import inspect

import pytest

from tenants.provisioning.stores import DatabaseStore, PostgreSQLStore, SQLiteStore, main_store

VERBS = [name for name in vars(DatabaseStore) if not name.startswith("_") and callable(getattr(DatabaseStore, name))]


def test_the_interface_names_the_verbs_of_the_design():
    assert {"exists", "create", "clone", "rename", "drop", "list"} <= set(VERBS)


@pytest.mark.parametrize("kind", [PostgreSQLStore, SQLiteStore])
@pytest.mark.parametrize("verb", VERBS)
def test_each_store_implements_each_verb_with_the_interfaces_signature(kind, verb):
    assert verb in vars(kind), f"{kind.__name__} lacks {verb}"
    expected = inspect.signature(getattr(DatabaseStore, verb))
    assert inspect.signature(getattr(kind, verb)).parameters.keys() == expected.parameters.keys()


def test_the_main_store_of_the_suite_is_its_postgresql_server(db):
    store = main_store()
    assert isinstance(store, PostgreSQLStore) and store.vendor == "postgresql"


def test_a_sqlite_store_does_the_verbs_on_files_of_its_folder(tmp_path):
    store = SQLiteStore(tmp_path)
    store.create("alpha")
    store.clone("beta", "alpha")
    store.rename("beta", "gamma")
    assert store.list("") == ["alpha", "gamma"] and store.exists("gamma") and not store.exists("beta")
    store.drop("alpha")
    store.drop("alpha")  # gone already: nothing happens
    assert store.list("") == ["gamma"]
