"""Moving chunk files to a target: methods, verification, the fallback chain, publishing."""
