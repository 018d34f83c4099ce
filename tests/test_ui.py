"""The Dagster and MLflow UIs, driven in headless Chromium as a person would use them.

Both UIs serve the home that the session's slice run left behind (``materialized_slice``): a
temporary Dagster instance and a SQLite MLflow registry. The browser is Debian's ``chromium``
(installed by ``make test``), driven by Playwright's Python client with ``executable_path`` set,
so nothing is downloaded. Screenshots go to ``test-output/ui/`` in the repository.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import dagster as dg
import pytest

from recstack import settings
from tests.support import servers

pytestmark = pytest.mark.slow

CHROMIUM = settings.env("RECSTACK_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "ui"
STAGES = ("ingest", "features", "tuning", "embeddings", "indexes", "retrieval", "evaluation")
# Chromium's background services try hosts this sandbox cannot reach; keep it to the page.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        servers.skip_not_installed(
            servers.NotInstalled(
                f"no Chromium at {CHROMIUM} (Debian package `chromium`; `make test` installs it where apt "
                f"can run)"
            )
        )
    from playwright.sync_api import sync_playwright  # a dev dependency: installed by make, never skipped

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page(viewport={"width": 1600, "height": 2400})
    p.set_default_timeout(60_000)
    yield p
    p.close()


@pytest.fixture(scope="module")
def dagster_ui(materialized_slice, tmp_path_factory):
    """``dagster dev`` over the slice's instance: the daemon dequeues runs launched from the UI and
    ticks the sensor."""
    try:
        with servers.dagster_dev(tmp_path_factory.mktemp("dagster-ui"), materialized_slice.env) as url:
            yield url
    except servers.NotInstalled as e:
        servers.skip_not_installed(e)


def _open(page, url: str) -> None:
    """Open ``url`` and dismiss Dagster's first-visit "Join the Dagster community" modal if it shows."""
    page.goto(url)
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=5_000)
        skip.click()
    except Exception:  # noqa: BLE001 - the modal shows once per browser profile; later pages have none
        pass


def test_asset_graph_shows_every_stage(page, dagster_ui, materialized_slice):
    _open(page, f"{dagster_ui}/asset-groups")
    sidebar = page.locator("body")
    for stage in STAGES:
        sidebar.get_by_text(stage, exact=True).first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "dagster-lineage.png"))
    # The catalog lists every asset the slice materialized, each with its group.
    _open(page, f"{dagster_ui}/assets")
    page.get_by_text("als_model", exact=True).first.wait_for(state="visible")
    text = page.inner_text("body")
    for key in (
        "interactions",
        "als_model",
        "als_item_vectors",
        "faiss_index_als_items",
        "lookalike_audiences",
        "als_evaluation",
        "als_promotion",
        "milvus_collection_entities",
        "kb_search_evaluation",
    ):
        assert key in text, key
    page.screenshot(path=str(SHOTS / "dagster-catalog.png"))


def test_asset_page_shows_rows_metrics_mlflow_link_and_plot(page, dagster_ui):
    _open(page, f"{dagster_ui}/assets/als_tuning")
    page.get_by_text("history_plot").first.wait_for(state="visible")
    body = page.inner_text("body")
    for key in ("trials", "best_val_ndcg@10", "default_val_ndcg@10", "mlflow_run"):
        assert key in body, key
    link = page.locator("a[href*='#/experiments/']").first
    assert "/runs/" in link.get_attribute("href")
    # Markdown metadata opens in a dialog from its row; the plot is an inlined PNG.
    page.locator("tr", has_text="history_plot").get_by_text("[Show Markdown]").click()
    plot = page.locator("[role=dialog] img[src^='data:image/png']").first
    plot.wait_for(state="visible")
    assert plot.evaluate("img => img.naturalWidth") > 100  # decoded and drawn, not a broken image
    page.screenshot(path=str(SHOTS / "dagster-als-tuning.png"))
    page.get_by_role("button", name="Close").click()
    _open(page, f"{dagster_ui}/assets/als_model")
    page.get_by_text("model_version").first.wait_for(state="visible")
    body = page.inner_text("body")
    for key in ("users", "items", "rank", "engine", "mlflow_run"):
        assert key in body, key
    page.screenshot(path=str(SHOTS / "dagster-als-model.png"), full_page=True)


