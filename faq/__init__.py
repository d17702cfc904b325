"""The FAQ knowledge base: region-aware answers to the FAQ intents, sourced from the seeds."""

from faq.knowledge import FaqAnswer, UnknownIntent, answer, catalogue_intents, intents

__all__ = ["FaqAnswer", "UnknownIntent", "answer", "catalogue_intents", "intents"]
