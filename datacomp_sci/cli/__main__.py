"""``python -m datacomp_sci.cli`` (used under torchrun for multi-GPU training)."""

from datacomp_sci.cli import main

if __name__ == "__main__":
    main()
