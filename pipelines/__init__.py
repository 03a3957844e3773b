"""The showcase pipeline's stages (run by DVC: see dvc.yaml)."""
