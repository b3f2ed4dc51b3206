"""Amaranth generators of the spiking blocks; `hw.blocks` lists them by name."""
