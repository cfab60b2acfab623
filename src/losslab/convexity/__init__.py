"""Convexity verdicts: proofs from structure, witnesses from chords, curvature and symmetry."""

from .analyze import VERDICTS, ConvexityReport, SearchLog, Verdict, check_convexity
from .structure import Proof, prove_convex
from .witness import ChordWitness, Verification, chord_gap

__all__ = [
    "VERDICTS",
    "ChordWitness",
    "ConvexityReport",
    "Proof",
    "SearchLog",
    "Verdict",
    "Verification",
    "check_convexity",
    "chord_gap",
    "prove_convex",
]
