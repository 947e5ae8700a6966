"""Object-level localizers and fusion; each public module registers its method(s)."""
