"""BGLOOP_* environment configuration: defaults, parsing, clear errors."""

from __future__ import annotations

import logging

import bgloop
import pytest
from bgloop import config

from _services_util import clean, drive, state  # noqa: F401


@pytest.mark.parametrize("var, reader, default", [
    ("BGLOOP_STOP_TIMEOUT", config.stop_timeout, 5.0),
    ("BGLOOP_RESTART_DELAY", config.restart_delay, 0.1),
    ("BGLOOP_RESTART_MAX_DELAY", config.restart_max_delay, 30.0),
    ("BGLOOP_START_LIMIT_BURST", config.start_limit_burst, 5),
    ("BGLOOP_START_LIMIT_INTERVAL", config.start_limit_interval, 10.0),
    ("BGLOOP_KICK_BUDGET", config.kick_budget, 0.002),
    ("BGLOOP_LOG_LEVEL", config.log_level, logging.WARNING),
])
def test_defaults_and_blank_values(monkeypatch, var, reader, default):
    monkeypatch.delenv(var, raising=False)
    assert reader() == default
    monkeypatch.setenv(var, "  ")
    assert reader() == default


def test_values_are_parsed(monkeypatch):
    monkeypatch.setenv("BGLOOP_STOP_TIMEOUT", "0.25")
    assert config.stop_timeout() == 0.25
    monkeypatch.setenv("BGLOOP_KICK_BUDGET", "none")
    assert config.kick_budget() is None
    monkeypatch.setenv("BGLOOP_LOG_LEVEL", "debug")
    assert config.log_level() == logging.DEBUG
    monkeypatch.setenv("BGLOOP_LOG_LEVEL", "15")
    assert config.log_level() == 15
    monkeypatch.setenv("BGLOOP_START_LIMIT_BURST", "0")
    assert config.start_limit_burst() == 0


@pytest.mark.parametrize("var, value", [
    ("BGLOOP_STOP_TIMEOUT", "soon"),
    ("BGLOOP_STOP_TIMEOUT", "-1"),
    ("BGLOOP_STOP_TIMEOUT", "nan"),
    ("BGLOOP_KICK_BUDGET", "0"),
    ("BGLOOP_START_LIMIT_BURST", "2.5"),
    ("BGLOOP_START_LIMIT_INTERVAL", "0"),
    ("BGLOOP_LOG_LEVEL", "chatty"),
    ("BGLOOP_LOG_LEVEL", "-3"),
])
def test_bad_values_name_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    reader = config.ENV_VARS[var][0]
    with pytest.raises(config.ConfigError) as err:
        reader()
    assert var in str(err.value) and repr(value) in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.usefixtures("clean")
def test_stop_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("BGLOOP_STOP_TIMEOUT", "0.02")

    @bgloop.service("envy", owner="t")
    async def envy(ctx):
        ctx.ready()
        import asyncio
        await asyncio.Event().wait()   # ignores stopping: cancelled after 0.02 s

    assert bgloop.status()["envy"]["stop_timeout"] == 0.02
    bgloop.start_services()
    drive(lambda: state("envy") == "running")
    bgloop.stop_services()
    assert bgloop.status()["envy"]["stop_timed_out"]


@pytest.mark.usefixtures("clean")
def test_bad_environment_fails_at_registration(monkeypatch):
    monkeypatch.setenv("BGLOOP_RESTART_DELAY", "fast")
    with pytest.raises(config.ConfigError, match="BGLOOP_RESTART_DELAY"):
        @bgloop.service("never", owner="t")
        async def never(ctx):
            pass
    assert "never" not in bgloop.status()



@pytest.mark.usefixtures("clean")
def test_an_int_beyond_a_float_stop_timeout_means_no_limit():
    # The manager takes an int too large for a float as "no limit": the
    # service is registered whole (not added and then refused).
    @bgloop.service("huge", owner="t", stop_timeout=10**400)
    async def huge(ctx):
        ctx.ready()

    assert bgloop.status()["huge"]["stop_timeout"] == float("inf")
