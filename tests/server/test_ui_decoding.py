"""The photo tab's decoding controls: beam width 0 keeps each model's own decoding."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio")


def test_beam_width_zero_means_each_models_own_decoding(make_app, started, cat_jpeg, tmp_path):
    from capsight.server.ui import CapsightUI

    app = make_app()
    seen = []
    engine = app.state.engine
    real_describe = engine.describe

    def spy(images, model=None, decoding=None, **kwargs):
        seen.append(decoding)
        return real_describe(images, model, decoding, **kwargs)

    engine.describe = spy
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    for _ in started(app):
        ui = CapsightUI(app)
        ui.describe(str(photo), "labels", "labels", "beam", 0)
        ui.describe(str(photo), "labels", "labels", "beam", 2)
        ui.describe(str(photo), "labels", "labels", "greedy", 0)
        # greedy with the beam slider still at 4: no beam width sent (it would be refused)
        card, card_b, *_ = ui.describe(str(photo), "show-attend-tell", "labels", "greedy", 4)
        # a model's mean log-prob is said to be on its own scale (-0.26 against -0.49 read
        # as one model surer of a better caption); labels has none
        assert 'title="mean log-prob: ' in card and "not comparable between models" in card
        assert "title=" not in card_b
        # sample: at the Decoding panel's temperature (it had been 0.7 whatever was set)
        ui.describe(str(photo), "labels", "labels", "sample", 0, 1.5)
        card, *_ = ui.describe(str(photo), "labels", "labels", "sample", 0, 9)
        assert "Temperature must be between" in card  # one line in model A's card
    assert seen[:2] == [None, None]  # both models, their own decoding
    assert [d.beam_width for d in seen[2:4]] == [2, 2] and seen[2].method == "beam"
    assert [d.method for d in seen[4:8]] == ["greedy"] * 4
    assert [(d.method, d.temperature) for d in seen[8:]] == [("sample", 1.5)] * 2


def test_the_cards_say_which_side_they_are_and_when_both_are_one_model(
    make_app, started, cat_jpeg, tmp_path
):
    """Model A "default" and model B "show-attend-tell-pair" gave two cards headed
    "SHOW-ATTEND-TELL-PAIR" with one caption, and nothing said they were one model."""
    from capsight.server.ui import CapsightUI

    app = make_app()
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    for _ in started(app):
        ui = CapsightUI(app)
        card_a, card_b, *_ = ui.describe(str(photo), "labels", "labels", "beam", 0)
        assert '<p class="cap-model">A · labels</p>' in card_a and "same model" not in card_a
        assert '<p class="cap-model">B · labels</p>' in card_b and "the same model as A" in card_b
        # "default" is the server's own default here (--model labels), not the package's.
        card_a, card_b, *_ = ui.describe(str(photo), "default", "labels", "beam", 0)
        assert (
            '<p class="cap-model">A · default (labels)</p>' in card_a
            and "the same model as A" in card_b
        )


def test_a_tiny_image_card_says_its_caption_is_a_guess(make_app, started, tmp_path):
    """The API's note for an image under 32 px a side; the page had shown the caption as any."""
    from PIL import Image

    from capsight.server.ui import CapsightUI

    app = make_app()
    tiny = tmp_path / "tiny.png"
    Image.effect_noise((16, 20), 60).convert("RGB").save(tiny)
    for _ in started(app):
        card, *_ = CapsightUI(app).describe(str(tiny), "labels", "labels", "beam", 0)
    assert "Note: 16x20 px, only 16 on its short side (under 32)" in card and "guess" in card
