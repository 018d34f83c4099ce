"""Every entry against the bad-input corpus: each malformed file ends in a ``dagster.Failure`` that
says what is wrong (never a raw pandas, codec or OS traceback), before any output is written.

The corpus is ``tests/bad_inputs/<entry>/`` (made by ``make_corpus.py`` there); a missing path and
a directory are added here. Each case names the text its failure must contain, or ``None`` for
an input that is valid and must load.
"""

from pathlib import Path

import dagster as dg
import pytest

from assets.features.app_assets import DictionaryConfig, feature_dictionary
from assets.features.warehouse_assets import raw_events
from assets.ingest.ingest_assets import (
    EntityProfilesConfig,
    InteractionsConfig,
    KbConfig,
    entity_profiles,
    interactions,
    kb_documents,
)
from resources.feature_store.resource import (
    CrmSourceResource,
    EmbeddedConfig,
    FeatureStoreResource,
    WarehouseLayoutResource,
)
from resources.validation import GreatExpectationsResource

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
GX = GreatExpectationsResource()
COMMON = {
    "empty": "file is empty",
    "header_only": "no data rows (header only)",
    "undecodable": "not UTF-8 text",
    "truncated.jsonl": "invalid or truncated JSON",
    "missing_path": "file not found",
    "directory": "is a directory",
}

EXPECTED = {
    "interactions": {
        **COMMON,
        "wrong_separator.csv": "missing column(s) ['user_id', 'item_id', 'ts']",
        "wrong_separator.dat": "expected 4 fields separated by '::'",
        "missing_column": "missing column(s) ['ts']",
        "word_id": "set id_mapping='stable_hash'",
        "word_rating": "rating 'good' is not a number",
        "fractional_id": "row 2: user_id '1.5' is not an integer id",
        "iso_ts": "set ts_format='iso8601'",
        "nan_rating": "expect_column_values_to_not_be_null(rating): 2 of 2 rows unexpected",
        "inf_rating": "expect_column_values_to_be_between(rating): 1 of 1 rows unexpected",
        "negative_rating": "expect_column_values_to_be_between(rating): 1 of 1 rows unexpected",
        "negative_ts": "expect_column_values_to_be_between(ts): 1 of 1 rows unexpected",
        "negative_id": "user_id -3 is negative",
        "out_of_range_id": "user_id 99999999999999999999 is beyond int64",
        "duplicate_rows": "expect_compound_columns_to_be_unique",
        "corrupt.parquet": "not a readable Parquet file",
        "bom": None,
    },
    "entity_profiles": {
        **COMMON,
        "wrong_separator": "missing column(s) ['entity_id', 'description']",
        "missing_column": "missing column(s) ['description']",
        "word_id": "set id_mapping='stable_hash'",
        "missing_id": "row 2: entity_id is missing",
        "null_description": "expect_column_values_to_not_be_null(description)",
        "inf_id": "entity_id 'inf' is not an integer id",
        "negative_id": "entity_id -1 is negative",
        "out_of_range_id": "is beyond int64",
        "duplicate_rows": "expect_column_values_to_be_unique(entity_id)",
    },
    "kb_documents": {
        **COMMON,
        "wrong_separator": "missing column(s) ['doc_id', 'title']",
        "missing_column": "missing column(s) ['title']",
        "word_id": "doc_id 'faq-1' is not an integer id",
        "missing_id": "row 2: doc_id is missing",
        "empty_title": "expect_column_value_lengths_to_be_between(title)",
        "negative_id": "doc_id -1 is negative",
        "out_of_range_id": "is beyond int64",
        "duplicate_rows": "expect_column_values_to_be_unique(doc_id)",
    },
    "crm_events": {
        **COMMON,
        "wrong_separator": "missing column(s)",
        "missing_column": "missing column(s) ['value']",
        "word_value": "row 0 (event_id=e1)",
        "bad_ts": "malformed event_ts",
        "nan_value": "non-numeric value",
        "inf_value": "non-numeric value",
        "negative_value": "negative value",
        "missing_entity": "missing entity_id",
        "duplicate_rows": "expect_column_values_to_be_unique(event_id)",
    },
    "feature_dictionary": {
        **{k: v for k, v in COMMON.items() if k != "truncated.jsonl"},
        "wrong_separator": "feature dictionary lacks columns",
        "missing_column": "feature dictionary lacks columns",
        "word_id": "id 'abc' is not an integer",
        "word_window": "windows 'week' are not integers",
        "nan_function": "unknown window function(s) ['NAN']",
        "inf_window": "windows 'inf' are not integers",
        "negative_id": "id '-1' is not an integer",
        "out_of_range_id": "is not an integer in [0, 2^63)",
        "duplicate_rows": "duplicate name",
    },
}


