from capsight._cli.tools.endings import main
from capsight.captioning.endings import Endings
from capsight.captioning.vocabulary import Vocabulary, tokenize
from capsight.training.datasets import load_corpus


def test_command_line_learns_endings_for_an_older_checkpoint(caption_folder, tmp_path, capsys):
    corpus = load_corpus(caption_folder)
    vocab = Vocabulary.build(
        (tokenize(c) for im in corpus.split("train") for c in im.captions), min_count=1
    )
    vocab.save(tmp_path / "vocab.json")
    main([str(caption_folder), str(tmp_path)])
    endings = Endings.load(tmp_path)
    # Captions end "... on white ." or "... that is <colour>".
    assert endings.allows(vocab.encode(["a", "square", "on", "white"]))
    assert endings.allows(vocab.encode(["a", "stripe", "that", "is", "blue"]))
    assert not endings.allows(vocab.encode(["a", "stripe", "that"]))
    assert "final words" in capsys.readouterr().out


def test_command_line_names_a_corpus_it_cannot_read_in_one_line(tmp_path, capsys):
    import pytest

    Vocabulary.build([["a", "dog"]], min_count=1).save(tmp_path / "vocab.json")
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "dataset_flickr8k.json"), str(tmp_path)])  # was a traceback
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset_flickr8k.json: no such caption file" in err
