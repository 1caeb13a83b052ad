"""Helpers the tests share. Test modules and conftest files import from here; nothing here is
a test, and conftest files keep only fixtures.

- server.py    `cinegen serve` in a subprocess (`ServerProcess`), keys made with the CLI
- app.py       the ASGI app in this process behind an httpx client (`in_process`)
- engines.py   an engine whose progress, failure and output a test controls (jobs tests)
- preview.py   render specs and renders with the preview engine (engine tests)
- diffusers.py the tiny diffusers model registry and the server settings that use it
- web.py       the playground's browser helpers (Chromium through Playwright)
"""
