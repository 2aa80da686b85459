"""Retry policy for exceptions raised by user code (Modal's ``Retries``)."""

from __future__ import annotations

from dataclasses import dataclass

from .exceptions import ConfigError

__all__ = ["Retries"]


@dataclass(frozen=True)
class Retries:
    """Retry an input whose user code raised, with exponential backoff.

    ``retries=3`` on ``@app.function`` is ``Retries(3, backoff_coefficient=1.0)``:
    three more attempts one second apart. Worker deaths (killed, OOM) do not
    use this budget; they are requeued by the controller up to a fixed cap.

    >>> Retries(4, initial_delay=0.5).delay(3)
    2.0
    """

    max_retries: int
    backoff_coefficient: float = 2.0
    initial_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError(f"max_retries must be an int, not {type(self.max_retries).__name__}")
        if not 0 <= self.max_retries <= 10:
            raise ConfigError(f"max_retries={self.max_retries}: accepted values are 0 to 10")
        for field_name in ("backoff_coefficient", "initial_delay", "max_delay"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{field_name} must be a number, not {type(value).__name__}")
        if not 1.0 <= self.backoff_coefficient <= 10.0:
            raise ConfigError(
                f"backoff_coefficient={self.backoff_coefficient}: accepted values are 1.0 to 10.0"
            )
        if not 0.0 <= self.initial_delay <= 60.0:
            raise ConfigError(f"initial_delay={self.initial_delay}: accepted values are 0 to 60 s")
        if not 1.0 <= self.max_delay <= 60.0:
            raise ConfigError(f"max_delay={self.max_delay}: accepted values are 1 to 60 s")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        d = self.initial_delay * self.backoff_coefficient ** (attempt - 1)
        return float(min(d, self.max_delay))

    @classmethod
    def coerce(cls, value: int | Retries | None) -> Retries:
        if value is None:
            return cls(0)
        if isinstance(value, Retries):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"retries must be an int or jupyter_remote.Retries, not {type(value).__name__}"
            )
        return cls(value, backoff_coefficient=1.0)
