"""Yosys synthesis of the generated RTL and the reports it feeds."""
