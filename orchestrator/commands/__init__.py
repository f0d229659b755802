"""One module per verb of `orchestrate`: parse, call a library function of the packages beside this one,
print. Only orchestrator.cli imports these modules, and no verb imports another."""
