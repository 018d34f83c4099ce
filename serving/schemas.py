"""Request and response models of the recall API (they are the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

MAX_K = 100
MAX_IDS = 100
MAX_SEEDS = 1000
MAX_AUDIENCE = 10_000
MAX_ATTRIBUTES = 20
# Ids are int64 >= 0 everywhere (-1 is padding); bounding them here turns a huge number into a 422, not an
# overflow.
MAX_ID = 2**63 - 1


def _json_integer(v):
    """JSON Schema's integer: a number with no fractional part (``7`` or ``7.0``), never ``true`` or
    ``"7"``."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be an integer")
    return v


# Pydantic's lax mode would take true as 1 and "7" as 7, which the schema calls invalid.
Int = Annotated[int, BeforeValidator(_json_integer)]
Id = Annotated[int, Ge(0), Le(MAX_ID), BeforeValidator(_json_integer)]


class Versions(BaseModel):
    model: str
    model_version: str
    alias: str
    index_version: str
    index_model_version: str = ""


class EntityFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: str | list[str] | None = None
    type: str | list[str] | None = None
    tags: str | list[str] | None = None


# A query text must hold something besides blanks (JSON Schema's pattern is a search, as pydantic's).
NonBlank = Annotated[str, Field(min_length=1, pattern=r"\S")]


class SimilarByIds(BaseModel):
    """Entities similar to indexed entities (each excluded from its own result)."""

    model_config = ConfigDict(extra="forbid")
    entity_ids: list[Id] = Field(..., min_length=1, max_length=MAX_IDS)
    k: Int = Field(10, ge=1, le=MAX_K)
    filters: EntityFilters | None = None


class SimilarByText(BaseModel):
    """Entities similar to a free-text description."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[NonBlank, Field(max_length=2000)]
    k: Int = Field(10, ge=1, le=MAX_K)
    filters: EntityFilters | None = None


# Exactly one of entity_ids or text: two closed objects, so the schema itself says so.
SimilarRequest = SimilarByIds | SimilarByText


class Hits(BaseModel):
    query: int | str
    ids: list[int]
    scores: list[float]


class SimilarResponse(BaseModel):
    request_id: str = Field(description="Names this response in POST /v1/feedback.")
    results: list[Hits]
    versions: Versions


_USER_SEEDS = {"required": ["seed_user_ids"], "properties": {"seed_user_ids": {"minItems": 1}}}
_ITEM_SEEDS = {"required": ["seed_item_ids"], "properties": {"seed_item_ids": {"minItems": 1}}}


class LookalikeRequest(BaseModel):
    """Seed users (U2U) and/or target items (I2U2U, I2I2U); ``strategy`` picks one, ``all`` runs each,
    and ``default`` (or none) runs the backtest's best strategy that the seeds allow.

    At least one seed; ``u2u`` needs seed users and ``i2u2u``/``i2i2u`` need seed items. The
    schema states both (``anyOf``, ``if``/``then``), so a client generated from it is right.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [_USER_SEEDS, _ITEM_SEEDS],
            "allOf": [
                {
                    "if": {"required": ["strategy"], "properties": {"strategy": {"const": "u2u"}}},
                    "then": _USER_SEEDS,
                },
                {
                    "if": {
                        "required": ["strategy"],
                        "properties": {"strategy": {"enum": ["i2u2u", "i2i2u"]}},
                    },
                    "then": _ITEM_SEEDS,
                },
            ],
        },
    )
    seed_user_ids: list[Id] = Field(default_factory=list, max_length=MAX_SEEDS)
    seed_item_ids: list[Id] = Field(default_factory=list, max_length=MAX_SEEDS)
    strategy: Literal["u2u", "i2u2u", "i2i2u", "all", "default"] = "default"
    size: Int = Field(100, ge=1, le=MAX_AUDIENCE)
    exclude_user_ids: list[Id] = Field(default_factory=list, max_length=MAX_AUDIENCE)
    allowed_user_ids: list[Id] | None = Field(None, max_length=MAX_AUDIENCE)

    @model_validator(mode="after")
    def has_seeds(self):
        if not self.seed_user_ids and not self.seed_item_ids:
            raise ValueError("give seed_user_ids and/or seed_item_ids")
        if self.strategy == "u2u" and not self.seed_user_ids:
            raise ValueError("strategy u2u needs seed_user_ids")
        if self.strategy in ("i2u2u", "i2i2u") and not self.seed_item_ids:
            raise ValueError(f"strategy {self.strategy} needs seed_item_ids")
        return self


