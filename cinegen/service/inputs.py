"""A request's inputs: checked before anything is kept, persisted as blobs, read by the job.

An accepted request owns copies of its images and video (`inputs/<op>/<name>`): a `gcsUri`
is read at submit time, so a later change of the object cannot change the job, and a
restarted worker finds everything it needs in the blob store.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import BinaryIO

from cinegen.core import rules
from cinegen.core.errors import InputUnavailable, InvalidArgument, StorageError
from cinegen.core.request import GenerateRequest, MediaRef, Mode
from cinegen.media import decode
from cinegen.media.clip import FPS
from cinegen.service.files import FileService
from cinegen.store.blobs import BlobMissing, copy_blob
from cinegen.store.db import FileRecord
from cinegen.store.gcs import GcsStore, parse_gs_uri, sample_uri


class InputService:
    def __init__(self, files: FileService, gcs: GcsStore | None) -> None:
        self.files = files
        self.blobs = files.blobs
        self.gcs = gcs

    # at submit --------------------------------------------------------------------------

    def check(
        self, req: GenerateRequest, owner: str | None
    ) -> tuple[GenerateRequest, FileRecord | None]:
        """The request with its `gcsUri` inputs read, once every input passed its checks;
        and the stored video it extends, if any."""
        self._check_storage_uri(req)
        req = req.map_media(lambda _name, ref: self._fetch_gcs(ref))
        self._check_images(req)
        return req, self._check_video(req, owner)

    def persist(self, op_id: str, req: GenerateRequest) -> GenerateRequest:
        """Write every inline input to `inputs/<op>/<name>` and keep only the key."""

        def persist(name: str, ref: MediaRef) -> MediaRef:
            if ref.data is None:
                return ref
            key = f"inputs/{op_id}/{name}"
            self.blobs.write(key, ref.data)
            return MediaRef(mime_type=ref.mime_type, blob_key=key)

        return req.map_media(persist)

    def copied(self, req: GenerateRequest) -> GenerateRequest:
        """The request with its persisted inputs read back as bytes (a remix owns copies)."""

        def copy(_name: str, ref: MediaRef) -> MediaRef:
            if ref.blob_key is None:
                return ref
            try:
                return MediaRef(data=self.files.read_blob(ref.blob_key), mime_type=ref.mime_type)
            except BlobMissing as exc:
                raise InvalidArgument(
                    "The inputs of the original video are no longer stored."
                ) from exc

        return req.map_media(copy)

    def delete(self, op_id: str) -> None:
        self.blobs.delete_prefix(f"inputs/{op_id}")

    def _check_storage_uri(self, req: GenerateRequest) -> None:
        """`storageUri` (Vertex): a `gs://bucket/prefix/` the worker writes the samples to."""
        if req.storage_uri is None:
            return
        parse_gs_uri(req.storage_uri)
        if self.gcs is None:
            raise InvalidArgument(
                "`storageUri` needs a configured GCS store (set CINEGEN_GCS_ENDPOINT or "
                "CINEGEN_GCS_USE_DEFAULT_CREDENTIALS); leave it out to get the video bytes inline."
            )
        self.gcs.check_writable(req.storage_uri)  # CINEGEN_GCS_ALLOWED_PREFIXES

    def _fetch_gcs(self, ref: MediaRef) -> MediaRef:
        """A `gcsUri` input read now, so it is checked and persisted like inline bytes; only
        under CINEGEN_GCS_ALLOWED_PREFIXES, and one answer for outside, missing, unreadable."""
        if not ref.gcs_uri or ref.data is not None:
            return ref
        if self.gcs is None:
            raise InvalidArgument("`gcsUri` inputs need a configured GCS store.")
        return MediaRef(data=self.gcs.read(ref.gcs_uri), mime_type=ref.mime_type)

    def _check_images(self, req: GenerateRequest) -> None:
        for name, image in req.media().items():
            if name == "video" or image.data is None:
                continue
            if len(image.data) > rules.MAX_IMAGE_BYTES:
                raise rules.image_too_large(len(image.data))
            decode.check_image(image.data)  # header, size, a reduced decode: never full size

    def _check_video(self, req: GenerateRequest, owner: str | None) -> FileRecord | None:
        """An extension's (or a masked edit's) input must be a video this server made, 720p,
        and within its dialect's bounds (Gemini: at most 141 s; Vertex: 1 to 30 s, so at most
        37 s once extended): by its real duration and, for the upper bound, by its frames (141 s
        at 24 fps), since the engine continues it frame by frame at 24 fps (10 s at 240 fps
        would be a 100 s input).
        Made here means a stored file id, or bytes whose sha256 this server recorded when it
        stored them (checked before anything decodes them): cinegen's provenance tags prove
        nothing, as anyone can write them into an MP4."""
        video = req.video
        if video is None:
            return None
        shortest, longest, refuse, verb = _video_bounds(req)
        record = None
        stream: BinaryIO
        if video.file_id is not None:
            record = self.files.visible_file(
                video.file_id, owner, message=rules.VIDEO_URI_NOT_FOUND
            )
            try:
                stream = self.blobs.open(record.blob_key)
            except BlobMissing as exc:
                raise rules.video_uri_not_found() from exc
        elif video.data is not None:
            if not self.files.made_here(video.data):
                raise refuse(f"only videos generated by this server can be {verb}")
            stream = io.BytesIO(video.data)
        else:
            raise rules.video_uri_not_found()
        with stream:  # probed where it is stored: no copy of the video is made
            info = decode.probe_video(stream)
        max_frames = longest * FPS
        if info.num_frames > max_frames:
            raise refuse(
                f"the input video has {info.num_frames} frames ({info.duration_seconds:.1f} s at "
                f"{info.fps:g} fps); it must have at most {max_frames} frames "
                f"({longest} s at {FPS} fps)"
            )
        if sorted((info.width, info.height)) != [720, 1280]:
            raise refuse(
                f"the input video is {info.width}x{info.height}; it must be 720p (1280x720 or "
                "720x1280)"
            )
        if info.duration_seconds > longest:
            raise refuse(
                f"the input video is {info.duration_seconds:.1f} s long; it must be at most "
                f"{longest} s"
            )
        if info.duration_seconds < shortest:
            raise refuse(
                f"the input video is {info.duration_seconds:.1f} s long; it must be at least "
                f"{shortest} s"
            )
        return record

    # in the job -------------------------------------------------------------------------

    def read(self, ref: MediaRef) -> bytes:
        """A persisted input image's bytes."""
        try:
            return self.files.read_blob(self._key(ref))
        except BlobMissing as exc:
            raise InputUnavailable("The request input could not be found.") from exc

    def copy_to(self, ref: MediaRef, destination: Path) -> Path:
        """A persisted input (the video to extend) as a file the engine can stream."""
        try:
            return copy_blob(self.blobs, self._key(ref), destination)
        except BlobMissing as exc:
            raise InputUnavailable("The input video is no longer available.") from exc

    def _key(self, ref: MediaRef) -> str:
        if ref.blob_key is not None:
            return ref.blob_key
        if ref.file_id is not None:
            record = self.files.db.get_file(ref.file_id)
            if record is None or record.deleted:
                raise InputUnavailable("The input video is no longer available.")
            return record.blob_key
        raise InputUnavailable("The request input could not be found.")

    def export_sample(self, storage_uri: str, op_id: str, index: int, record: FileRecord) -> None:
        """Vertex `storageUri`: a copy of the sample goes to `<storageUri>/<op>/sample_<i>.mp4`
        (the store checks the allow-list again: it may have changed since the submit)."""
        if self.gcs is None:
            raise StorageError("`storageUri` needs a configured GCS store.")
        with self.blobs.open(record.blob_key) as stream:
            self.gcs.write(sample_uri(storage_uri, op_id, index), stream)


def _video_bounds(req: GenerateRequest) -> tuple[int, int, Callable[[str], rules.RuleError], str]:
    """(shortest, longest input in seconds, the refusal, its verb) for the input video: an
    extension's bounds in the request's dialect, worded for an edit when a mask edits it."""
    shortest, longest, refuse = rules.extension_bounds(req.dialect)
    if req.mode is Mode.EDIT:
        edit = partial(rules.edit_input_invalid, shortest=shortest, longest=longest)
        return shortest, longest, edit, "edited"
    return shortest, longest, refuse, "extended"
