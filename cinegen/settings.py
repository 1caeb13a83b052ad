"""Every setting in one place. Environment variables use the prefix CINEGEN_."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CINEGEN_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    allow_public_bind: bool = False  # bind beyond loopback with no API key configured
    public_url: str | None = None  # e.g. https://veo.example.com; video uris are built on it
    # Without public_url: Host headers trusted to build video uris, besides loopback ones:
    # names, `.example.com` (domain and subdomains), `*` (any). Others get the bound address.
    allowed_hosts: str = ""

    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite file under data_dir
    blob_dir: Path | None = None  # default: data_dir / "files"

    workers: int = 1  # in-process generation threads; 0 serves the API only
    retention_hours: float = 48.0  # Veo keeps videos two days
    sweep_interval_seconds: float = 600.0
    # Free space (bytes) under which new jobs are refused with 503 UNAVAILABLE; 0: no check.
    min_free_bytes: int = 64 * 1024 * 1024
    # Start-up sweep: `cinegen-*` scratch in the system temp dir untouched this long (seconds)
    # was left by a killed worker and is deleted (a live job's scratch is newer).
    scratch_max_age_seconds: float = 6 * 3600.0
    restricted_region: bool = False  # EU/UK/CH/MENA personGeneration rules
    max_request_bytes: int = 160 * 1024 * 1024
    max_attempts: int = 2  # runs of one operation before an interrupted job is failed
    # A running job's lease: renewed by its progress writes; once expired, a live worker (any
    # process on the database) queues the job again. Idle workers poll the database for
    # queued jobs (made by any process) and for expired leases every poll interval.
    lease_seconds: float = 60.0
    poll_interval_seconds: float = 1.0

    # The diffusers (GPU) engine: README "GPU engine (diffusers)". Off unless a registry is set.
    diffusers_registry: Path | None = None  # TOML: models and modes -> pipeline + checkpoint
    diffusers_allow_network: bool = False  # hub ids in the registry; else HF_HUB_OFFLINE=1
    diffusers_device: str = "auto"  # auto (cuda if present) | cpu | cuda | cuda:N
    diffusers_max_loaded: int = 1  # checkpoints kept loaded at once (more only if memory allows)
    diffusers_offload: Literal["none", "model", "sequential"] = "none"  # CPU offload, small GPUs
    diffusers_vae_tiling: bool = False  # decode in tiles: less memory, a little slower
    diffusers_attention_backend: str = ""  # "" = torch SDPA (fused); e.g. flash, _native_cudnn
    diffusers_compile: bool = False  # torch.compile the transformer's repeated blocks (GPU)
    diffusers_warmup: bool = False  # load (and compile) every pipeline at start-up; /readyz waits
    # image URLs (/v1/videos): hosts, IPs or CIDRs, comma-separated, that may be fetched from
    # although private/loopback (tests, trusted deployments); nothing else is lifted
    fetch_allow_hosts: str = ""
    fetch_timeout_seconds: float = 10.0  # connect + read budget of one image URL
    fetch_workers: int = 8  # image URLs fetched at once, on threads of their own
    fetch_queue: int = 8  # fetches waiting for one of those; past it a create is a 503
    videos_poll_after_ms: int = 2000  # `openai-poll-after-ms` sent on /v1/videos
    # /v1/videos status words when a request does not ask (`?compat=`, the OpenAI SDK's
    # headers): `auto`, each video's create's own (OpenAI-shaped: OpenAI's `queued`/`failed`,
    # else the gateway's `""`/`failure`); `openai` or `gateway`, those words for every video
    # (a deployment behind a proxy such as LiteLLM that hands them on to OpenAI clients).
    videos_dialect: Literal["auto", "openai", "gateway"] = "auto"
    # Google Cloud Storage (Vertex `gcsUri` inputs, `storageUri` outputs): an endpoint such as
    # an emulator (anonymous credentials), or real GCS with Application Default Credentials.
    gcs_endpoint: str | None = None  # e.g. http://127.0.0.1:4443 (fake-gcs-server)
    gcs_project: str | None = None
    gcs_use_default_credentials: bool = False
    # gs:// uris callers may read or write: `gs://bucket/` or `gs://bucket/prefix/`, comma-
    # separated; `*` = every bucket the credentials reach. Empty (default): none at all.
    gcs_allowed_prefixes: str = ""
    # Per-key limits (issue 31): queued + running operations one API key (or, with no keys,
    # the anonymous caller) may have; a submit beyond it is a 429 RESOURCE_EXHAUSTED. 0: none.
    max_queued_per_key: int = 32
    # Issue 27: the other limits of a key that sets none of its own (`cinegen keys create`
    # sets them per key; `max_queued_per_key` above is the default concurrent limit). Seconds
    # of video a key's operations created today (UTC) may ask for, failed and cancelled ones
    # aside; requests per minute other than reads; and reads (polls: GETs of operations,
    # videos, files) per minute, apart and generous (a client polling every second is
    # normal). Counted in the database, so shared by every process of a deployment. 0: none.
    video_seconds_per_day: int = 0
    requests_per_minute: int = 0
    polls_per_minute: int = 600
    # A job running longer than this (from when a worker took it; its time in the queue does
    # not count) fails with DEADLINE_EXCEEDED at the engine's next progress report. 0: none.
    job_timeout_seconds: float = 3600.0
    # GET /metrics (README "Metrics and health"): `loopback`, open to clients on this machine
    # only (403 for others); `open`, to anyone; `admin`, to callers with an admin API key;
    # `off`, no /metrics (404) and no per-request metrics at all.
    metrics: Literal["loopback", "open", "admin", "off"] = "loopback"
    # Logs (README "Logs and traces"): `json`, one object a line; `text`, for a person;
    # `auto`, text when stderr is a terminal and JSON otherwise (a container, a service).
    log_format: Literal["auto", "text", "json"] = "auto"
    log_level: str = "INFO"
    log_access: bool = True  # one line per HTTP request: route, status, milliseconds
    # Webhook deliveries (README "Webhooks"): the limit of one attempt; the 24 h retry schedule
    # (spec gemini-webhooks.md §4.4) multiplied by `webhook_retry_scale` (tests shrink it);
    # how often the sender looks for rows other processes queued; attempts sent at once; the
    # `aud` of dynamic deliveries' JWTs ("" = the target URI). Targets are checked as image
    # URLs are (public addresses only, https) but for the hosts in `fetch_allow_hosts`.
    webhook_timeout_seconds: float = 10.0
    webhook_retry_scale: float = 1.0
    webhook_poll_seconds: float = 1.0
    webhook_senders: int = 8
    webhook_jwt_audience: str = ""
    # Webhook signing secrets are stored encrypted with a key derived from this (a random
    # string, e.g. `openssl rand -base64 32`; every process of a deployment needs the same).
    # Empty: a key file made at first use, data_dir/webhook-secret.key (0600).
    webhook_secret_key: str = ""

    # Scale-out (README "Scale-out"). A broker URL (redis://...) sends jobs to Celery workers
    # (`cinegen worker`) instead of this process's threads; "" keeps the in-process queue.
    broker_url: str = ""
    # Where videos and inputs live: "" = blob_dir; s3://bucket/prefix or gs://bucket/prefix.
    blob_url: str = ""
    s3_endpoint_url: str | None = None  # S3-compatible stores (MinIO, Ceph, moto)
    blob_redirect: bool = False  # downloads redirect to a short-lived presigned URL
    blob_redirect_seconds: int = 300
    # Operations queued in the database but unknown to the broker this long are sent again.
    reconcile_grace_seconds: float = 30.0

    # Trust (README "Provenance"): the invisible watermark and C2PA content credentials.
    watermark: bool = True
    c2pa_cert: Path | None = None  # PEM chain; default: a self-signed dev cert in data_dir
    c2pa_key: Path | None = None
    c2pa_tsa_url: str = ""  # RFC 3161 timestamp authority, optional
    c2pa_trust_anchors: Path | None = None  # PEM roots verify trusts (the C2PA trust list)
    # Prompt policy: a block-list file (words and regexes, per locale) and a moderation hook.
    prompt_blocklist: Path | None = None
    moderation_url: str = ""
    moderation_timeout_seconds: float = 5.0

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cinegen.db').resolve()}"

    @cached_property
    def resolved_blob_dir(self) -> Path:
        return (self.blob_dir or self.data_dir / "files").resolve()