class Audience(BaseModel):
    strategy: str
    user_ids: list[int]
    scores: list[float]


class LookalikeResponse(BaseModel):
    request_id: str = Field(description="Names this response in POST /v1/feedback.")
    audiences: list[Audience]
    strategy_reason: str = ""
    versions: Versions


class KbSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: Annotated[NonBlank, Field(max_length=1000)]
    k: Int = Field(10, ge=1, le=50)
    mode: Literal["hybrid", "bm25", "bm25_pr", "vector"] = "hybrid"
    rerank: StrictBool = Field(
        True, description="hybrid: rescore the fused candidates by the second stage, where one was chosen."
    )


class ErrorDetail(BaseModel):
    """Every 4xx/5xx the service itself returns: one sentence."""

    detail: str


class KbHit(BaseModel):
    doc_id: int
    title: str
    score: float


class KbSearchResponse(BaseModel):
    request_id: str = Field(description="Names this response in POST /v1/feedback.")
    hits: list[KbHit]
    mode: str
    reranked: bool = Field(False, description="Whether the second stage ranked these hits.")
    versions: Versions


# An original id as the source system spells it: text, or a JSON integer (read as its text).
OriginalId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")] | Id


AttributeName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]
AttributeValue = Annotated[str, Field(max_length=200)]


class AttributeValues(BaseModel):
    """One catalogue attribute and the values a filter names."""

    model_config = ConfigDict(extra="forbid")
    attribute: AttributeName
    values: list[AttributeValue] = Field(..., min_length=1, max_length=MAX_IDS)


def _by_attribute(entries: list[AttributeValues]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in entries:  # an attribute named twice: the union of its values
        out.setdefault(e.attribute, []).extend(v for v in e.values if v not in out.get(e.attribute, []))
    return out


class ItemAttributes(BaseModel):
    """Catalogue filters: keep only items with one of the values of every attribute in ``only``;
    leave out items with any value in ``exclude``. (A list of objects rather than a map, so the
    schema says exactly what an attribute name may be.)"""

    model_config = ConfigDict(extra="forbid")
    only: list[AttributeValues] = Field(default_factory=list, max_length=MAX_ATTRIBUTES)
    exclude: list[AttributeValues] = Field(default_factory=list, max_length=MAX_ATTRIBUTES)

    def filters(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """``(only, exclude)`` as ``{attribute: [values]}``."""
        return _by_attribute(self.only), _by_attribute(self.exclude)


class RecommendRequest(BaseModel):
    """A user's top-``k`` items, in original ids; a user the models do not know gets popularity."""

    model_config = ConfigDict(extra="forbid")
    user_id: OriginalId
    k: Int = Field(10, ge=1, le=MAX_K)
    exclude_seen: StrictBool = True
    blocklist: list[OriginalId] = Field(default_factory=list, max_length=MAX_SEEDS)
    item_attributes: ItemAttributes | None = None


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    source: str


class RecommendResponse(BaseModel):
    request_id: str = Field(description="Names this response in POST /v1/feedback.")
    user_id: str
    items: list[RecommendedItem]
    reason: str
    fusion: str
    sources: dict[str, str]
    versions: Versions


class FeedbackEvent(BaseModel):
    """A click or a conversion on an item of a served response."""

    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    item_id: OriginalId
    event: Literal["click", "conversion"]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[FeedbackEvent] = Field(..., min_length=1, max_length=MAX_SEEDS)


class FeedbackResponse(BaseModel):
    accepted: int


EntityKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")] | Id


class FeaturesRequest(BaseModel):
    """Entities whose online features to read (as the warehouse keys them)."""

    model_config = ConfigDict(extra="forbid")
    entity_ids: list[EntityKey] = Field(..., min_length=1, max_length=MAX_IDS)
    realtime: StrictBool = Field(True, description="Also count today's events per feature and line (DWD).")


class EntityFeatures(BaseModel):
    entity_id: str
    found: bool = Field(description="False: the warehouse has no features for this id (not an error).")
    as_of: str | None = Field(description="The day of the newest window features.")
    features: dict[str, float]
    realtime: dict[str, int] = Field(description="Today's event counts per {feature}_{line}.")


class FeaturesResponse(BaseModel):
    request_id: str
    entities: list[EntityFeatures]
