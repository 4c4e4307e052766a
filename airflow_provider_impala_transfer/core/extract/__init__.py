"""Query -> exact-typed, size-bounded chunk files and the manifest that describes them."""
