"""Immutable values rebuilt from rows are made once per distinct input."""

from __future__ import annotations

import pytest

from ratel.adapters.db.statements import Interned
from ratel.domain.customer import Contact
from ratel.domain.errors import InvalidCustomer


def test_equal_inputs_give_the_one_object_and_a_refusal_is_not_remembered() -> None:
    made: list[tuple[object, ...]] = []

    def contact(*args: object) -> Contact:
        made.append(args)
        return Contact(*args)  # type: ignore[arg-type]

    contacts = Interned(contact, size=3)
    first = contacts("a@example.com", None, ("1 Road",))
    assert contacts("a@example.com", None, ("1 Road",)) is first
    assert contacts(" a@example.com ", None, ("1 Road",)) == first  # another input, equal value
    assert len(made) == 2
    for _ in range(2):
        with pytest.raises(InvalidCustomer):
            contacts("not an address", None, ())
    assert len(made) == 4  # tried again: nothing was remembered
    contacts("b@example.com", None, ())
    contacts("c@example.com", None, ())  # past the size: emptied, then kept
    assert contacts("a@example.com", None, ("1 Road",)) is not first
