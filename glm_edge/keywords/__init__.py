"""KeyBERT-style keyword extraction: candidates (jieba / n-grams / vocab), cosine top-k, MMR, Max Sum."""

from glm_edge.keywords.candidates import ngram_candidates, tokenize, vocab_candidates
from glm_edge.keywords.extractor import KeywordExtractor, Keywords

__all__ = ["KeywordExtractor", "Keywords", "ngram_candidates", "tokenize", "vocab_candidates"]
