"""Settings: per-type policies and the lease/visibility invariant."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import JobPolicy, RedisSettings, Settings


def test_a_job_type_without_override_gets_the_default_policy() -> None:
    settings = Settings(job_policies={"system.fail": JobPolicy(max_attempts=9)})
    assert settings.policy_for("system.fail").max_attempts == 9
    assert settings.policy_for("system.echo") == settings.default_policy


def test_a_lease_longer_than_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout"):
        Settings(
            redis=RedisSettings(visibility_timeout=60),
            job_policies={"system.sleep": JobPolicy(lease_timeout=120)},
        )


def test_log_format_follows_the_environment_unless_set() -> None:
    assert Settings(env="dev").resolved_log_format == "console"
    assert Settings(env="prod").resolved_log_format == "json"
    assert Settings(env="prod", log_format="console").resolved_log_format == "console"
