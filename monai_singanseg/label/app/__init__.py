"""The MONAI Label app folder (MONAI Label loads its ``main.py``)."""
