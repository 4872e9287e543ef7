"""Settings plumbing shared by every role: ``CORDON_`` environment variables over an optional YAML file.

Each role declares its own :class:`RoleSettings` subclass (``edge.settings.EdgeSettings``, ...). Settings are
built in ``main`` (the CLI) and passed down, never created at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cordon.errors import ConfigError
from cordon.logs import LogFormat

__all__ = ["RoleSettings", "format_validation_error"]


def format_validation_error(exc: ValidationError, *, env_prefix: str = "CORDON_") -> str:
    """Render a pydantic error as one line per problem, naming the key path, env var and bad value."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "<root>"
        env = env_prefix + str(err["loc"][0]).upper() if err["loc"] else ""
        value = err.get("input")
        shown = "<missing>" if err["type"] == "missing" else repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{path} ({env}): {err['msg']}; got {shown}")
    return "\n".join(lines)


class RoleSettings(BaseSettings):
    """Settings every role has: where Kafka is and how to log.

    Values are read, highest priority first, from keyword arguments, ``CORDON_*`` environment variables, and
    the YAML file named by ``config_file`` in :meth:`load`.
    """

    model_config = SettingsConfigDict(env_prefix="CORDON_", extra="forbid", validate_default=True)
    _yaml_file: ClassVar[Path | None] = None

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        min_length=3,
        description="Kafka bootstrap servers, host:port[,host:port]; the embedded broker or Apache Kafka.",
    )
    log_level: str = Field(
        default="INFO", pattern=r"^(?i:debug|info|warning|error)$", description="Log level."
    )
    log_format: LogFormat = Field(default="json", description="json (one object a line) or console.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files: explicit config only
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, file_secret_settings]
        if cls._yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cls._yaml_file))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Self:
        """Build settings from ``overrides``, the environment and an optional YAML file.

        Raises
        ------
        ConfigError
            A value is missing or invalid (the message names each key, its env var and the bad value), or the
            YAML file does not exist.
        """
        if config_file is not None and not config_file.is_file():
            raise ConfigError(f"config file {str(config_file)!r} does not exist")
        try:
            cls._yaml_file = config_file
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(
                f"invalid {cls.__name__}"
                + (f" (from {config_file})" if config_file else "")
                + ":\n"
                + format_validation_error(exc)
            ) from exc
        finally:
            cls._yaml_file = None
