"""Video IO (PyAV, H.264/yuv420p mp4), frame sampling and resizing, GIF and contact-sheet export."""

from .export import contact_sheet, save_gif
from .frames import match_length, resize_frames, sample_frames, sample_indices, time_indices, to_float, to_uint8
from .io import (
    DEFAULT_LIMITS, Video, VideoFile, VideoInfo, VideoLimits, VideoReader, VideoWriter, pad_to_even, probe,
    read_video, write_video,
)

__all__ = [
    "DEFAULT_LIMITS", "Video", "VideoFile", "VideoInfo", "VideoLimits", "VideoReader", "VideoWriter",
    "contact_sheet", "match_length", "pad_to_even", "probe", "read_video", "resize_frames", "sample_frames",
    "sample_indices", "save_gif", "time_indices", "to_float", "to_uint8", "write_video",
]
