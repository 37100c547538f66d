"""The ``revise`` command line: thin wrappers over the Python API (see ``revise --help``)."""
