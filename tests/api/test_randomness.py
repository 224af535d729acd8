"""Buffered random identifiers (idp.randomness): never repeated across threads or processes."""

from __future__ import annotations

import multiprocessing
import threading

from idp import randomness


def _draw(count: int) -> list[str]:
    return [randomness.token_urlsafe(16) for _ in range(count)]


def test_tokens_have_the_asked_length_and_do_not_repeat_across_blocks() -> None:
    drawn = _draw(2000)  # eight blocks' worth of 16-byte tokens
    assert len(set(drawn)) == len(drawn)
    assert all(len(token) == 22 for token in drawn)  # 16 bytes in base64url, unpadded
    assert len(randomness.token_bytes(5000)) == 5000  # larger than a block


def test_threads_do_not_share_a_block() -> None:
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(_draw(300))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [token for result in results for token in result]
    assert len(set(everything)) == len(everything) == 1200


def test_a_forked_child_does_not_replay_its_parents_block() -> None:
    _draw(1)  # the parent now holds a partly used block
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        children = pool.map(_draw, [100, 100])
    parent = _draw(100)
    everything = parent + children[0] + children[1]
    assert len(set(everything)) == len(everything)


def test_randbits_stays_within_its_width() -> None:
    values = [randomness.randbits(80) for _ in range(2000)]
    assert all(0 <= value < 2**80 for value in values)
    assert max(values) >= 2**79  # the top bit is used
