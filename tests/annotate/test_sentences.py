from __future__ import annotations

import pytest

from densescale.annotate.sentences import split_sentences, words


@pytest.mark.parametrize("text,expected", [
    ("Dr. Smith lives in the U.S. now. He paid $3.50! Why?",
     ["Dr. Smith lives in the U.S. now.", "He paid $3.50!", "Why?"]),
    ("See e.g. the results in Fig. 3. They hold (p < 0.05). Next one.",
     ["See e.g. the results in Fig. 3.", "They hold (p < 0.05).", "Next one."]),
    ("J. R. R. Tolkien wrote it. It was 1954. Ph.D. students came.",
     ["J. R. R. Tolkien wrote it.", "It was 1954.", "Ph.D. students came."]),
    ('He said "stop." Then he left. Mr. and Mrs. Lee i.e. the owners agreed.',
     ['He said "stop."', "Then he left.", "Mr. and Mrs. Lee i.e. the owners agreed."]),
    ("Pi is 3.14159 roughly. version 2.0 shipped.",
     ["Pi is 3.14159 roughly. version 2.0 shipped."]),
    ("今天天气很好。我们去公园吧！你呢？好；再见",
     ["今天天气很好。", "我们去公园吧！", "你呢？", "好；", "再见"]),
    ("他说：“走吧。”然后离开了。Mixed English. 还有！",
     ["他说：“走吧。”", "然后离开了。", "Mixed English.", "还有！"]),
    ("A heading\n\nbody text starts here. more", ["A heading", "body text starts here. more"]),
    ("", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_words_counts_cjk_characters():
    assert words("我们 go home") == ["我", "们", "go", "home"]
