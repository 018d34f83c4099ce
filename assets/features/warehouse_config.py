"""The warehouse's layout as data: business lines, dimensions, base event types, windows, tasks.

``assets/features/data/warehouse.yaml`` (or any file with the same keys) names them; every layer
reads them from the :class:`WarehouseConfig` parsed here: the raw-event row checks, the DWD and
MID builders, the dictionary's validation, the window kernel's lines and history, the Spark path,
the opportunity roll-up, the LibSVM export and the simulator. None keeps a list of its own. A bad
file raises :class:`WarehouseConfigError` naming the entry, before any cell is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from resources.validation import InputError

DEFAULT_PATH = Path(__file__).with_name("data") / "warehouse.yaml"
MID_AGGS = ("cnt", "sum", "max")
POOLS = ("users", "phones", "staff")
VALUE_KINDS = {"constant": ("value",), "exponential": ("mean", "offset"), "integers": ("low", "high")}
_NAME = re.compile(r"^[a-z]+$")  # event names are the DWD and MID qualifiers' first part
_LINE = re.compile(r"^\d{2}$")
_TASK = re.compile(r"^[a-z][a-z0-9_]*$")


class WarehouseConfigError(InputError):
    """A warehouse config entry that cannot drive the warehouse (names the entry and the problem)."""


@dataclass(frozen=True)
class Dimension:
    """A grain features live on.

    Attributes
    ----------
    name : str
        The dictionary's ``dim`` and the MID ``t:dim`` tag.
    link : str
        The opportunity column naming an opportunity's entities of this dimension (a list column,
        or a single id such as ``owner``).
    pool : {"users", "phones", "staff"}
        The simulator's population of such entities.
    """

    name: str
    link: str
    pool: str


@dataclass(frozen=True)
class EventType:
    """A base event type and its MID daily aggregations.

    Attributes
    ----------
    name : str
        The raw events' ``feature``; lower-case letters only.
    dim : str
        The dimension its entities belong to (the raw events' ``entity_type``).
    aggs : tuple of {"cnt", "sum", "max"}
        MID features ``{name}_{agg}``: events per day, the values' sum, the largest value.
    rate : float
        Simulator only: events per entity and day at engagement 1.
    value : dict
        Simulator only: ``kind`` (constant, exponential, integers) and its parameters.
    """

    name: str
    dim: str
    aggs: tuple[str, ...]
    rate: float
    value: dict


@dataclass(frozen=True)
class Task:
    """A computation over a tagged target population.

    Attributes
    ----------
    name : str
        MID tags the population ``t:target_{name}``; window features read through that tag.
    lines : tuple of str
        The business lines its window features are computed for.
    """

    name: str
    lines: tuple[str, ...]

    @property
    def tag(self) -> bytes:
        return f"t:target_{self.name}".encode()


@dataclass(frozen=True)
class WarehouseConfig:
    """The parsed, validated layout (see the module docstring)."""

    history_days: int
    lines: tuple[str, ...]
    dimensions: tuple[Dimension, ...]
    events: tuple[EventType, ...]
    tasks: tuple[Task, ...]

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def event_dims(self) -> dict[str, str]:
        """Event type -> its dimension."""
        return {e.name: e.dim for e in self.events}

    @property
    def mid_features(self) -> tuple[str, ...]:
        return tuple(f"{e.name}_{a}" for e in self.events for a in e.aggs)

    def suite_params(self) -> dict[str, tuple[str, ...]]:
        """The values the warehouse's expectation suites take as ``{"$PARAMETER": name}``."""
        return {
            "dims": self.dims,
            "events": tuple(self.event_dims),
            "lines": self.lines,
            "mid_features": self.mid_features,
        }

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise WarehouseConfigError(
            f"warehouse config has no task {name!r}; tasks: {[t.name for t in self.tasks]}"
        )


def _list(doc: dict, key: str) -> list:
    v = doc.get(key)
    if not isinstance(v, list) or not v:
        raise WarehouseConfigError(f"warehouse config: `{key}` must be a non-empty list")
    return v


def parse_warehouse_config(doc: dict) -> WarehouseConfig:
    """Validate and parse a warehouse config document (a dict, as read from YAML).

    Raises
    ------
    WarehouseConfigError
        Naming the entry (``events[2] (name='visit')``) and what is wrong with it.
    """
    if not isinstance(doc, dict):
        raise WarehouseConfigError(
            "warehouse config: not a mapping of history_days, lines, dimensions, events, tasks"
        )
    unknown = set(doc) - {"history_days", "lines", "dimensions", "events", "tasks"}
    if unknown:
        raise WarehouseConfigError(f"warehouse config: unknown key(s) {sorted(unknown)}")
    hist = doc.get("history_days")
    if not isinstance(hist, int) or isinstance(hist, bool) or hist < 1:
        raise WarehouseConfigError(f"warehouse config: history_days must be a positive integer, not {hist!r}")
    lines = tuple(str(x) for x in _list(doc, "lines"))
    for i, line in enumerate(lines):
        if not _LINE.match(line):
            raise WarehouseConfigError(f"warehouse config lines[{i}]: {line!r} is not two digits (e.g. '03')")
    if len(set(lines)) != len(lines):
        raise WarehouseConfigError(f"warehouse config: duplicate line in {list(lines)}")
    dims = []
    for i, d in enumerate(_list(doc, "dimensions")):
        where = f"warehouse config dimensions[{i}] (name={d.get('name') if isinstance(d, dict) else d!r})"
        if not isinstance(d, dict) or set(d) != {"name", "link", "pool"}:
            raise WarehouseConfigError(f"{where}: needs exactly name, link and pool")
        if not _NAME.match(str(d["name"])):
            raise WarehouseConfigError(f"{where}: name must be lower-case letters")
        if d["pool"] not in POOLS:
            raise WarehouseConfigError(f"{where}: unknown pool {d['pool']!r}; known: {list(POOLS)}")
        if d["name"] in {x.name for x in dims}:
            raise WarehouseConfigError(f"{where}: duplicate dimension")
        dims.append(Dimension(str(d["name"]), str(d["link"]), str(d["pool"])))
    events = []
    for i, e in enumerate(_list(doc, "events")):
        where = f"warehouse config events[{i}] (name={e.get('name') if isinstance(e, dict) else e!r})"
        if (
            not isinstance(e, dict)
            or not {"name", "dim", "aggs"} <= set(e)
            or set(e) - {"name", "dim", "aggs", "rate", "value"}
        ):
            raise WarehouseConfigError(f"{where}: needs name, dim and aggs (and optionally rate, value)")
        if not _NAME.match(str(e["name"])):
            raise WarehouseConfigError(
                f"{where}: name must be lower-case letters (it starts every DWD qualifier)"
            )
        if e["dim"] not in {d.name for d in dims}:
            raise WarehouseConfigError(f"{where}: unknown dim {e['dim']!r}; known: {[d.name for d in dims]}")
        aggs = tuple(e["aggs"]) if isinstance(e["aggs"], list) else ()
        if not aggs or set(aggs) - set(MID_AGGS) or len(set(aggs)) != len(aggs):
            raise WarehouseConfigError(
                f"{where}: aggs {e['aggs']!r} must be distinct values of {list(MID_AGGS)}"
            )
        rate = e.get("rate", 1.0)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0:
            raise WarehouseConfigError(f"{where}: rate must be a number >= 0, not {rate!r}")
        value = e.get("value", {"kind": "constant", "value": 1})
        if not isinstance(value, dict) or value.get("kind") not in VALUE_KINDS:
            raise WarehouseConfigError(f"{where}: value.kind must be one of {list(VALUE_KINDS)}")
        if set(value) != {"kind", *VALUE_KINDS[value["kind"]]}:
            raise WarehouseConfigError(
                f"{where}: a {value['kind']} value takes {list(VALUE_KINDS[value['kind']])}"
            )
        if e["name"] in {x.name for x in events}:
            raise WarehouseConfigError(f"{where}: duplicate event type")
        events.append(EventType(str(e["name"]), str(e["dim"]), aggs, float(rate), dict(value)))
    tasks = []
    for i, t in enumerate(_list(doc, "tasks")):
        where = f"warehouse config tasks[{i}] (name={t.get('name') if isinstance(t, dict) else t!r})"
        if not isinstance(t, dict) or set(t) != {"name", "lines"}:
            raise WarehouseConfigError(f"{where}: needs exactly name and lines")
        if not _TASK.match(str(t["name"])):
            raise WarehouseConfigError(f"{where}: name must be lower-case letters, digits and _")
        tl = tuple(str(x) for x in t["lines"]) if isinstance(t["lines"], list) else ()
        bad = [x for x in tl if x not in lines]
        if not tl or bad:
            raise WarehouseConfigError(
                f"{where}: lines {t['lines']!r} must be a non-empty list of {list(lines)}"
            )
        tasks.append(Task(str(t["name"]), tl))
    return WarehouseConfig(hist, lines, tuple(dims), tuple(events), tuple(tasks))


def load_warehouse_config(path: str | Path = DEFAULT_PATH) -> WarehouseConfig:
    """Read and validate a warehouse config file (YAML); errors name the file and the entry."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarehouseConfigError("file not found", str(p)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise WarehouseConfigError(
            f"not a readable YAML file ({type(e).__name__}: {str(e).splitlines()[0]})", str(p)
        ) from None
    try:
        return parse_warehouse_config(doc)
    except WarehouseConfigError as e:
        raise WarehouseConfigError(e.problem, str(p)) from None
