"""Routes of the vertex dialect (being built)."""

from fastapi import APIRouter

router = APIRouter()
