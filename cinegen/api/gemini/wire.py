"""The `predictLongRunning` body as the Gemini API samples and the SDKs send it.

Liberal in where a field may sit: images as `bytesBase64Encoded` or `inlineData`, videos also
as `uri` or `encodedVideo`, `lastFrame` / `referenceImages` in the instance or in `parameters`,
a mask's image inline or nested, every name in lowerCamel or as the proto field name
(`sampleCount` or `sample_count`, as Google's JSON parser takes both). Strict about names: a
field no model here declares is refused, in Google's words, by `api/body.parse_body`, never
dropped (LiteLLM's `parameters.video` would otherwise make a text video of an extension).
Parameters Veo takes and cinegen does not use (`pubsubTopic`, `enablePromptRewriting`) are
declared, so they are accepted. Parameter values stay loosely typed here so the rules can
refuse a wrong type with Veo's own sentence.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StrictStr,
    model_validator,
)


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class InlineData(_Wire):
    mime_type: StrictStr | None = Field(None, alias="mimeType")
    data: StrictStr | None = None


class WireImage(_Wire):
    bytes_base64_encoded: StrictStr | None = Field(None, alias="bytesBase64Encoded")
    mime_type: StrictStr | None = Field(None, alias="mimeType")
    inline_data: InlineData | None = Field(None, alias="inlineData")
    gcs_uri: StrictStr | None = Field(None, alias="gcsUri")


class WireVideo(WireImage):
    uri: StrictStr | None = None
    encoded_video: StrictStr | None = Field(None, alias="encodedVideo")
    encoding: StrictStr | None = None


class WireReferenceImage(_Wire):
    image: WireImage | None = None
    reference_type: StrictStr | None = Field(None, alias="referenceType")


class WireMask(WireImage):
    """Vertex's mask: the SDKs inline the image's fields beside `maskMode`; `image` nests it."""

    image: WireImage | None = None
    mask_mode: StrictStr | None = Field(None, alias="maskMode")


class WireInstance(_Wire):
    prompt: StrictStr | None = None
    image: WireImage | None = None
    last_frame: WireImage | None = Field(None, alias="lastFrame")
    video: WireVideo | None = None
    reference_images: list[WireReferenceImage] | None = Field(None, alias="referenceImages")
    mask: WireMask | None = None
    # Vertex only (VideoGenerationModelInstance): the Gemini API has no such field, and its
    # dialect refuses it as unknown (translate.py), by the name it came as.
    camera_control: StrictStr | None = Field(None, alias="cameraControl")
    _camera_control_name: str = PrivateAttr("cameraControl")

    @model_validator(mode="wrap")
    @classmethod
    def _remember_names(cls, data: Any, handler: ModelWrapValidatorHandler[WireInstance]) -> Any:
        """The instance, noting which spelling of `cameraControl` the body used."""
        instance = handler(data)
        if isinstance(data, dict) and "camera_control" in data and "cameraControl" not in data:
            instance._camera_control_name = "camera_control"
        return instance

    @property
    def camera_control_name(self) -> str:
        return self._camera_control_name


class WireParameters(_Wire):
    sample_count: Any = Field(None, alias="sampleCount")
    number_of_videos: Any = Field(None, alias="numberOfVideos")
    duration_seconds: Any = Field(None, alias="durationSeconds")
    aspect_ratio: Any = Field(None, alias="aspectRatio")
    resolution: Any = None
    person_generation: Any = Field(None, alias="personGeneration")
    negative_prompt: Any = Field(None, alias="negativePrompt")
    enhance_prompt: Any = Field(None, alias="enhancePrompt")
    seed: Any = None
    generate_audio: Any = Field(None, alias="generateAudio")
    compression_quality: Any = Field(None, alias="compressionQuality")
    storage_uri: Any = Field(None, alias="storageUri")
    fps: Any = None
    resize_mode: Any = Field(None, alias="resizeMode")
    pubsub_topic: Any = Field(None, alias="pubsubTopic")
    enable_prompt_rewriting: Any = Field(None, alias="enablePromptRewriting")  # deprecated
    last_frame: WireImage | None = Field(None, alias="lastFrame")
    reference_images: list[WireReferenceImage] | None = Field(None, alias="referenceImages")


class WireWebhookConfig(_Wire):
    uris: list[StrictStr] = Field(default_factory=list)
    user_metadata: dict[str, Any] | None = Field(None, alias="userMetadata")


class PredictLongRunningRequest(_Wire):
    instances: list[WireInstance] = Field(min_length=1)
    parameters: WireParameters | None = None
    webhook_config: WireWebhookConfig | None = Field(None, alias="webhookConfig")
    labels: dict[str, StrictStr] | None = None
