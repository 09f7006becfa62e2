"""The executor interface: registry lookup, submit and map under each registered executor."""

from __future__ import annotations

import pytest

from gristmill.executors import EXECUTORS, Executor, get_executor


def square(x: int) -> int:
    return x * x


def fail(x: int) -> int:
    raise ValueError(f"bad {x}")


@pytest.mark.parametrize("name", sorted(EXECUTORS))
@pytest.mark.parametrize("workers", [1, 2])
def test_every_registered_executor_maps_in_order_and_delivers_errors(name: str, workers: int) -> None:
    cls = get_executor(name)
    assert issubclass(cls, Executor) and cls.name == name
    with cls(workers) as ex:
        assert ex.map(square, range(7)) == [0, 1, 4, 9, 16, 25, 36]
        with pytest.raises(ValueError, match="bad 3"):
            ex.submit(fail, 3).result()


def test_unknown_executor_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: local"):
        get_executor("slurm")
