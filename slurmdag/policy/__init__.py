"""Site policy: limits, site paths, pre-flight checks over what backends/ read, and admission."""
