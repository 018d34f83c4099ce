"""A synthetic FAQ knowledge base: documents (title + similar questions) and query pairs.

Each document is an (action, object) intent such as "reset password"; its questions are
paraphrase templates. Intents share actions and objects, so a retriever must combine both words
to find the right entry. Held-out test queries use templates never seen in training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ACTIONS = ["reset", "change", "cancel", "activate", "block", "update", "verify", "close"]
OBJECTS = ["card", "password", "account", "pin", "address", "payment", "subscription", "loan"]
TEMPLATES = [
    "how do i {a} my {o}",
    "i want to {a} my {o}",
    "can you help me {a} the {o}",
    "{a} {o} please",
    "where can i {a} my {o}",
    "is it possible to {a} my {o} online",
    "i need to {a} my {o} today",
    "what are the steps to {a} a {o}",
    "please {a} my {o} for me",
    "help me {a} {o}",
    "could i {a} the {o} from the app",
    "how long does it take to {a} my {o}",
]


def generate_kb(n_docs: int = 48, questions_per_doc: int = 8, seed: int = 3) -> dict[str, pd.DataFrame]:
    """A synthetic FAQ of action × object intents, with held-out query templates.

    Parameters
    ----------
    n_docs : int
        FAQ entries.
    questions_per_doc : int
        Similar (paraphrased) questions per entry.
    seed : int

    Returns
    -------
    dict of DataFrame
        ``docs`` (``doc_id``, ``title``, ``questions``), ``train`` pairs (``query``, ``positive``,
        ``doc_id``) and ``test`` queries (``query``, ``doc_id``) from templates never seen in training.
    """
    rng = np.random.default_rng(seed)
    intents = [(a, o) for a in ACTIONS for o in OBJECTS]
    pick = rng.choice(len(intents), size=min(n_docs, len(intents)), replace=False)
    docs, train, test = [], [], []
    for d, j in enumerate(sorted(pick)):
        a, o = intents[j]
        t = rng.permutation(len(TEMPLATES))
        qs = [TEMPLATES[i].format(a=a, o=o) for i in t[:questions_per_doc]]
        held = [TEMPLATES[i].format(a=a, o=o) for i in t[questions_per_doc:]]
        docs.append({"doc_id": d, "title": f"{a} {o}", "questions": qs})
        for q in qs:
            train.append(
                {
                    "query": q,
                    "positive": qs[rng.integers(len(qs))] if len(qs) > 1 else f"{a} {o}",
                    "doc_id": d,
                }
            )
            train.append({"query": q, "positive": f"{a} {o}", "doc_id": d})
        test += [{"query": q, "doc_id": d} for q in held]
    return {"docs": pd.DataFrame(docs), "train": pd.DataFrame(train), "test": pd.DataFrame(test)}


def doc_texts(docs: pd.DataFrame) -> list[str]:
    """What lexical search indexes for an entry: its title and all its similar questions."""
    return [" ".join([t, *qs]) for t, qs in zip(docs["title"], docs["questions"])]


def kb_from_documents(
    docs: pd.DataFrame, test_fraction: float = 0.1, seed: int = 3
) -> dict[str, pd.DataFrame]:
    """Training pairs and held-out queries from FAQ documents (``doc_id``, ``title``, ``questions``).

    A ``test_fraction`` of each document's similar questions (never its last one) is held out as
    test queries; every remaining question is paired with another of its questions and with the
    title, as :func:`generate_kb` does.
    """
    rng = np.random.default_rng(seed)
    kept, train, test = [], [], []
    for d, t, qs in zip(docs["doc_id"], docs["title"], docs["questions"]):
        qs = list(qs)
        n_held = min(len(qs) - 1, int(round(len(qs) * test_fraction))) if len(qs) > 1 else 0
        held = set(rng.choice(len(qs), n_held, replace=False).tolist()) if n_held else set()
        own = [q for i, q in enumerate(qs) if i not in held]
        test += [{"query": qs[i], "doc_id": d} for i in sorted(held)]
        for q in own:
            train.append(
                {"query": q, "positive": own[rng.integers(len(own))] if len(own) > 1 else t, "doc_id": d}
            )
            train.append({"query": q, "positive": t, "doc_id": d})
        kept.append({"doc_id": d, "title": t, "questions": own})
    cols = {"train": ["query", "positive", "doc_id"], "test": ["query", "doc_id"]}
    return {
        "docs": pd.DataFrame(kept),
        "train": pd.DataFrame(train, columns=cols["train"]),
        "test": pd.DataFrame(test, columns=cols["test"]),
    }


def load_documents_file(path: str, test_fraction: float = 0.1, seed: int = 3) -> dict[str, pd.DataFrame]:
    """FAQ documents from CSV, Parquet or JSON lines: ``doc_id`` (int), ``title`` (required) and
    ``questions`` (similar questions: a list, JSON text or ``a|b`` text), then
    :func:`kb_from_documents`. Unreadable or mistyped files raise ``InputError`` naming the row."""
    from assets.ingest.loaders import has_header, int_ids, read_table, require_columns, text_lists

    df = read_table(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    require_columns(df, ["doc_id", "title"], path)
    ids, _ = int_ids(df["doc_id"], "doc_id", path, "none", has_header(path))
    titles = df["title"].map(
        lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
    )
    questions = (
        text_lists(df["questions"]) if "questions" in df.columns else pd.Series([[] for _ in range(len(df))])
    )
    docs = pd.DataFrame({"doc_id": ids, "title": titles.to_numpy(), "questions": questions.to_numpy()})
    return kb_from_documents(docs, test_fraction, seed)


def documents_profile(kb: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per document for the ``kb_documents`` suite: ``doc_id``, ``title``, ``n_questions``."""
    d = kb["docs"]
    return pd.DataFrame(
        {
            "doc_id": d["doc_id"].to_numpy(),
            "title": d["title"].to_numpy(),
            "n_questions": d["questions"].map(len).to_numpy(np.int64),
        }
    )
