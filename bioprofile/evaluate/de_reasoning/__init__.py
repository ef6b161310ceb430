"""VCWorld-style perturbation reasoning: is gene G differentially expressed after drug D on cell line C.

Modules
-------
- :mod:`.answers` -- the answer rule (:data:`DE_ANSWER_RULE`) and :func:`parse_answer`
"""

from bioprofile.evaluate.de_reasoning.answers import DE_ANSWER_RULE, parse_answer

__all__ = ["DE_ANSWER_RULE", "parse_answer"]
