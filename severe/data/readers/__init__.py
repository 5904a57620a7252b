"""One reader module per official annotation format; the registry binds them to dataset ids."""
