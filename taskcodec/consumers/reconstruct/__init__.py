"""Human-route reconstruction: a whole, natural image from a decoded bitstream.

Both routes keep every transmitted pixel exactly as decoded; only the untransmitted
area (black in the mask) is reconstructed. Each output gets a mask PNG and a
metadata JSON, and is recorded in the store so ``taskcodec why`` can show it.
"""
