"""Scalar noise-level estimators."""
