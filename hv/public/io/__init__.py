"""xen/include/public/io/: the shared-memory layouts of the split drivers."""
