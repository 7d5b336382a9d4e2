"""Idle callbacks run on the thread that registered them, from that thread's idle polls."""

from __future__ import annotations

import threading

from streams import idle


def test_a_callback_runs_from_its_own_threads_polls_only_until_unregistered() -> None:
    calls: list[str] = []

    def callback() -> None:
        calls.append(threading.current_thread().name)

    idle.register(callback)
    try:
        other = threading.Thread(target=idle.run, name="other")
        other.start()
        other.join()
        assert calls == []  # another worker thread's poll
        idle.run()
        assert calls == [threading.current_thread().name]
    finally:
        idle.unregister(callback)
    idle.run()
    assert len(calls) == 1
    idle.unregister(callback)  # twice: nothing
