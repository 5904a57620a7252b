"""Old location of :class:`severe.data.frames.FrameVideos` (kept for the task runners that import it)."""

from severe.data.frames import FrameVideos

__all__ = ["FrameVideos"]
