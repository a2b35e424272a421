"""Two-layer network theory: Gram matrices, NTK, rates and ODEs."""
