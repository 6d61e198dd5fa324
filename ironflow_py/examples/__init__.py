"""Reference workflows written with ironflow_py's own vocabulary; each is exercised end to end in tests."""
