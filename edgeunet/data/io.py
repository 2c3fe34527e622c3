"""Reading and writing images and masks: the runtime's one reader and writer (``edgeunet.runtime.imageio``).

Images come back in their native dtype (uint8, uint16, int16 or float32) as (H, W) or (H, W, C);
masks come back as (H, W) int64 class ids; writes are atomic. Training, checks and devices read
files through the same functions, imported here under the data stage's names.
"""

from ..runtime.imageio import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    ImageReadError,
    channel_first_hint,
    list_files,
    mask_to_uint,
    read_image,
    read_mask,
    write_image,
    write_mask,
)

__all__ = ["IMAGE_SUFFIXES", "MASK_SUFFIXES", "ImageReadError", "channel_first_hint", "list_files", "mask_to_uint",
           "read_image", "read_mask", "write_image", "write_mask"]
