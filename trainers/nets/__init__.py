"""Plain torch.nn components used by the LitModules."""
