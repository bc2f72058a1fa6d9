"""The paravirtualised kernels of the domains and their drivers."""
