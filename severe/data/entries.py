"""The one record every dataset reader produces and every loader consumes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoEntry:
    """One item of an official annotation list.

    ``path`` is relative to the dataset's folder under the data root (a video file, or a folder of
    frames for frame datasets). ``label`` is the 0-based class id in the official class order
    (-1 when the split has no labels). ``key`` is unique within a split: the path, or for segments
    of untrimmed videos (EK-100) ``path#<segment id>``. ``start_sec``/``end_sec`` bound a trimmed
    segment inside an untrimmed video (None = the whole file).
    """

    path: str
    label: int
    key: str
    start_sec: float | None = None
    end_sec: float | None = None
