"""One module per safety rule; the registry (validator/safety/registry.py) lists them."""
