"""Keyword extraction: phrase candidates (contiguous spans; jieba for Chinese) or vocab entries, glm-edge's
ranking, or KeyBERT's cosine top-k, MMR, Max Sum."""

from glm_edge.keywords.candidates import Phrase, ngram_candidates, phrase_candidates, tokenize, vocab_candidates
from glm_edge.keywords.extractor import KeywordExtractor, Keywords

__all__ = ["KeywordExtractor", "Keywords", "Phrase", "ngram_candidates", "phrase_candidates", "tokenize",
           "vocab_candidates"]
