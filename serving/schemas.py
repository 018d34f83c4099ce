"""Request and response models of the recall API (they are the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_K = 100
MAX_IDS = 100
MAX_SEEDS = 1000
MAX_AUDIENCE = 10_000
# Ids are int64 >= 0 everywhere (-1 is padding); bounding them here turns a huge number into a 422, not an overflow.
Id = Annotated[int, Field(ge=0, le=2**63 - 1)]


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


class SimilarRequest(BaseModel):
    """Exactly one of ``entity_ids`` (similar to indexed entities) or ``text`` (free text)."""

    model_config = ConfigDict(extra="forbid")
    entity_ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_IDS)
    text: str | None = Field(None, min_length=1, max_length=2000)
    k: int = Field(10, ge=1, le=MAX_K)
    filters: EntityFilters | None = None

    @model_validator(mode="after")
    def one_query(self):
        if (self.entity_ids is None) == (self.text is None):
            raise ValueError("give exactly one of entity_ids or text")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is blank")
        return self


class Hits(BaseModel):
    query: int | str
    ids: list[int]
    scores: list[float]


class SimilarResponse(BaseModel):
    results: list[Hits]
    versions: Versions


class LookalikeRequest(BaseModel):
    """Seed users (U2U) and/or target items (I2U2U, I2I2U); ``strategy`` picks one, ``all`` runs each."""

    model_config = ConfigDict(extra="forbid")
    seed_user_ids: list[Id] = Field(default_factory=list, max_length=MAX_SEEDS)
    seed_item_ids: list[Id] = Field(default_factory=list, max_length=MAX_SEEDS)
    strategy: Literal["u2u", "i2u2u", "i2i2u", "all"] = "all"
    size: int = Field(100, ge=1, le=MAX_AUDIENCE)
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
    audiences: list[Audience]
    versions: Versions


class KbSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(..., min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=50)
    mode: Literal["hybrid", "bm25", "bm25_pr", "vector"] = "hybrid"

    @model_validator(mode="after")
    def not_blank(self):
        if not self.query.strip():
            raise ValueError("query is blank")
        return self


class KbHit(BaseModel):
    doc_id: int
    title: str
    score: float


class KbSearchResponse(BaseModel):
    hits: list[KbHit]
    mode: str
    versions: Versions