def _expected(entry: str, path: Path) -> str | None:
    table = EXPECTED[entry]
    for key in (path.name, path.stem):
        if key in table:
            return table[key]
    raise KeyError(f"no expected outcome for {entry}/{path.name}: add one to EXPECTED")


def _materialize(entry: str, path: Path, tmp_path: Path, events: list) -> list:
    """Run the entry's asset body directly, appending what it yields to ``events`` as it goes (so
    a test still sees what came out before a raise); returns ``events``."""
    if entry == "interactions":
        gen = interactions(
            dg.build_asset_context(), config=InteractionsConfig(source="file", path=str(path)), gx=GX
        )
    elif entry == "entity_profiles":
        gen = entity_profiles(config=EntityProfilesConfig(source="file", path=str(path)), gx=GX)
    elif entry == "kb_documents":
        gen = kb_documents(config=KbConfig(source="file", path=str(path), test_fraction=0.5), gx=GX)
    elif entry == "crm_events":
        ctx = dg.build_asset_context(partition_key="2026-03-01")
        gen = raw_events(
            ctx,
            crm=CrmSourceResource(events_path=str(path)),
            gx=GX,
            warehouse_layout=WarehouseLayoutResource(),
        )
    else:
        events.append(
            feature_dictionary(
                dg.build_asset_context(),
                config=DictionaryConfig(path=str(path)),
                feature_store=_dictionary_store(tmp_path),
                warehouse_layout=WarehouseLayoutResource(),
            )
        )
        return events
    for ev in gen:
        events.append(ev)
    return events


def _dictionary_store(tmp_path: Path) -> FeatureStoreResource:
    return FeatureStoreResource(backend=EmbeddedConfig(path=str(tmp_path / "fs.sqlite")))


def _dictionary_rows(tmp_path: Path) -> list:
    from assets.features.layers import table_specs

    return list(_dictionary_store(tmp_path).open(table_specs().values()).scan("feature_dictionary"))


def cases():
    for entry in EXPECTED:
        for path in sorted((CORPUS / entry).iterdir()):
            yield pytest.param(entry, path, id=f"{entry}/{path.name}")
        yield pytest.param(entry, CORPUS / entry / "missing_path.csv", id=f"{entry}/missing_path")
        yield pytest.param(entry, CORPUS / entry, id=f"{entry}/directory")


@pytest.mark.parametrize("entry,path", list(cases()))
def test_bad_input_is_stopped_with_a_clear_message(entry, path, tmp_path):
    expected = (
        _expected(entry, path)
        if path.exists() and path.is_file()
        else EXPECTED[entry]["directory" if path.is_dir() else "missing_path"]
    )
    if expected is None:
        events = _materialize(entry, path, tmp_path, [])
        assert any(isinstance(e, dg.Output) for e in events)
        return
    yielded: list = []
    with pytest.raises(dg.Failure) as err:  # any other exception type fails the test: a raw traceback
        _materialize(entry, path, tmp_path, yielded)
    assert expected in err.value.description, err.value.description
    assert not err.value.allow_retries  # bad input fails the same way every time: never retried
    # Nothing reached the IO manager (no Output) and nothing reached the store.
    assert not any(isinstance(e, (dg.Output, dg.MaterializeResult)) for e in yielded), yielded
    if entry == "feature_dictionary":
        assert _dictionary_rows(tmp_path) == []
    if "expect_" not in expected and entry != "crm_events":  # loader failures name the file
        assert str(path) in err.value.description or path.name in err.value.description


def test_every_corpus_file_has_an_expectation():
    for entry in EXPECTED:
        for path in (CORPUS / entry).iterdir():
            _expected(entry, path)
