"""cocotb benches: one per block (`sim/<block>.py`), sharing the stream agents of `sim.bench`."""
