"""The Vertex AI wire format.

The `predictLongRunning` body is the one the Gemini dialect already parses (the SDKs send the
same envelope in both modes: `instances[0]`, `parameters`, a top-level `labels`), so it is
reused as is, unknown names refused as there. Vertex adds the `:fetchPredictOperation` poll
body, whose only field is the operation's name.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from cinegen.api.gemini.wire import PredictLongRunningRequest

__all__ = ["FetchPredictOperationRequest", "PredictLongRunningRequest"]


class FetchPredictOperationRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    operation_name: StrictStr = Field(alias="operationName")
