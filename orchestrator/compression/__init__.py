"""Compression: turn a trained model into smaller variants, measure each the same way, gate, register.

Vocabulary: a *stage* is one compression step (baseline, prune, quantize, distill); a *variant* is one
model a stage produced. Every variant becomes a child run of the pipeline run in MLflow.
"""
