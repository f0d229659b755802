"""LightningModules. Constructors take plain values (and optimizer/scheduler partials), so their
hyperparameters are plain containers and checkpoints load with `torch.load(weights_only=True)`."""
