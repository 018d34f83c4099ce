"""A two-tower text encoder trained with InfoNCE over in-batch negatives (torch).

Two starts (``TwoTowerParams.init``):

- ``scratch``: token embedding + learned positions → 2 transformer encoder layers → masked mean
  pooling → MLP head → L2 normalisation, over a vocabulary built from the training texts.
- ``pretrained``: a sentence encoder whose weights ship in a pinned registry package
  (:mod:`assets.embeddings.pretrained_text`, ``all-MiniLM-L6-v2``), with its own tokenizer,
  fine-tuned by the same loop at a small learning rate (``finetune_lr``).

The query and document towers share parameters (one encoder), so questions and FAQ entries live
in one space.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from assets.embeddings.pretrained_text import PretrainedEncoder, PretrainedVocab, load_pretrained
from assets.embeddings.text import Tokenizer, Vocab

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwoTowerParams:
    """Encoder architecture and InfoNCE training parameters of the two-tower text encoder.

    Attributes
    ----------
    dim : int
        Transformer width.
    layers, heads : int
        Transformer layers and attention heads.
    out_dim : int
        Output (embedding) dimension.
    max_len : int
        Tokens kept per text.
    dropout : float
        Dropout inside the encoder.
    tau : float
        InfoNCE temperature.
    lr : float
        Peak learning rate (AdamW).
    batch_size : int
        Pairs per batch; the rest of the batch are a query's negatives.
    max_epochs : int
        Epoch budget.
    patience : int
        Stop after this many epochs without a better validation MRR@10.
    val_fraction : float
        Training queries held out for early stopping.
    seed : int
        Seed of initialisation, batching and hold-out.
    tokenizer : {"char", "jieba", "word"}
        How texts become tokens.
    min_freq : int
        Tokens seen fewer times map to [UNK].
    symmetric : bool
        Also score documents → queries (both directions of the batch matrix).
    resample_positives : bool
        Each epoch, draw each query's positive afresh from its group.
    warmup_fraction : float
        Linear warm-up over this fraction of steps, then linear decay to zero.
    token_dropout : float
        Training only: replace this fraction of tokens by [UNK] (augmentation).
    init : {"scratch", "pretrained"}
        Train the small transformer from random weights, or fine-tune the packaged pretrained
        encoder ``pretrained`` (its width replaces ``dim``/``layers``/``heads``/``out_dim``, its
        tokenizer replaces ``tokenizer``/``min_freq``).
    pretrained : str
        Which packaged encoder (``init="pretrained"``).
    finetune_lr : float
        Peak learning rate when fine-tuning the pretrained encoder (``lr`` is the scratch one).
    """

    dim: int = 64
    layers: int = 2
    heads: int = 4
    out_dim: int = 64
    max_len: int = 48
    dropout: float = 0.1
    tau: float = 0.05
    lr: float = 2e-3
    batch_size: int = 32
    max_epochs: int = 15
    patience: int = 3
    val_fraction: float = 0.1
    seed: int = 0
    tokenizer: Tokenizer = "char"
    min_freq: int = 1
    symmetric: bool = True
    resample_positives: bool = True
    warmup_fraction: float = 0.05
    token_dropout: float = 0.1
    init: Literal["scratch", "pretrained"] = "scratch"
    pretrained: str = "all-MiniLM-L6-v2"
    finetune_lr: float = 3e-5


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, p: TwoTowerParams):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, p.dim, padding_idx=0)
        self.pos = nn.Embedding(p.max_len, p.dim)
        layer = nn.TransformerEncoderLayer(
            p.dim, p.heads, dim_feedforward=2 * p.dim, dropout=p.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, p.layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(p.dim, p.dim), nn.GELU(), nn.Linear(p.dim, p.out_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != 0
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))[None]
        x = self.encoder(x, src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return F.normalize(self.head(pooled), dim=-1)


def info_nce(
    q: torch.Tensor,
    d: torch.Tensor,
    tau: float,
    symmetric: bool = False,
    hard: torch.Tensor | None = None,
    hard_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives: cross-entropy of ``q @ d.T / tau`` against the diagonal.

    ``symmetric`` averages it with the same loss over the transposed matrix (each document picks
    its query out of the batch), as in CLIP. ``hard`` (``(m, dim)``) adds mined negatives as extra
    columns of every query's row; ``hard_mask`` ``(len(q), m)`` marks those that must not count
    as a query's negative (they belong to its own group).
    """
    logits = q @ d.T / tau
    labels = torch.arange(len(q), device=q.device)
    if hard is not None and len(hard):
        extra = q @ hard.T / tau
        if hard_mask is not None:
            extra = extra.masked_fill(hard_mask, float("-inf"))
        loss = F.cross_entropy(torch.cat([logits, extra], 1), labels)
    else:
        loss = F.cross_entropy(logits, labels)
    return (loss + F.cross_entropy(logits.T, labels)) / 2 if symmetric else loss


