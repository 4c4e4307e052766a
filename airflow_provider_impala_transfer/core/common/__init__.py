"""Rules every stage uses; they import only :mod:`..errors` and each other."""