def test_asset_checks_tab_shows_the_drift_check_with_its_numbers(page, dagster_ui):
    """The checks a platform engineer watches are on the asset's page: the vectors' drift check
    against the previous version, with the threshold it was held to."""
    _open(page, f"{dagster_ui}/assets/als_item_vectors?view=checks")
    page.get_by_text("als_item_vectors_drift").first.wait_for(state="visible")
    body = page.inner_text("body")
    assert "als_item_vectors_suite" in body and "als_item_vectors_drift" in body
    page.get_by_text("als_item_vectors_drift").first.click()
    page.get_by_text("threshold").first.wait_for(state="visible")
    body = page.inner_text("body")
    assert "no previous version with a snapshot: passes" in body  # the slice's first version
    page.screenshot(path=str(SHOTS / "dagster-checks.png"))


def _sensor_ticks(home, name: str, wait_s: float = 90) -> list:
    """The sensor's ticks in the instance, newest first, once the daemon has evaluated it at least once."""
    deadline = time.monotonic() + wait_s
    while True:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            states = [s for s in instance.all_instigator_state() if s.instigator_name == name]
            ticks = [
                t for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id, limit=5)
            ]
        if ticks or time.monotonic() > deadline:
            return sorted(ticks, key=lambda t: t.timestamp, reverse=True)
        time.sleep(2)


def test_materialization_launched_from_the_ui_succeeds(page, dagster_ui, materialized_slice):
    home = materialized_slice.home / "dagster"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        before = {r.run_id for r in instance.get_runs()}
    _open(page, f"{dagster_ui}/assets/feature_dictionary")
    page.locator("button").filter(has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
    deadline = time.monotonic() + 240
    run = None
    while time.monotonic() < deadline:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            new = [r for r in instance.get_runs() if r.run_id not in before]
        ui_runs = [r for r in new if r.asset_selection == {dg.AssetKey("feature_dictionary")}]
        if ui_runs and ui_runs[0].is_finished:
            run = ui_runs[0]
            break
        time.sleep(2)
    assert run is not None, "no run launched from the UI finished within 4 minutes"
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    # The sensor saw v1 already served: no rebuild, *and* it did evaluate (a tick with its cursor).
    ticks = _sensor_ticks(home, "champion_alias_sensor")
    assert ticks and ticks[0].cursor and json.loads(ticks[0].cursor)["seen"] == {"recstack-als": "1"}, ticks[
        :1
    ]
    assert not [r for r in new if r.job_name == "rebuild_als_serving"]
    # The run's page says so too.
    _open(page, f"{dagster_ui}/runs/{run.run_id}")
    page.get_by_text("Success").first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "dagster-run-from-ui.png"))


@pytest.fixture(scope="module")
def mlflow_ui(materialized_slice, tmp_path_factory):
    try:
        with servers.mlflow_server(
            tmp_path_factory.mktemp("mlflow-ui"), backend_uri=materialized_slice.tracking_uri
        ) as url:
            yield url
    except servers.NotInstalled as e:
        servers.skip_not_installed(e)


def test_mlflow_ui_lists_models_with_champion_and_challenger(page, mlflow_ui, materialized_slice):
    page.goto(f"{mlflow_ui}/#/models")
    # MLflow 3.17 opens a "new Model Registry UI" modal over the list on a first visit.
    close = page.locator("[role=dialog] [aria-label=Close]")
    try:
        close.first.wait_for(state="visible", timeout=10_000)
        close.first.click()
    except Exception:  # noqa: BLE001 - no modal this time
        pass
    page.get_by_text("recstack-als", exact=True).first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "mlflow-models.png"))
    from mlflow import MlflowClient

    registry = MlflowClient(materialized_slice.tracking_uri, registry_uri=materialized_slice.tracking_uri)
    for name in ("recstack-als", "recstack-item2vec", "recstack-two-tower", "recstack-entity-vectors"):
        aliases = set(registry.get_registered_model(name).aliases)  # what the UI must show
        # The two-tower's first version stays challenger where the test KB cannot separate it from BM25.
        assert "challenger" in aliases and (name == "recstack-two-tower" or "champion" in aliases), (
            name,
            aliases,
        )
        page.goto(
            "about:blank"
        )  # a full load per model: a hash-only change can leave the previous model shown
        page.goto(f"{mlflow_ui}/#/models/{name}")
        # Each version row shows its aliases as tags ("@ alias", title=alias).
        for alias in aliases:
            page.locator(f"[role=status][title='{alias}']").first.wait_for(state="visible")
        shown = {t.get_attribute("title") for t in page.locator("[role=status][title]").all()}
        assert shown >= aliases, (name, shown, aliases)
        assert (
            page.get_by_text(re.compile(r"recstack\.promotion")).count() >= 1
        )  # the decision is on the version
        page.screenshot(path=str(SHOTS / f"mlflow-{name}.png"))
