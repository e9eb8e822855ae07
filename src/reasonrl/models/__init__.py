"""Model factories and HF checkpoint I/O (import `reasonrl.models.factory` / `.io` directly).

Kept light: importing this package pulls in neither torch nor transformers.
"""
