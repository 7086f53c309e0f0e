"""bgloop.Loop looks like asyncio's loop from the outside: the handles it
hands out (bgloop's C Handle and TimerHandle; asyncio's own classes with
BGLOOP_PY_HANDLES=1) have asyncio's API and repr(), debug mode reports slow
callbacks exactly as asyncio does, and bgloop's own slow-callback report
exists only when BGLOOP_SLOW_CALLBACK asks for it."""
import asyncio
import logging
import re
import time
from asyncio import events

import pytest

import bgloop
from bgloop import config
from _loop_util import FACTORIES, exc_log, loop  # noqa: F401  (fixtures)


def cb(*args):
    pass


def slow():
    time.sleep(0.03)


def _normalize(text):
    # Addresses and times differ from run to run and loop to loop.
    text = re.sub(r"0x[0-9a-fA-F]+", "0x", text)
    text = re.sub(r"when=[-+0-9.e]+", "when=T", text)
    return re.sub(r"took [0-9.]+ seconds", "took N seconds", text)


def _handles(lp):
    """One handle of each kind, made the same way on any loop."""
    made = [
        lp.call_soon(cb, 1, "a"),
        lp.call_later(60, cb, 2),
        lp.call_at(lp.time() + 60, cb),
        lp.call_soon_threadsafe(cb, 3),
    ]
    cancelled = lp.call_later(60, cb, 4)
    cancelled.cancel()
    made.append(cancelled)
    return made


def _describe(lp, debug):
    lp.set_debug(debug)
    handles = _handles(lp)
    out = [(type(h).__name__, _normalize(repr(h))) for h in handles]
    for h in handles:
        h.cancel()
    return out


# asyncio's call_soon_threadsafe() handle is a class of its own where asyncio
# has one (3.14); bgloop's C handles have one Handle class for both.
_THREADSAFE = getattr(events, "_ThreadSafeHandle", events.Handle).__name__


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_handle_reprs_match_asyncio(loop, debug):
    stock = FACTORIES["asyncio"]()
    try:
        expected = _describe(stock, debug)
    finally:
        stock.close()
    got = _describe(loop, debug)
    if type(loop) is not type(stock):
        expected[3] = tuple(x.replace(_THREADSAFE, "Handle") for x in expected[3])
    assert got == expected
    assert [name for name, _ in got[:3]] == ["Handle", "TimerHandle", "TimerHandle"]


def test_timer_handle_api(loop):
    h = loop.call_later(60, cb)
    assert h._scheduled and not h.cancelled()
    assert abs(h.when() - (loop.time() + 60)) < 1
    if hasattr(events.TimerHandle, "get_context"):  # asyncio's since 3.12
        assert h.get_context() is h._context is not None
    assert len(loop._scheduled) == 1
    h.cancel()
    assert h.cancelled()
    h.cancel()  # idempotent


def _debug_slow_messages(lp):
    lp.set_debug(True)
    lp.slow_callback_duration = 0.01
    lp.call_soon(slow)
    lp.call_at(lp.time(), slow)
    lp.run_until_complete(asyncio.sleep(0.05))


def _slow_records(caplog, name):
    return [
        _normalize(r.getMessage())
        for r in caplog.records
        if r.name == name and r.levelno == logging.WARNING and "took" in r.getMessage()
    ]


def _of_slow(records):
    # The reports of slow() only: on a slow machine (an emulated CPU, say)
    # debug mode's own work can take other steps past the threshold too.
    return [m for m in records if " slow() at " in m]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_debug_slow_callback_message_matches_asyncio(name, caplog, monkeypatch):
    stock = FACTORIES["asyncio"]()
    try:
        with caplog.at_level(logging.WARNING):
            _debug_slow_messages(stock)
        expected = _of_slow(_slow_records(caplog, "asyncio"))
    finally:
        stock.close()
    caplog.clear()
    # Even with bgloop's report asked for, debug mode has asyncio's only.
    monkeypatch.setenv("BGLOOP_SLOW_CALLBACK", "0.01")
    lp = FACTORIES[name]()
    try:
        with caplog.at_level(logging.WARNING):
            _debug_slow_messages(lp)
    finally:
        lp.close()
    assert len(expected) == 2
    assert any("<TimerHandle when=T slow()" in m for m in expected)
    assert _of_slow(_slow_records(caplog, "asyncio")) == expected
    assert _slow_records(caplog, "bgloop.loop") == []


def test_no_slow_report_by_default(loop, caplog, monkeypatch):
    monkeypatch.delenv("BGLOOP_SLOW_CALLBACK", raising=False)
    loop.set_debug(False)  # python -X dev turns it on by default
    loop.slow_callback_duration = 0.01
    loop.call_soon(slow)
    with caplog.at_level(logging.DEBUG):
        loop.run_until_complete(asyncio.sleep(0.01))
    assert [r.getMessage() for r in caplog.records if "took" in r.getMessage()] == []


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_option_means_no_report(value, caplog, monkeypatch):
    monkeypatch.setenv("BGLOOP_SLOW_CALLBACK", value)
    assert config.slow_callback() is None
    lp = bgloop.Loop()
    lp.set_debug(False)
    try:
        lp.call_soon(slow)
        with caplog.at_level(logging.DEBUG):
            lp.run_until_complete(asyncio.sleep(0.01))
    finally:
        lp.close()
    assert _slow_records(caplog, "bgloop.loop") == []


def test_slow_report_with_option(caplog, monkeypatch):
    monkeypatch.setenv("BGLOOP_SLOW_CALLBACK", "0.01")
    assert config.slow_callback() == 0.01
    lp = bgloop.Loop()
    lp.set_debug(False)
    try:
        lp.call_soon(slow)
        lp.call_soon(cb)  # fast: not reported
        with caplog.at_level(logging.DEBUG):
            lp.run_until_complete(asyncio.sleep(0.01))
        assert lp.stats()["longest_callback"] >= 0.03
    finally:
        lp.close()
    got = _slow_records(caplog, "bgloop.loop")
    assert len(got) == 1, got
    assert re.fullmatch(r"slow callback: <Handle slow\(\) at .*> took N seconds", got[0]), got
    assert _slow_records(caplog, "asyncio") == []


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1s"])
def test_bad_option_value_raises_config_error(value, monkeypatch):
    monkeypatch.setenv("BGLOOP_SLOW_CALLBACK", value)
    with pytest.raises(config.ConfigError, match=re.escape(f"BGLOOP_SLOW_CALLBACK={value!r}")):
        config.slow_callback()
    with pytest.raises(config.ConfigError, match="BGLOOP_SLOW_CALLBACK"):
        bgloop.Loop()
    assert "BGLOOP_SLOW_CALLBACK" in config.ENV_VARS
