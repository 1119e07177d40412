"""Sequence encoders: item vectors [B, L, D] + padding mask -> user states [B, L, D]."""
