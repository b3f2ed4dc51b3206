"""The Sorbet model side: fixed-point operators (the contract with `hw/` and `sim/`)."""
