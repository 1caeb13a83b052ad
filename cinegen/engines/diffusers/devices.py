"""One engine per GPU: `CINEGEN_DIFFUSERS_DEVICE=cuda:0,cuda:1` (or `all`) in one process.

A pipeline keeps per-call state and one GPU runs one denoising loop at a time, so a
`DiffusersEngine` renders one request at a time (its cache lock). With several devices the
process holds one engine per device, each with its own pipeline cache, and `DevicePool`
hands each request to an idle one: the one that already holds the request's checkpoint
when it is idle (no second copy loaded, no reload), else the idle one that was used least
recently. The process runs at least one worker thread per device (`worker_threads`).

Without a broker this is the way to use a multi-GPU box. With one (`cinegen worker`), run a
worker process per GPU instead, pinned with CUDA_VISIBLE_DEVICES: a crash or a leak then
takes one GPU's jobs down, not all of them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cinegen.engines.base import ProgressFn, RenderSpec
from cinegen.engines.diffusers.config import RegistryError
from cinegen.media.clip import Clip

if TYPE_CHECKING:  # torch stays unimported until the first job
    from cinegen.engines.diffusers.config import PipelineEntry
    from cinegen.engines.diffusers.engine import DiffusersEngine, Warmed
    from cinegen.engines.diffusers.loading import PipelineCache

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def parse_devices(value: str, cuda_count: int | None = None) -> list[str]:
    """The devices a `CINEGEN_DIFFUSERS_DEVICE` value names, in order. `all` is every
    visible GPU (`cuda_count` of them; the CPU when there is none). A device named twice, a
    name torch does not know, or a GPU beyond those visible is a start-up error."""
    names = [part.strip() for part in value.split(",")]
    if names == ["all"]:
        count = _cuda_count() if cuda_count is None else cuda_count
        return [f"cuda:{index}" for index in range(count)] or ["cpu"]
    bad = [name for name in names if not _DEVICE.fullmatch(name)]
    if bad:
        raise RegistryError(
            f"CINEGEN_DIFFUSERS_DEVICE: {', '.join(repr(b) for b in bad)} is not a device; "
            "use auto, all, cpu, cuda or cuda:N, several separated by commas."
        )
    if len(names) > 1:
        _check_list(names, cuda_count)
    return names


def _check_list(names: list[str], cuda_count: int | None) -> None:
    if "auto" in names:
        raise RegistryError("CINEGEN_DIFFUSERS_DEVICE: `auto` cannot be one of several devices.")
    gpus = [name for name in names if name.startswith("cuda")]
    if len(set(gpus)) != len(gpus) or "cuda" in gpus and len(gpus) > 1:
        raise RegistryError(
            f"CINEGEN_DIFFUSERS_DEVICE={','.join(names)} names a GPU twice: each GPU runs "
            "one engine (cuda:0,cuda:1,...)."
        )
    if not gpus:
        return
    count = _cuda_count() if cuda_count is None else cuda_count
    missing = [name for name in gpus if int(name.partition(":")[2] or 0) >= count]
    if missing:
        raise RegistryError(
            f"CINEGEN_DIFFUSERS_DEVICE names {', '.join(missing)}, but this machine has "
            f"{count} visible CUDA device(s) (CUDA_VISIBLE_DEVICES counts)."
        )


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class DevicePool:
    """Several `DiffusersEngine`s, one per device, behind the one `Engine` interface."""

    name = "diffusers"

    def __init__(self, engines: Sequence[DiffusersEngine]) -> None:
        if not engines:
            raise ValueError("a device pool needs at least one engine")
        self.engines = list(engines)
        self._idle = list(self.engines)  # least recently used first
        self._changed = threading.Condition()

    @property
    def devices(self) -> list[str]:
        return [engine.cache.opts.device for engine in self.engines]

    @property
    def cache(self) -> PipelineCache:
        """The first device's cache: its options are every device's (warm-up reads them)."""
        return self.engines[0].cache

    def render(self, spec: RenderSpec, progress: ProgressFn) -> Clip:
        engine = self._take(spec)
        try:
            clip = engine.render(spec, progress)
        finally:
            self._give(engine)
        clip.notes["device"] = engine.cache.opts.device
        return clip

    def _take(self, spec: RenderSpec) -> DiffusersEngine:
        """An idle engine, the one holding this request's checkpoint first; waits for one."""
        wanted = self._checkpoint_of(spec)
        with self._changed:
            while not self._idle:
                self._changed.wait()
            holding = [e for e in self._idle if wanted and wanted in _loaded_paths(e)]
            engine = holding[0] if holding else self._idle[0]
            self._idle.remove(engine)
            return engine

    def _give(self, engine: DiffusersEngine) -> None:
        with self._changed:
            self._idle.append(engine)
            self._changed.notify()

    def _checkpoint_of(self, spec: RenderSpec) -> str | None:
        entry = self.engines[0].registry.pipeline_for(spec.model, spec.mode.value)
        return entry.path if entry is not None else None

    # warm start: every device loads (and compiles) what it serves

    def warm_plan(self) -> tuple[list[PipelineEntry], list[PipelineEntry]]:
        return self.engines[0].warm_plan()

    def warm(self, entry: PipelineEntry) -> Warmed:
        """`entry` warmed on each device in turn; the times are the sums."""
        results = [engine.warm(entry) for engine in self.engines]
        first = results[0]
        return type(first)(
            first.entry,
            sum(r.load_s for r in results),
            sum(r.call_s for r in results),
            f"{first.shape} on {len(results)} devices",
        )


def _loaded_paths(engine: DiffusersEngine) -> set[str]:
    return {path for _cls, path in engine.cache.loaded()}
