"""DVC stage entry points: ``python -m segclust.stages.<name>``, run from the project root.

Each reads ``params.yaml``, loads its inputs, calls the core and writes its outputs
atomically. Nothing else.
"""
