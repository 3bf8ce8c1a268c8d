"""`switchyard dev`: the whole stack as one process tree on embedded defaults."""
