"""The published reference numbers (SEVERE++ Tables 3-10, docs/protocol.md §14.1-§14.2) shipped with the package.

The data lives in ``reference_results.json`` next to this module (source and column meanings stated inside);
CNN rows use the suite's method ids (``gdt``, ``tubelet_contrast``, ``supervised`` ...), transformer rows
readable ids (``videomae``, ``supervised_vit`` ...).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from severe.errors import SevereError

DATA_FILE = "reference_results.json"
FAMILIES = ("cnn", "vit", "video_text")
#: ``--reference-set`` choices -> families included
REFERENCE_SETS: dict[str, tuple[str, ...]] = {"cnn": ("cnn",), "vit": ("vit", "video_text"), "all": FAMILIES}


@dataclass(frozen=True)
class ReferenceMethod:
    """One published row: method id, display name, family (cnn / vit / video_text) and its cells."""

    id: str
    name: str
    family: str
    backbone: str
    pretraining: str
    results: dict[str, float]  # experiment id -> value; cells the paper does not report are absent


@dataclass(frozen=True)
class ReferenceData:
    source: str
    notes: tuple[str, ...]
    columns: dict[str, str]  # experiment id -> what the published column is
    methods: tuple[ReferenceMethod, ...]

    def method(self, method_id: str) -> ReferenceMethod:
        for m in self.methods:
            if m.id == method_id:
                return m
        raise SevereError(f"no published reference row for method '{method_id}' "
                          f"(known: {', '.join(m.id for m in self.methods)})")

    def select(self, reference_set: str) -> list[ReferenceMethod]:
        """The published rows of one set: ``cnn``, ``vit`` (video-only and video-text ViT-B) or ``all``."""
        if reference_set not in REFERENCE_SETS:
            raise SevereError(f"unknown reference set '{reference_set}'; use one of {', '.join(REFERENCE_SETS)}")
        return [m for m in self.methods if m.family in REFERENCE_SETS[reference_set]]


def parse_reference(text: str, origin: str = DATA_FILE) -> ReferenceData:
    """Parse and validate the reference data (every cell a finite number or null, in a declared column)."""
    try:
        doc = json.loads(text)
        columns = dict(doc["columns"])
        methods = []
        for m in doc["methods"]:
            if m["family"] not in FAMILIES:
                raise ValueError(f"method {m['id']}: family '{m['family']}' is not one of {FAMILIES}")
            cells = {}
            for key, value in m["results"].items():
                if key not in columns:
                    raise ValueError(f"method {m['id']}: column '{key}' is not declared under 'columns'")
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"method {m['id']}: {key} = {value!r} is not a finite number")
                cells[key] = float(value)
            methods.append(ReferenceMethod(m["id"], m["name"], m["family"], m["backbone"], m["pretraining"], cells))
        ids = [m.id for m in methods]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate method ids")
        return ReferenceData(str(doc["source"]), tuple(doc.get("notes", ())), columns, tuple(methods))
    except (ValueError, KeyError, TypeError) as e:
        raise SevereError(f"{origin}: malformed reference data ({e}); reinstall severe") from None


@lru_cache(maxsize=1)
def load_reference() -> ReferenceData:
    """The packaged reference data (read once)."""
    text = resources.files("severe.report").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_reference(text)
