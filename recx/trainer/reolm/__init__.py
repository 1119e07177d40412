"""Reo-LM: one language model over item text (+ an image token) as both item and user tower.

- :mod:`backbone`: find and load the HF encoder and tokenizer; the tokenizer hash.
- :mod:`tokens`: item text -> token ids once per dataset, cached and fingerprinted.
- :mod:`packing`: a user's items newest first into one token sequence (pure functions).
- :mod:`model`: the LM towers, scores, the interface the training loop drives.
- :mod:`pretrain`: `recx pretrain` across domains and its checkpoint directory.
"""
