"""The pretrained start of the two-tower: offline loading from its registry package, fine-tuning by
the same InfoNCE loop, save/load without pickle, and the pyfunc through the one MLflow path."""

import socket

import numpy as np
import pytest

from assets.embeddings.pretrained_text import load_pretrained, package_model_dir
from assets.embeddings.text import document_vectors
from assets.embeddings.two_tower import TwoTower, TwoTowerParams, train_two_tower
from assets.evaluation.faq import evaluate_encoder
from assets.ingest.kb import generate_kb

TINY = dict(init="pretrained", max_len=24, batch_size=16, max_epochs=1, finetune_lr=5e-5, val_fraction=0.0)


@pytest.fixture(scope="module")
def zero_shot():
    vocab, enc = load_pretrained("all-MiniLM-L6-v2")
    return TwoTower(vocab, enc, TwoTowerParams(init="pretrained", max_len=24))


def test_the_weights_come_from_the_installed_package_offline(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError(f"network access while loading the pretrained encoder: {a}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    path = package_model_dir("all-MiniLM-L6-v2")
    assert (path / "model.safetensors").exists() and "site-packages" in str(path)
    vocab, enc = load_pretrained("all-MiniLM-L6-v2")
    v = TwoTower(vocab, enc, TwoTowerParams(init="pretrained", max_len=24)).encode(
        ["I forgot my card PIN", "how do I reset my pin number", "what is the exchange rate"]
    )
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    # Pretrained: a paraphrase is closer than an unrelated question, before any training.
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2, (v[0] @ v[1], v[0] @ v[2])
    with pytest.raises(
        ValueError, match=r"unknown pretrained encoder 'bert-huge'; known: \['all-MiniLM-L6-v2'\]"
    ):
        package_model_dir("bert-huge")


def test_fine_tuning_moves_the_encoder_and_round_trips_without_pickle(tmp_path, zero_shot):
    kb = generate_kb(n_docs=24, questions_per_doc=6)
    train, docs, test = kb["train"], kb["docs"], kb["test"]
    model = train_two_tower(
        train["query"].tolist(), train["positive"].tolist(), train["doc_id"].tolist(), TwoTowerParams(**TINY)
    )
    assert model.history["epochs"] == 1 and len(model.vocab) == 30522  # the package's own tokenizer

    def pair_loss(m):  # InfoNCE of the training pairs, one batch (the quantity the loop lowers)
        s = m.encode(train["query"].tolist()) @ m.encode(train["positive"].tolist()).T / 0.05
        same = train["doc_id"].to_numpy()[:, None] == train["doc_id"].to_numpy()[None, :]
        s = np.where(same & ~np.eye(len(s), dtype=bool), -np.inf, s)  # a same-entry pair is no negative
        return float(np.mean(np.log(np.exp(s - s.max(1, keepdims=True)).sum(1)) + s.max(1) - np.diag(s)))

    assert pair_loss(model) < 0.8 * pair_loss(zero_shot), (pair_loss(zero_shot), pair_loss(model))
    # And it still retrieves: held-out templates find their entry (zero-shot is perfect here already).
    assert evaluate_encoder(model.encode, docs, test)["mrr@10"] >= 0.95
    model.save(tmp_path / "tt")
    files = {p.name for p in (tmp_path / "tt").rglob("*") if p.is_file()}
    assert "model.safetensors" in files and not {f for f in files if f.endswith((".pt", ".bin", ".pkl"))}
    back = TwoTower.load(tmp_path / "tt")
    texts = ["how can i block my card", docs["title"].iloc[0]]
    np.testing.assert_allclose(back.encode(texts), model.encode(texts), atol=1e-5)
    assert back.params.init == "pretrained"
    np.testing.assert_allclose(
        document_vectors(back.encode, docs.head(3)), document_vectors(model.encode, docs.head(3)), atol=1e-5
    )


def test_the_pretrained_pyfunc_goes_through_the_one_mlflow_path(tmp_path):
    from assets.embeddings.two_tower_assets import TWO_TOWER_PYFUNC
    from resources.mlflow_tracking import MlflowResource

    kb = generate_kb(n_docs=8, questions_per_doc=4)
    train = kb["train"]
    model = train_two_tower(
        train["query"].tolist(), train["positive"].tolist(), train["doc_id"].tolist(), TwoTowerParams(**TINY)
    )
    mlf = MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art")
    )
    reg = mlf.log_and_register(
        "recstack-two-tower-test",
        TWO_TOWER_PYFUNC,
        {"encoder": model.save},
        run_name="pretrained",
        requirements=("torch", "transformers"),
    )
    loaded = mlf.load_pyfunc("recstack-two-tower-test", reg.version)
    texts = ["reset my password", "where is my card"]
    np.testing.assert_allclose(np.asarray(loaded.predict(texts)), model.encode(texts), atol=1e-5)


def test_entity_vectors_can_take_their_text_part_from_the_packaged_encoder(tmp_path, monkeypatch):
    """``text_encoder``: the description's vector is MiniLM's (no word vectors trained), close
    descriptions land close, and the saved encoder reloads offline with the same vectors."""
    import pandas as pd

    import assets.embeddings.entity_vectors as ev

    monkeypatch.setattr(ev, "word_vectors", lambda *a: pytest.fail("word vectors trained"))
    df = pd.DataFrame(
        {
            "description": [
                "retail bank offering mortgages and personal loans",
                "mortgage lender and savings bank for households",
                "professional football club and stadium operator",
                "",
            ],
            "type": ["bank", "bank", "sport", "sport"],
        }
    )
    p = ev.EntityVectorParams(text_encoder="all-MiniLM-L6-v2", field_weights={"type": 0.3}, lsa_dim=0)
    enc = ev.EntityEncoder.fit(df, p)
    vecs, known = enc.encode(df)
    assert known.tolist() == [True, True, True, False] and vecs.shape[1] == 384 + 2 == enc.dim
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    np.testing.assert_allclose(vecs[3, :384], 0.0)  # no text: the fields alone
    enc.save(tmp_path / "enc")
    assert (tmp_path / "enc" / "sentence" / "model.safetensors").exists()
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail(f"network access: {a}"))
    back = ev.EntityEncoder.load(tmp_path / "enc")
    np.testing.assert_allclose(back.encode(df)[0], vecs, atol=1e-5)
