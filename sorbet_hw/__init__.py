"""sorbet-hw: the command line and the toolchain plumbing shared by hw/, sim/ and synth/."""
__version__ = "0.1.0"
