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
    "how do i {a} my {o}", "i want to {a} my {o}", "can you help me {a} the {o}", "{a} {o} please",
    "where can i {a} my {o}", "is it possible to {a} my {o} online", "i need to {a} my {o} today",
    "what are the steps to {a} a {o}", "please {a} my {o} for me", "help me {a} {o}",
    "could i {a} the {o} from the app", "how long does it take to {a} my {o}",
]


def generate_kb(n_docs: int = 48, questions_per_doc: int = 8, seed: int = 3) -> dict[str, pd.DataFrame]:
    """``docs`` (doc_id, title, questions), ``train`` pairs (query, positive, doc_id), ``test`` (query, doc_id)."""
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
            train.append({"query": q, "positive": qs[rng.integers(len(qs))] if len(qs) > 1 else f"{a} {o}", "doc_id": d})
            train.append({"query": q, "positive": f"{a} {o}", "doc_id": d})
        test += [{"query": q, "doc_id": d} for q in held]
    return {"docs": pd.DataFrame(docs), "train": pd.DataFrame(train), "test": pd.DataFrame(test)}
