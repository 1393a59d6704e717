"""acetune: fine-tuning toolkit for the ACE-Step 1.5 music generation models."""

__version__ = "0.1.0"
