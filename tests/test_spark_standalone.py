"""The Spark data plane on a real standalone cluster: a master and two workers started here from
``pyspark``'s own ``spark-class``, the chain run on them with ``RECSTACK_SPARK_MASTER=spark://…``
(the setting production uses), and its vectors identical in contract to ``local[*]``'s."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.vectors import l2_normalize, table_to_vectors
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from recstack import settings
from resources.storage import VersionedStore
from tests.support import servers

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-standalone")
    try:
        with servers.spark_standalone(folder) as url:
            yield url, folder
    except servers.NotInstalled as e:
        servers.skip_not_installed(e)


def test_the_chain_runs_on_a_standalone_cluster_and_matches_local(cluster, spark_resource, tmp_path):
    url, folder = cluster
    df, _ = generate_interactions(SyntheticSpec(n_interactions=6000, n_communities=4, seed=11))
    inter = ImplicitConversion("binary").apply(df)
    path = tmp_path / "interactions.parquet"
    inter.to_parquet(path)
    home = tmp_path / "home"
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.spark_chain", str(home), str(path)],
        env=settings.child_env(RECSTACK_SPARK_MASTER=url, RECSTACK_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # It ran on the cluster: one application, with an executor on each worker.
    apps = list((folder / "work").glob("app-*"))
    assert len(apps) == 1 and sorted(p.name for p in apps[0].iterdir()) == ["0", "1"], apps
    store = VersionedStore(str(home / "storage"))
    local = train_als("spark", str(path), AlsParams(rank=8, iterations=5), spark=spark_resource.get_session())
    for key, ids, factors in (
        ("als_user_vectors", local.user_ids, local.user_factors),
        ("als_item_vectors", local.item_ids, local.item_factors),
    ):
        got_ids, got, meta = table_to_vectors(store.read([key]))
        assert np.array_equal(got_ids, ids) and got.shape == factors.shape == (len(ids), 8)
        assert (
            meta["metric"] == "ip" and meta["model_name"] == "recstack-als" and meta["model_version"] == "1"
        )
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = np.sum(got * l2_normalize(factors), axis=1)
        assert cos.min() > 0.999, (key, cos.min())  # the same model, up to float summation order
    index = store.read(["faiss_index_als_users"])
    assert sorted(index.ids.tolist()) == local.user_ids.tolist()
    model = store.read(["als_model"])
    assert model.params["engine"] == "spark" and model.params["n_pairs"] == local.params["n_pairs"]