def pad(batch: list[list[int]], max_len: int) -> torch.Tensor:
    n = min(max_len, max(len(x) for x in batch))
    out = torch.zeros(len(batch), n, dtype=torch.long)
    for i, x in enumerate(batch):
        out[i, : min(len(x), n)] = torch.tensor(x[:n])
    return out


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def token_ids(vocab, texts: list[str], max_len: int) -> list[list[int]]:
    """Each text's token ids (a pretrained tokenizer encodes the batch at once)."""
    if hasattr(vocab, "encode_batch"):
        return vocab.encode_batch(list(texts), max_len)
    return [vocab.encode(t, max_len) for t in texts]


class TwoTower:
    """Vocabulary + encoder; ``encode(texts)`` returns unit vectors (float32, numpy)."""

    def __init__(
        self,
        vocab: Vocab | PretrainedVocab,
        model: TextEncoder | PretrainedEncoder,
        params: TwoTowerParams,
        history: dict | None = None,
    ):
        self.vocab, self.model, self.params, self.history = vocab, model, params, history or {}

    @property
    def dim(self) -> int:
        return self.model.out_dim if isinstance(self.model, PretrainedEncoder) else self.params.out_dim

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 512) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings")
        if self.model.training:  # eval() walks every module: a tenth of a one-query encode
            self.model.eval()
        dev = next(self.model.parameters()).device
        out = []
        for i in range(0, len(texts), batch_size):
            ids = pad(
                token_ids(self.vocab, texts[i : i + batch_size], self.params.max_len), self.params.max_len
            )
            out.append(self.model(ids.to(dev)).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.params.init == "pretrained":  # safetensors + JSON configuration + tokenizer files
            self.model.save(path / "encoder")
            self.vocab.save(path / "encoder")
        else:
            self.vocab.save(path / "vocab.json")
            torch.save({k: v.cpu() for k, v in self.model.state_dict().items()}, path / "weights.pt")
        (path / "params.json").write_text(
            json.dumps({"params": asdict(self.params), "history": self.history})
        )

    @classmethod
    def load(cls, path: str | Path) -> TwoTower:
        path = Path(path)
        meta = json.loads((path / "params.json").read_text())
        p = TwoTowerParams(**meta["params"])
        if p.init == "pretrained":
            vocab = PretrainedVocab.from_dir(path / "encoder", p.pretrained)
            return cls(
                vocab, PretrainedEncoder.from_dir(path / "encoder").to(device()), p, meta.get("history")
            )
        vocab = Vocab.load(path / "vocab.json")
        model = TextEncoder(len(vocab), p)
        model.load_state_dict(
            torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        )  # tensors only
        return cls(vocab, model.to(device()), p, meta.get("history"))


def _mrr(q: np.ndarray, d: np.ndarray, groups: np.ndarray) -> float:
    """MRR@10 of each query's own positive among all validation positives; positives of the
    query's own group are not counted as competitors (they are not wrong answers)."""
    s = q @ d.T
    other = groups[None, :] != groups[:, None]
    rank = ((s > np.diag(s)[:, None]) & other).sum(1) + 1
    return float(np.mean(np.where(rank <= 10, 1.0 / rank, 0.0)))


def train_two_tower(
    queries: list[str],
    positives: list[str],
    groups: list | None = None,
    params: TwoTowerParams = TwoTowerParams(),
    corpus: list[str] | None = None,
    validate: Callable[[TwoTower], float] | None = None,
    start: TwoTower | None = None,
    hard_negatives: list | None = None,
    n_hard: int = 2,
) -> TwoTower:
    """Train the shared-tower encoder on ``(query, positive)`` pairs with in-batch negatives (InfoNCE).

    Parameters
    ----------
    queries, positives : list of str
        The pairs.
    groups : list, optional
        The group of each pair (e.g. its FAQ entry): two pairs of one group never share a batch,
        where they would be each other's false negatives; with ``resample_positives`` each epoch
        pairs every query with a positive drawn afresh from its group's positives.
    params : TwoTowerParams
    corpus : list of str, optional
        Extra texts for the vocabulary (e.g. every document), beyond the pairs.
    validate : callable, optional
        ``validate(model) -> score`` after each epoch (e.g. retrieval MRR@10 on held-out queries);
        without it, the held-out ``val_fraction`` of pairs is scored by MRR@10.
    start : TwoTower, optional
        Continue from a copy of this encoder (its vocabulary and weights; ``params`` give the
        training loop), e.g. a second encoder trained from the first stage's.
    hard_negatives : list, optional
        Per pair, the groups of its mined hard negatives (e.g. the wrong entries the first stage
        ranks highest): each step adds ``n_hard`` of them per query, each as a text drawn from
        that group's positives, as extra negatives of every query in the batch (never of a query
        of the same group).
    n_hard : int
        Hard negatives drawn per query and step.

    Returns
    -------
    TwoTower
        The best epoch's weights (training stops after ``patience`` epochs without a better
        score), with the per-epoch ``history``. Deterministic on CPU for a given ``seed``.
    """
    if not queries or len(queries) != len(positives):
        raise ValueError("need a non-empty list of (query, positive) pairs")
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    if start is not None:
        vocab, model = start.vocab, copy.deepcopy(start.model)
        pre = isinstance(model, PretrainedEncoder)
        lr, unk = (params.finetune_lr, vocab.unk_id) if pre else (params.lr, 1)
    elif params.init == "pretrained":
        vocab, model = load_pretrained(params.pretrained)
        lr, unk = params.finetune_lr, vocab.unk_id
    else:
        texts = list(corpus or []) + list(queries) + list(positives)
        vocab = Vocab.build(texts, params.tokenizer, params.min_freq)
        model, lr, unk = TextEncoder(len(vocab), params), params.lr, 1
    dev = device()
    model = model.to(dev)
    q_ids = token_ids(vocab, queries, params.max_len)
    p_ids = token_ids(vocab, positives, params.max_len)
    g = np.asarray(groups if groups is not None else np.arange(len(queries)))
    perm = rng.permutation(len(queries))
    n_val = max(1, int(len(perm) * params.val_fraction)) if len(perm) > 10 and params.val_fraction > 0 else 0
    val, tr = perm[:n_val], perm[n_val:]
    pool = _group_pools(tr, g, positives) if params.resample_positives else None
    hard_pool = (pool or _group_pools(tr, g, positives)) if hard_negatives is not None else None
    steps = params.max_epochs * max(1, math.ceil(len(tr) / params.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, int(steps * params.warmup_fraction))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: min((t + 1) / warm, max(0.05, (steps - t) / max(1, steps - warm)))
    )
    tt = TwoTower(vocab, model, params)
    best, best_state, bad, hist = -1.0, None, 0, {"val_mrr": [], "loss": []}
    t0 = time.perf_counter()
    for epoch in range(params.max_epochs):
        model.train()
        losses = []
        for batch in _batches(tr, g, params.batch_size, rng):
            pos = [pool[g[i]][rng.integers(len(pool[g[i]]))] for i in batch] if pool is not None else batch
            q = model(
                _drop(pad([q_ids[i] for i in batch], params.max_len), params.token_dropout, unk).to(dev)
            )
            d = model(_drop(pad([p_ids[j] for j in pos], params.max_len), params.token_dropout, unk).to(dev))
            hard, mask = None, None
            if hard_pool is not None:
                neg, neg_groups = _draw_hard(batch, hard_negatives, hard_pool, g, n_hard, rng)
                if neg:
                    hard = model(
                        _drop(pad([p_ids[j] for j in neg], params.max_len), params.token_dropout, unk).to(dev)
                    )
                    mask = torch.as_tensor(g[batch][:, None] == np.asarray(neg_groups)[None, :]).to(dev)
            loss = info_nce(q, d, params.tau, params.symmetric, hard, mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        if validate is not None:
            vm = float(validate(tt))
        elif n_val:
            vm = _mrr(tt.encode([queries[i] for i in val]), tt.encode([positives[i] for i in val]), g[val])
        else:
            vm = 0.0
        hist["loss"].append(float(np.mean(losses)) if losses else math.nan)
        hist["val_mrr"].append(vm)
        log.info(
            "two-tower epoch %d loss %.4f val MRR@10 %.4f (%.0f s)",
            epoch,
            hist["loss"][-1],
            vm,
            time.perf_counter() - t0,
        )
        if vm > best + 1e-4 or (validate is None and not n_val):
            best, bad = vm, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= params.patience:
                break
    model.load_state_dict(best_state)
    hist.update(
        best_val_mrr=best,
        epochs=len(hist["loss"]),
        train_seconds=round(time.perf_counter() - t0, 1),
        device=str(dev),
    )
    return TwoTower(vocab, model, params, hist)


def _draw_hard(batch, hard_negatives, pool: dict, groups: np.ndarray, n: int, rng) -> tuple[list, list]:
    """Up to ``n`` hard negatives per query of ``batch``: groups drawn from its mined list (those
    with training texts), each as the pair index of a text drawn from that group's pool; and
    their groups."""
    picked, picked_groups = [], []
    for i in batch:
        cands = [h for h in hard_negatives[i] if h in pool and h != groups[i]]
        if not cands:
            continue
        for h in rng.choice(len(cands), min(n, len(cands)), replace=False):
            members = pool[cands[h]]
            picked.append(members[rng.integers(len(members))])
            picked_groups.append(cands[h])
    return picked, picked_groups


def _drop(ids: torch.Tensor, p: float, unk: int = 1) -> torch.Tensor:
    """Token dropout: each real token becomes [UNK] (id ``unk``) with probability ``p`` (padding
    is kept)."""
    if p <= 0:
        return ids
    return torch.where((torch.rand(ids.shape) < p) & (ids > 0), torch.full_like(ids, unk), ids)


def _group_pools(idx: np.ndarray, groups: np.ndarray, positives: list[str]) -> dict:
    """By group, one training pair index per distinct positive text: the positives a query of that
    group may be drawn with, each equally likely (a title repeated in many pairs is one entry)."""
    pools: dict = {}
    seen: set = set()
    for i in idx:
        key = (groups[i], positives[i])
        if key not in seen:
            seen.add(key)
            pools.setdefault(groups[i], []).append(int(i))
    return pools


def _batches(idx: np.ndarray, groups: np.ndarray, size: int, rng) -> list[list[int]]:
    """Shuffled batches in which no group appears twice."""
    order = rng.permutation(idx)
    batches, cur, seen = [], [], set()
    pending = list(order)
    while pending:
        rest = []
        for i in pending:
            if groups[i] in seen:
                rest.append(i)
                continue
            cur.append(i)
            seen.add(groups[i])
            if len(cur) == size:
                batches.append(cur)
                cur, seen = [], set()
        if cur and rest and len(rest) == len(pending):  # only same-group items left: flush
            batches.append(cur)
            cur, seen = [], set()
        pending = rest
    if len(cur) > 1:
        batches.append(cur)
    return [b for b in batches if len(b) > 1]
