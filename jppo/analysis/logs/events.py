"""TensorBoard event files read with tensorboard's own reader (EventAccumulator), into
the long table every source normalises: one row per (tag, step, value).

A file is checked whole before it is read: TensorBoard's reader stops quietly at the
first bad record, so a truncated or corrupted file would read as a shorter run. Each
record is 16 bytes of framing plus its payload, so the payloads the reader yields
must add up to the file's size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

EVENT_GLOB = "events.out.tfevents.*"
RECORD_FRAMING = 16  # uint64 length, uint32 crc of the length, payload, uint32 crc


class LogError(ValueError):
    """A log that cannot be read: the message is one line naming the file."""


def event_files(folder: Path) -> list[Path]:
    """The event files directly in `folder`, oldest first (TensorBoard's order)."""
    return sorted(folder.glob(EVENT_GLOB))


def check_event_file(path: Path) -> None:
    """Raise LogError if the file is empty, truncated or corrupted."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader

    size = path.stat().st_size
    if size == 0:
        raise LogError(f"{path}: empty event file (0 bytes)")
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    read = sum(len(record) + RECORD_FRAMING for record in RawEventFileLoader(str(path)).Load())
    if read != size:
        raise LogError(f"{path}: corrupted or truncated event file (records end at byte "
                       f"{read} of {size})")


def read_event_file(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(scalars as rows of tag, step, value; text summaries by tag) of one file."""
    from tensorboard.backend.event_processing import event_accumulator

    check_event_file(path)
    accumulator = event_accumulator.EventAccumulator(
        str(path), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0})
    accumulator.Reload()
    rows = [(tag, e.step, e.value) for tag in accumulator.Tags()["scalars"]
            for e in accumulator.Scalars(tag)]
    texts = {}
    for tag in accumulator.Tags()["tensors"]:
        events = accumulator.Tensors(tag)
        if events and accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "text":
            values = events[-1].tensor_proto.string_val
            texts[tag.removesuffix("/text_summary")] = b"".join(values).decode("utf-8",
                                                                               "replace")
    return pd.DataFrame(rows, columns=["tag", "step", "value"]), texts


def read_event_folder(folder: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every event file of one run folder together (a resumed run writes several)."""
    files = event_files(folder)
    if not files:
        raise LogError(f"{folder}: no TensorBoard event files ({EVENT_GLOB})")
    parts, texts = [], {}
    for path in files:
        scalars, found = read_event_file(path)
        parts.append(scalars)
        texts |= found
    long = pd.concat(parts, ignore_index=True)
    if long.empty:
        raise LogError(f"{folder}: the event files hold no scalars")
    return long, texts
