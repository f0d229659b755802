"""The driver side of the orchestrator: CLI, config schemas, Ray launch, tracking and compression.

Vocabulary, written down once:
    job      a Ray job submission
    run      an MLflow run
    trial    one point of a sweep
    stage    one compression step (baseline, prune, quantize, distill)
    variant  one compressed model
"""
