"""``check_progress``: a progress callback a caller passes is checked before the work starts."""

from __future__ import annotations

import pytest

from capsight.errors import InvalidParameter
from capsight.progress import check_progress


def test_a_callback_that_cannot_take_fraction_and_message_is_refused_before_the_work():
    """analyze_video(progress=lambda: None) had failed mid-run with a TypeError."""
    for wrong in (lambda: None, lambda fraction: None, lambda a, b, c: None):
        with pytest.raises(InvalidParameter, match=r"progress must take two arguments"):
            check_progress(wrong)
    for fine in (None, print, lambda fraction, message: None, lambda *args: None,
                 lambda fraction, message, extra=1: None):  # fmt: skip
        check_progress(fine)


def test_what_is_no_function_is_named_as_python_names_its_type():
    with pytest.raises(
        InvalidParameter, match="progress must be a function of \\(fraction, message\\), not 'int'"
    ):
        check_progress(3)
