"""Routes of the videos dialect (being built)."""

from fastapi import APIRouter

router = APIRouter()
