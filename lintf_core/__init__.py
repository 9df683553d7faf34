"""lintf_core: the engine behind the lintf book (Ahn et al., ICLR 2024, reproduced).

The road is one-way: settings -> data -> model -> optim/train -> (diagnostics) -> notebooks -> book.
"""

__version__ = "0.1.0"
