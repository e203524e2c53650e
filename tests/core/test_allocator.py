"""cpcframe.allocator: glibc's malloc tuned to keep freed memory, or left alone."""

from __future__ import annotations

import ctypes
import sys

import pytest

from cpcframe import allocator


def glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(ctypes.CDLL(None).gnu_get_libc_version)
    except (OSError, AttributeError):
        return False


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", False)
    for name in allocator._TUNING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", allocator._TUNING_VARIABLES)
def test_malloc_tuning_in_the_environment_is_left_alone(fresh, variable):
    fresh.setenv(variable, "65536")
    assert allocator.keep_freed_memory() is False


def test_another_allocator_preloaded_is_left_alone(fresh):
    fresh.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert allocator.keep_freed_memory() is False


def test_off_glibc_nothing_is_done(fresh):
    fresh.setattr(sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


@pytest.mark.skipif(not glibc(), reason="glibc's mallopt only")
def test_on_glibc_it_is_set_once(fresh):
    calls = []
    real = ctypes.CDLL

    class Recording:
        def __init__(self, name):
            self._libc = real(name)
            self.gnu_get_libc_version = self._libc.gnu_get_libc_version

            def mallopt(param, value):
                calls.append((param, value))
                return 1

            self.mallopt = mallopt

    fresh.setattr(ctypes, "CDLL", Recording)
    assert allocator.keep_freed_memory() is True
    assert calls == [(allocator.M_MMAP_MAX, 0), (allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD)]
    assert allocator.keep_freed_memory() is True and len(calls) == 2  # idempotent
