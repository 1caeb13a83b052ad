"""The Vertex fixtures (GCS emulator, server) live in support.py so client tests share them."""

from tests.api.vertex.support import gcs, genai3_python, vertex_server  # noqa: F401
