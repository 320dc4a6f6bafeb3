"""Hypothesis strategies shared by the contract tests."""

from __future__ import annotations

from hypothesis import strategies as st


def _check_digit(nine: list[int]) -> int:
    """The Modulus 11 check digit of nine digits; 10 means no valid NHS number has them."""
    total = sum(d * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    return (11 - total % 11) % 11


def valid_nhs_numbers() -> st.SearchStrategy[str]:
    """Ten-digit valid NHS numbers (the last digit their Modulus 11 check), unseparated."""
    return (
        st.lists(st.integers(0, 9), min_size=9, max_size=9)
        .filter(lambda nine: _check_digit(nine) != 10)
        .map(lambda nine: "".join(map(str, nine)) + str(_check_digit(nine)))
    )
