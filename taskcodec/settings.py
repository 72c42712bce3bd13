"""One settings object, read from the environment and an optional TOML file.

Precedence (highest first): explicit keyword arguments, ``TASKCODEC_*``
environment variables, the TOML file named by ``TASKCODEC_CONFIG`` (or
``./taskcodec.toml`` when present), then the defaults below.

The TOML file uses the field names without prefix, e.g.::

    home = "/srv/taskcodec"
    database_url = "postgresql+psycopg://user:pw@db/taskcodec"
    grounding = "yolox+saliency"
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path | None:
    explicit = os.environ.get("TASKCODEC_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path("taskcodec.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKCODEC_", extra="ignore")

    home: Path = Field(default=Path("~/.taskcodec"), description="Data dir: DB, Prefect home, caches.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under home.")
    db_busy_timeout_s: float = Field(default=60.0, gt=0, description="How long a write waits for a SQLite store "
                                                                      "another process has locked.")
    shared_dir: Path = Field(default=Path("../shared"), description="Read-only data and reference models.")
    grounding: str = Field(default="yolox+saliency",
                           description="Grounding backend spec (`taskcodec ground --list-backends`); the default "
                                       "ships inside the package.")
    uncovered: str = Field(default="area", pattern="^(area|whole|fail)$",
                           description="Policy labels the grounding backend cannot detect: send their likely area "
                                       "(area), the whole image (whole), or refuse to encode (fail).")
    recall_floor: float | None = Field(default=None, ge=0.0, le=1.0,
                                       description="Objects scoring between this and the threshold are still sent, "
                                                   "as cheap layers after the confident ones (default: half the "
                                                   "threshold; set it to the threshold to send none).")
    annotate: bool = Field(default=False, description="Also write the task text and the policy's labels into each "
                                                       "bitstream (a few dozen bytes), for files read without the store.")
    flows: str = Field(default="auto", pattern="^(auto|always|never)$",
                       description="Run compress as a Prefect flow: auto (more than 8 images, or a Prefect server "
                                   "configured), always, or never (the stages directly; archive and bench are flows "
                                   "regardless).")
    max_image_pixels: int = Field(default=100_000_000, description="Larger images are refused (decompression bombs).")
    mac_key_file: Path | None = Field(default=None, description="A secret key file: every bitstream written is "
                                      "signed (HMAC-SHA256) and every one read must verify against it.")
    learned_weights: Path | None = Field(default=None, description="Weights of the learned codec (default: the shipped ones).")
    learned_tile: int = Field(default=1024, ge=128, description="The learned codec's transforms run in tiles of this many pixels.")

    # Human-route reconstruction: a diffusers inpainting model (hub id or folder) makes diffusion the default.
    diffusion_model: str | None = None
    controlnet_model: str | None = None

    # LLM agent (used by the task agent; empty means the offline planner).
    llm_gguf: Path | None = Field(default=None, description="A local GGUF model served in-process by llama.cpp "
                                                             "(extra [local-llm]); overrides llm_base_url.")
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("TASKCODEC_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_timeout_s: float = 30.0
    llm_max_retries: int = Field(default=3, ge=0, le=10, description="Retries on 429, 5xx and timeouts.")
    llm_backoff_s: float = Field(default=1.0, ge=0.0, description="Backoff base: retry n waits a random time up "
                                 "to this x 2^n (full jitter), unless the server sent Retry-After.")
    llm_max_retry_s: float = Field(default=60.0, ge=0.0, description="No retry of one planning request is made "
                                   "that would start later than this many seconds after the first try "
                                   "(Retry-After waits included).")
    llm_fallback_ttl_s: float = Field(default=600.0, ge=0.0, description="After the LLM failed, the offline "
                                      "fallback policy answers for this long before the LLM is asked again.")
    llm_structured_method: str = Field(default="json_schema", pattern="^(json_schema|function_calling)$")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'taskcodec.db'}"

    @property
    def prefect_home(self) -> Path:
        return self.home_dir / "prefect"

    @property
    def shared_path(self) -> Path:
        return self.shared_dir.expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
